package purge_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
	"github.com/stump-dev/stump/purge/cloudflare"
	"github.com/stump-dev/stump/purge/fastly"
)

func page(p, sum string) publish.Object {
	key := "demo:url:/" + strings.TrimSuffix(p, "index.html")
	return publish.Object{Entry: manifest.Entry{Path: p, SHA256: sum, Class: manifest.Page}, Metadata: map[string]string{"surrogate-key": "demo demo:page " + key}}
}

// TestPurgerAdaptersOneFailing runs the Fastly and Cloudflare adapters against their
// fakes, Cloudflare failing with 503 throughout: Fastly purges, the pending record
// holds Cloudflare's request only, nothing shows a token, and Retry sends that request
// to Cloudflare alone once it recovers.
func TestPurgerAdaptersOneFailing(t *testing.T) {
	const ftok, ctok = "fastly-TOKEN-111", "cloudflare-TOKEN-222"
	ff := cdntest.NewFastly(t, "SVC", ftok)
	cf := cdntest.NewCloudflare(t, "ZONE", ctok)
	cf.Host = "www.example.org"
	noSleep := purge.Backoff{Sleep: func(context.Context, time.Duration) error { return nil }}
	fc, err := fastly.New(fastly.Config{Service: "SVC", Token: ftok, API: ff.URL, Backoff: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cloudflare.New(cloudflare.Config{Zone: "ZONE", Token: ctok, API: cf.API(), Backoff: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p := &purge.Purger{CDNs: []purge.CDN{fc, cc}, BaseURL: "https://www.example.org/", Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	var from, to []publish.Object
	for _, pth := range []string{"index.html", "a/index.html", "b/index.html", "c/index.html", "d/index.html"} {
		from = append(from, page(pth, "1"))
		to = append(to, page(pth, "1"))
	}
	to[1] = page("a/index.html", "2")
	to = append(to, page("new/index.html", "1"))

	cf.FailAlways(&cdntest.Failure{Status: 503})
	pending, perr := p.Purge(t.Context(), "demo", from, to, nil)
	if err = perr; err == nil || !strings.Contains(err.Error(), "cloudflare:ZONE") || strings.Contains(err.Error(), "fastly:") {
		t.Fatalf("err = %v, want Cloudflare's failure only", err)
	}
	if keys := ff.Keys(); strings.Join(keys, " ") != "demo:url:/a/ demo:url:/new/" {
		t.Errorf("fastly keys %q", keys)
	}
	if urls := ff.URLs(); len(urls) != 2 {
		t.Errorf("fastly URL purges of the added page: %q", urls)
	}
	pd, err := purge.DecodePending(pending)
	if err != nil || pd == nil || len(pd.Items) != 1 || pd.Items[0].CDN != "cloudflare:ZONE" {
		t.Fatalf("pending %s (%v)", pending, err)
	}
	reps := p.LastReports()
	if len(reps) != 2 || reps[0].Error != "" || reps[1].Error == "" || reps[0].Keys != 2 {
		t.Errorf("reports %+v", reps)
	}
	all := logs.String() + string(pending) + perr.Error()
	for _, tok := range []string{ftok, ctok} {
		if strings.Contains(all, tok) {
			t.Errorf("a token shows in logs, pending or errors")
		}
	}

	cf.FailAlways(nil)
	before := ff.Requests()
	left, err := p.Retry(t.Context(), pending)
	if err != nil || left != nil {
		t.Fatalf("retry: %s %v", left, err)
	}
	if ff.Requests() != before {
		t.Error("retry purged Fastly again")
	}
	calls := cf.Calls()
	if len(calls) != 1 || len(calls[0].Files) != 4 {
		t.Errorf("cloudflare calls %+v: want the 4 URLs of the two pages in one call", calls)
	}
}

func TestPreview(t *testing.T) {
	fc, _ := fastly.New(fastly.Config{Service: "SVC", Token: "t"})
	cc, _ := cloudflare.New(cloudflare.Config{Zone: "Z", Token: "t"})
	p := &purge.Purger{CDNs: []purge.CDN{fc, cc}}
	for _, c := range p.CDNs {
		if _, ok := c.(purge.Previewer); !ok {
			t.Errorf("%s cannot preview", c.Name())
		}
	}
	r, err := purge.URLs("demo", "https://www.example.org/", []string{"/news/"}, purge.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls, reps, err := p.Preview(r)
	if err != nil || len(reps) != 2 || strings.Join(calls["fastly:SVC"], "|") != "POST /service/SVC/purge (1 keys)" ||
		strings.Join(calls["cloudflare:Z"], "|") != "POST /zones/Z/purge_cache files: 2" {
		t.Errorf("preview %q %+v %v", calls, reps, err)
	}
}
