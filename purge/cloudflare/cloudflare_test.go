package cloudflare

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
)

const (
	token = "cf-test-token-ABC"
	zone  = "ZONE9"
	host  = "www.example.org"
)

func newCDN(t *testing.T, f *cdntest.Cloudflare, mod func(*Config)) (*CDN, *cdntest.Sleeps) {
	t.Helper()
	s := &cdntest.Sleeps{}
	cfg := Config{Zone: zone, Token: token, API: f.API(), Backoff: purge.Backoff{Sleep: s.Sleep}}
	return cdntest.Adapter(t, cfg, mod, New), s
}

func paths(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("/c/p%03d/", i), fmt.Sprintf("/c/p%03d/index.html", i))
	}
	return out
}

func TestFilesBatchedToLimit(t *testing.T) {
	for _, limit := range []int{30, 100} {
		f := cdntest.NewCloudflare(t, zone, token)
		f.Limit, f.Host = limit, host
		c, _ := newCDN(t, f, func(c *Config) { c.PerRequest = limit })
		r := &purge.Request{Site: "s", BaseURL: "https://" + host + "/c/", Paths: paths(70), Keys: []string{"s:url:/x/"}}
		rep, err := c.Purge(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		calls := f.Calls()
		if want := (140 + limit - 1) / limit; len(calls) != want || rep.Calls != want {
			t.Errorf("limit %d: %d calls, report %+v, want %d", limit, len(calls), rep, want)
		}
		var got []string
		for _, cl := range calls {
			got = append(got, cl.Files...)
		}
		var want []string
		for _, p := range r.Paths {
			want = append(want, "https://"+host+p)
		}
		if !slices.Equal(got, want) {
			t.Errorf("files sent differ from the request's")
		}
		if rep.Paths != 140 || rep.Mode != "files" {
			t.Errorf("report %+v", rep)
		}
	}
}

func TestTagsMode(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	c, _ := newCDN(t, f, func(c *Config) { c.Mode = Tags })
	var keys []string
	for i := range 45 {
		keys = append(keys, fmt.Sprintf("s:url:/p%d/", i))
	}
	r := &purge.Request{Site: "s", BaseURL: "http://" + host, Paths: []string{"/n/", "/n/index.html"}, Added: []string{"/n/", "/n/index.html"}, Keys: keys}
	rep, err := c.Purge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 3 || len(calls[0].Tags) != 30 || len(calls[1].Tags) != 15 || !slices.Equal(calls[2].Files, []string{"http://" + host + "/n/", "http://" + host + "/n/index.html"}) {
		t.Errorf("calls %+v", calls)
	}
	if rep.Keys != 45 || rep.Paths != 2 {
		t.Errorf("report %+v", rep)
	}
	// All in tags mode purges the site tag.
	f2 := cdntest.NewCloudflare(t, zone, token)
	c2, _ := newCDN(t, f2, func(c *Config) { c.Mode = Tags })
	if _, err := c2.Purge(t.Context(), purge.All("s", "https://"+host+"/", "")); err != nil || !slices.Equal(f2.Calls()[0].Tags, []string{"s"}) {
		t.Errorf("all by tag: %v %+v", err, f2.Calls())
	}
}

func TestPrefixesMode(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	f.Host = host
	c, _ := newCDN(t, f, func(c *Config) { c.Mode = Prefixes })
	r := &purge.Request{Site: "s", BaseURL: "https://" + host + "/c/", Paths: []string{"/c/", "/c/a/", "/c/a/index.html", "/c/feed.xml", "/c/index.html"}}
	if _, err := c.Purge(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 2 || !slices.Equal(calls[0].Prefixes, []string{host + "/c/a", host + "/c/feed.xml"}) ||
		!slices.Equal(calls[1].Files, []string{"https://" + host + "/c/", "https://" + host + "/c/index.html"}) {
		t.Errorf("calls %+v", calls)
	}
}

func TestAll(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	f.Host = host
	c, _ := newCDN(t, f, nil)
	if _, err := c.Purge(t.Context(), purge.All("s", "https://"+host+"/campaign/", "")); err != nil {
		t.Fatal(err)
	}
	if calls := f.Calls(); len(calls) != 1 || !slices.Equal(calls[0].Prefixes, []string{host + "/campaign"}) || calls[0].Everything {
		t.Errorf("all without all_zone: %+v", calls)
	}
	f2 := cdntest.NewCloudflare(t, zone, token)
	c2, _ := newCDN(t, f2, func(c *Config) { c.AllZone = true })
	if rep, err := c2.Purge(t.Context(), purge.All("s", "https://"+host+"/", "")); err != nil || !f2.Calls()[0].Everything || rep.Mode != "all" {
		t.Errorf("all_zone: %v %+v", err, f2.Calls())
	}
}

func TestRetry429(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	c, s := newCDN(t, f, nil)
	f.FailNext(2, cdntest.Failure{Status: 429, RetryAfter: "12"})
	f.FailNext(1, cdntest.Failure{Status: 500})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://" + host, Paths: []string{"/a"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Waits()) != "[12s 12s 4s]" || rep.Calls != 4 || len(f.Calls()) != 1 {
		t.Errorf("waits %v, report %+v", s.Waits(), rep)
	}
}

func TestPersistentFailure(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	c, s := newCDN(t, f, nil)
	f.FailAlways(&cdntest.Failure{Status: 502})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://" + host, Paths: []string{"/a"}})
	if err == nil || !strings.Contains(err.Error(), "cloudflare:"+zone) || !strings.Contains(err.Error(), "HTTP 502") || strings.Contains(err.Error(), token) {
		t.Fatalf("error %v", err)
	}
	if f.Requests() != 5 || rep.Calls != 5 || len(s.Waits()) != 4 {
		t.Errorf("%d requests, report %+v", f.Requests(), rep)
	}
}

func TestFromSettings(t *testing.T) {
	get := func(k string) string { return map[string]string{"CLOUDFLARE_API_TOKEN": token}[k] }
	c, err := FromSettings(t.Context(), purge.NewSettings("cdn[3].cloudflare", map[string]any{"zone": "Z", "mode": "tags", "per_request": 100}, get))
	if err != nil || c.Name() != "cloudflare:Z" || c.(*CDN).cfg.PerRequest != 100 || c.(*CDN).cfg.Mode != Tags {
		t.Fatalf("%v %v", c, err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[3].cloudflare", map[string]any{"zone": "Z", "per_request": 1000}, get)); err == nil || !strings.Contains(err.Error(), "cdn[3].cloudflare.per_request must be between 1 and 500") {
		t.Errorf("per_request: %v", err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[3].cloudflare", map[string]any{"zone": "Z", "mode": "urls"}, get)); err == nil || !strings.Contains(err.Error(), "mode must be one of files, tags, prefixes") {
		t.Errorf("mode: %v", err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[3].cloudflare", map[string]any{}, get)); err == nil || err.Error() != "cdn[3].cloudflare.zone is required" {
		t.Errorf("zone: %v", err)
	}
}

func TestPlan(t *testing.T) {
	f := cdntest.NewCloudflare(t, zone, token)
	c, _ := newCDN(t, f, nil)
	lines, rep, err := c.Plan(&purge.Request{Site: "s", BaseURL: "https://" + host + "/", Paths: paths(20)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"POST /zones/ZONE9/purge_cache files: 30", "POST /zones/ZONE9/purge_cache files: 10"}; !slices.Equal(lines, want) || rep.Calls != 2 || rep.Paths != 40 || f.Requests() != 0 {
		t.Errorf("plan %q, report %+v", lines, rep)
	}
}
