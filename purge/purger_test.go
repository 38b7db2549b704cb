package purge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memCDN records requests; fail makes it fail; gate, when set, holds Purge until
// closed (to prove CDNs run concurrently).
type memCDN struct {
	name    string
	fail    atomic.Bool
	gate    chan struct{}
	started chan struct{}
	mu      sync.Mutex
	got     []*Request
}

func (m *memCDN) Name() string { return m.name }

func (m *memCDN) Purge(ctx context.Context, r *Request) (Report, error) {
	if m.started != nil {
		m.started <- struct{}{}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
	}
	m.mu.Lock()
	m.got = append(m.got, r)
	m.mu.Unlock()
	if m.fail.Load() {
		return Report{CDN: m.name, Calls: 5}, errors.New(m.name + ": HTTP 503 (after 5 attempts)")
	}
	return Report{CDN: m.name, Calls: 1, Paths: len(r.Paths), Keys: len(r.Keys), Mode: "keys"}, nil
}

func (m *memCDN) requests() []*Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

func TestPurgerOneFailsOtherSucceeds(t *testing.T) {
	ok, bad := &memCDN{name: "ok"}, &memCDN{name: "bad"}
	bad.fail.Store(true)
	var logs bytes.Buffer
	var seen []string
	p := &Purger{CDNs: []CDN{bad, ok}, BaseURL: "https://www.example.org/", Log: slog.New(slog.NewTextHandler(&logs, nil)),
		OnReport: func(r Report) { seen = append(seen, r.CDN) }}
	from := site1()
	to := replace(from, "news/rally/index.html", "r2")
	pending, err := p.Purge(t.Context(), site, from, to, nil)
	if err == nil || !strings.Contains(err.Error(), "bad: HTTP 503") {
		t.Fatalf("err = %v, want bad's failure", err)
	}
	if len(ok.requests()) != 1 || len(bad.requests()) != 1 {
		t.Fatalf("each CDN should be asked once: ok %d, bad %d", len(ok.requests()), len(bad.requests()))
	}
	pd, derr := DecodePending(pending)
	if derr != nil || pd == nil || len(pd.Items) != 1 || pd.Items[0].CDN != "bad" {
		t.Fatalf("pending = %s (%v), want bad's request only", pending, derr)
	}
	if it := pd.Items[0]; !slices.Equal(it.Request.Paths, []string{"/news/rally/", "/news/rally/index.html"}) || it.Tries != 1 || it.Error == "" {
		t.Errorf("pending item = %+v", it)
	}
	reps := p.LastReports()
	if len(reps) != 2 || reps[0].CDN != "bad" || reps[0].Error == "" || reps[1].CDN != "ok" || reps[1].Error != "" {
		t.Errorf("reports = %+v", reps)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"bad", "ok"}) {
		t.Errorf("OnReport saw %q", seen)
	}
	if p.LastPlan() == nil || len(p.LastPlan().Paths) != 2 {
		t.Errorf("last plan = %+v", p.LastPlan())
	}
	if !strings.Contains(logs.String(), "left pending") {
		t.Errorf("log lacks the failure:\n%s", logs.String())
	}

	// Retry sends bad's request to bad only; once it works nothing stays pending.
	bad.fail.Store(false)
	pending2, err := p.Retry(t.Context(), pending)
	if err != nil || pending2 != nil {
		t.Fatalf("retry: pending %s, err %v", pending2, err)
	}
	if len(ok.requests()) != 1 || len(bad.requests()) != 2 {
		t.Errorf("retry went to the wrong CDN: ok %d, bad %d", len(ok.requests()), len(bad.requests()))
	}
	// A failing retry keeps the work and counts the tries.
	bad.fail.Store(true)
	pending3, err := p.Retry(t.Context(), pending)
	pd3, _ := DecodePending(pending3)
	if err == nil || pd3 == nil || pd3.Items[0].Tries != 2 {
		t.Errorf("failing retry: %s, %v", pending3, err)
	}
}

func TestPurgerConcurrent(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{}, 3)
	cdns := []*memCDN{{name: "a", gate: gate, started: started}, {name: "b", gate: gate, started: started}, {name: "c", gate: gate, started: started}}
	p := &Purger{BaseURL: "https://www.example.org/"}
	for _, c := range cdns {
		p.CDNs = append(p.CDNs, c)
	}
	done := make(chan error)
	go func() {
		_, err := p.Send(t.Context(), All(site, p.BaseURL, ""))
		done <- err
	}()
	// All three must be inside Purge at once before any may finish.
	for range 3 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("CDNs were not purged concurrently")
		}
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPurgerNothingToDo(t *testing.T) {
	c := &memCDN{name: "a"}
	p := &Purger{CDNs: []CDN{c}}
	pending, err := p.Purge(t.Context(), site, site1(), site1(), nil)
	if pending != nil || err != nil || len(c.requests()) != 0 {
		t.Errorf("an unchanged deploy purged: %s %v %d", pending, err, len(c.requests()))
	}
}

func TestRetryDropsUnknownCDN(t *testing.T) {
	pd := &Pending{Items: []PendingItem{{CDN: "gone", Request: All(site, "", "")}}}
	b, _ := pd.Encode()
	p := &Purger{CDNs: []CDN{&memCDN{name: "a"}}}
	left, err := p.Retry(t.Context(), b)
	if left != nil || err != nil {
		t.Errorf("left %s, err %v", left, err)
	}
}

func TestMergePending(t *testing.T) {
	a := &Pending{Items: []PendingItem{
		{CDN: "x", Request: &Request{Site: site, Paths: []string{"/a/"}, Keys: []string{"k:a"}}, Tries: 2, Since: time.Unix(100, 0).UTC()},
		{CDN: "y", Request: &Request{Site: site, Paths: []string{"/a/"}}},
	}}
	b := &Pending{Items: []PendingItem{
		{CDN: "x", Request: &Request{Site: site, Paths: []string{"/b/"}, Keys: []string{"k:b"}, Added: []string{"/b/"}}, Tries: 1, Since: time.Unix(200, 0).UTC(), Error: "later"},
		{CDN: "z", Request: All(site, "", "")},
	}}
	ab, _ := a.Encode()
	bb, _ := b.Encode()
	m, err := MergePending(ab, bb)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := DecodePending(m)
	if err != nil || len(pd.Items) != 3 {
		t.Fatalf("merged = %s, %v", m, err)
	}
	x := pd.Items[0]
	if x.CDN != "x" || !slices.Equal(x.Request.Paths, []string{"/a/", "/b/"}) || !slices.Equal(x.Request.Keys, []string{"k:a", "k:b"}) || x.Tries != 2 || x.Error != "later" || !x.Since.Equal(time.Unix(100, 0)) {
		t.Errorf("merged x = %+v %+v", x, x.Request)
	}
	if pd.Summary() == "" || !strings.Contains(pd.Summary(), "z (the whole site)") {
		t.Errorf("summary %q", pd.Summary())
	}
	if m, _ := MergePending(nil, bb); !bytes.Equal(m, bb) {
		t.Errorf("merge with nothing changed the record")
	}
	if m, _ := MergePending(nil, nil); m != nil {
		t.Errorf("merge of nothing = %s", m)
	}
	if r := Merge(&Request{Paths: []string{"/a"}}, All(site, "", "")); !r.All || len(r.Paths) > 0 {
		t.Errorf("merge with All = %+v", r)
	}
	if _, err := DecodePending([]byte(`{"version":9}`)); err == nil {
		t.Error("unknown version accepted")
	}
}

// TestPurgerRetriesPendingWithNewWork: a deploy's purge also retries what an earlier one
// left pending, and returns only what still fails.
func TestPurgerRetriesPendingWithNewWork(t *testing.T) {
	bad := &memCDN{name: "bad"}
	bad.fail.Store(true)
	p := &Purger{CDNs: []CDN{bad}, BaseURL: "https://www.example.org/"}
	from := site1()
	to := replace(from, "news/rally/index.html", "r2")
	pending, err := p.Purge(t.Context(), site, from, to, nil)
	if err == nil || pending == nil {
		t.Fatalf("first purge: %s %v", pending, err)
	}
	bad.fail.Store(false)
	to2 := replace(to, "about/index.html", "a2")
	left, err := p.Purge(t.Context(), site, to, to2, pending)
	if err != nil || left != nil {
		t.Fatalf("second purge left %s, %v", left, err)
	}
	if n := len(bad.requests()); n != 3 {
		t.Errorf("requests: %d, want 3 (first, new, retried pending)", n)
	}
}
