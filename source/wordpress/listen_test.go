package wordpress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeRuns struct {
	mu      sync.Mutex
	reasons []string
	active  atomic.Int32
	overlap atomic.Bool
	hold    chan struct{} // when set, each run waits for a value
	done    chan string
}

func (f *fakeRuns) run(ctx context.Context, reason string) RunResult {
	if f.active.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.active.Add(-1)
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	f.reasons = append(f.reasons, reason)
	f.mu.Unlock()
	f.done <- reason
	return RunResult{Start: time.Now(), End: time.Now(), Reason: reason, OK: true, Summary: "ok"}
}

func event(id string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "time": at.Unix(), "event": "transition_post_status",
		"post": map[string]any{"id": 5, "type": "post", "status": "publish", "old_status": "draft"}})
	return b
}

func post(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/hook", bytes.NewReader(body))
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestListenerRefusesBadAndReplayedSignatures: a wrong signature, a missing one, one
// made with another secret, a replayed event and a stale one get 401 and start no run;
// a good event gets 202 and one run.
func TestListenerRefusesBadAndReplayedSignatures(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	f := &fakeRuns{done: make(chan string, 10)}
	l := &Listener{Secret: secret, Debounce: 10 * time.Millisecond, Run: f.run}
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Loop(ctx)

	now := time.Now()
	good := event("e1", now)
	tampered := bytes.Replace(good, []byte(`"id":5`), []byte(`"id":6`), 1)
	for name, c := range map[string]struct {
		body []byte
		sig  string
	}{
		"no signature":     {good, ""},
		"wrong signature":  {good, "sha256=" + fmt.Sprintf("%064x", 1)},
		"other secret":     {good, Sign([]byte("another secret, 32 bytes long..."), good)},
		"tampered body":    {tampered, Sign(secret, good)},
		"stale event":      {event("e2", now.Add(-10*time.Minute)), Sign(secret, event("e2", now.Add(-10*time.Minute)))},
		"event without id": {[]byte(`{"time":1}`), Sign(secret, []byte(`{"time":1}`))},
	} {
		if code := post(t, srv.URL, c.body, c.sig); code != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d, want 401", name, code)
		}
	}
	if code := post(t, srv.URL, good, Sign(secret, good)); code != http.StatusAccepted {
		t.Fatalf("good event: HTTP %d, want 202", code)
	}
	if code := post(t, srv.URL, good, Sign(secret, good)); code != http.StatusUnauthorized {
		t.Errorf("replayed event: HTTP %d, want 401", code)
	}
	if r := <-f.done; r != "webhook" {
		t.Errorf("run reason %q", r)
	}
	st := l.State()
	if st.Accepted != 1 || st.Rejected != 7 {
		t.Errorf("status: %+v, want 1 accepted and 7 refused", st)
	}
	select {
	case r := <-f.done:
		t.Errorf("an extra run (%s) after refused events", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenerDebouncesAndNeverOverlaps: a burst of events is one run; events during a
// run make exactly one more run after it, never a concurrent one.
func TestListenerDebouncesAndNeverOverlaps(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	f := &fakeRuns{done: make(chan string, 10), hold: make(chan struct{})}
	l := &Listener{Secret: secret, Debounce: 50 * time.Millisecond, Run: f.run}
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Loop(ctx)
	send := func(id string) {
		b := event(id, time.Now())
		if code := post(t, srv.URL, b, Sign(secret, b)); code != http.StatusAccepted {
			t.Fatalf("HTTP %d", code)
		}
	}
	for i := range 5 {
		send(fmt.Sprintf("burst-%d", i))
	}
	// The first run starts (after the burst went quiet) and is held; events now queue.
	for !l.State().Running {
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 5 {
		send(fmt.Sprintf("during-%d", i))
	}
	f.hold <- struct{}{}
	<-f.done
	f.hold <- struct{}{}
	<-f.done
	select {
	case r := <-f.done:
		t.Errorf("a third run (%s)", r)
	case f.hold <- struct{}{}:
		t.Errorf("a third run started")
	case <-time.After(300 * time.Millisecond):
	}
	if f.overlap.Load() {
		t.Error("two runs overlapped")
	}
	if st := l.State(); st.Runs != 2 || st.Accepted != 10 {
		t.Errorf("status %+v, want 2 runs for 10 events", st)
	}
}
