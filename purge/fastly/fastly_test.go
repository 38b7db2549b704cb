package fastly

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
)

const (
	token   = "fastly-test-token-XYZ"
	service = "SVC123"
)

func newCDN(t *testing.T, f *cdntest.Fastly, mod func(*Config)) (*CDN, *cdntest.Sleeps) {
	t.Helper()
	s := &cdntest.Sleeps{}
	cfg := Config{Service: service, Token: token, API: f.URL, Backoff: purge.Backoff{Sleep: s.Sleep}}
	return cdntest.Adapter(t, cfg, mod, New), s
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("site:url:/p%04d/", i)
	}
	return out
}

func TestBulkKeysWithinLimit(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, _ := newCDN(t, f, nil)
	r := &purge.Request{Site: "site", BaseURL: "https://www.example.org/", Keys: keys(600), Paths: []string{"/a/"}}
	rep, err := c.Purge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range f.Bulk() {
		sizes = append(sizes, len(b))
	}
	slices.Sort(sizes)
	if fmt.Sprint(sizes) != "[88 256 256]" {
		t.Errorf("batches %v: want 256+256+88", sizes)
	}
	sent := f.Keys()
	slices.Sort(sent)
	if !slices.Equal(sent, r.Keys) {
		t.Error("keys sent differ from the request's")
	}
	if len(f.URLs()) != 0 {
		t.Errorf("URL purges sent with keys: %q", f.URLs())
	}
	if rep.Calls != 3 || rep.Keys != 600 || rep.Mode != "keys" {
		t.Errorf("report %+v", rep)
	}
}

func TestAddedPathsPurgedByURL(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, _ := newCDN(t, f, func(c *Config) { c.Soft = true })
	r := &purge.Request{Site: "site", BaseURL: "https://www.example.org/c/", Keys: []string{"site:url:/new/", "site:url:/old/"},
		Paths: []string{"/c/new/", "/c/new/index.html", "/c/old/", "/c/old/index.html"}, Added: []string{"/c/new/", "/c/new/index.html"}}
	rep, err := c.Purge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	urls := f.URLs()
	slices.Sort(urls)
	if want := []string{"www.example.org/c/new/", "www.example.org/c/new/index.html"}; !slices.Equal(urls, want) {
		t.Errorf("URL purges %q, want %q", urls, want)
	}
	if f.Soft() != 3 || rep.Mode != "keys+urls" || rep.Calls != 3 || rep.Paths != 2 || rep.Keys != 2 {
		t.Errorf("soft %d, report %+v", f.Soft(), rep)
	}
	// With keys_only the edge tags its 404s: no URL purge.
	f2 := cdntest.NewFastly(t, service, token)
	c2, _ := newCDN(t, f2, func(c *Config) { c.KeysOnly = true })
	if _, err := c2.Purge(t.Context(), r); err != nil || len(f2.URLs()) != 0 || f2.Soft() != 0 {
		t.Errorf("keys only: %v, %q", err, f2.URLs())
	}
}

func TestURLsWithoutKeys(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, _ := newCDN(t, f, nil)
	r := &purge.Request{Site: "site", BaseURL: "https://www.example.org", Paths: []string{"/", "/index.html", "/a%20b/"}}
	rep, err := c.Purge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	urls := f.URLs()
	slices.Sort(urls)
	if want := []string{"www.example.org/", "www.example.org/a%20b/", "www.example.org/index.html"}; !slices.Equal(urls, want) {
		t.Errorf("URL purges %q, want %q", urls, want)
	}
	if rep.Mode != "urls" || rep.Calls != 3 || len(f.Bulk()) != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestAllPurgesSiteKey(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, _ := newCDN(t, f, nil)
	rep, err := c.Purge(t.Context(), purge.All("campaign", "https://www.example.org/", ""))
	if err != nil {
		t.Fatal(err)
	}
	if b := f.Bulk(); len(b) != 1 || !slices.Equal(b[0], []string{"campaign"}) || rep.Mode != "site" {
		t.Errorf("bulk %q, report %+v", b, rep)
	}
}

func TestRetry429And5xx(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, s := newCDN(t, f, nil)
	f.FailNext(1, cdntest.Failure{Status: 429, RetryAfter: "7"})
	f.FailNext(1, cdntest.Failure{Status: 503})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "site", Keys: keys(3)})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Waits()) != "[7s 2s]" {
		t.Errorf("waits %v: want Retry-After 7s, then backoff", s.Waits())
	}
	if rep.Calls != 3 || len(f.Bulk()) != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestPersistent5xxReported(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, s := newCDN(t, f, nil)
	f.FailAlways(&cdntest.Failure{Status: 503})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "site", Keys: keys(3)})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "fastly:"+service) || !strings.Contains(msg, "HTTP 503") || strings.Contains(msg, token) {
		t.Errorf("error %q: want the CDN and the status, never the token", msg)
	}
	if f.Requests() != 5 || rep.Calls != 5 || len(s.Waits()) != 4 {
		t.Errorf("%d requests, report %+v, waits %v: want 5 bounded attempts", f.Requests(), rep, s.Waits())
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), token) {
		t.Error("printing the adapter shows its token")
	}
}

func TestFromSettings(t *testing.T) {
	env := map[string]string{"FASTLY_API_TOKEN": token, "OTHER": "other-token"}
	get := func(k string) string { return env[k] }
	c, err := FromSettings(t.Context(), purge.NewSettings("cdn[1].fastly", map[string]any{"service": "S", "soft": true}, get))
	if err != nil || c.Name() != "fastly:S" || string(c.(*CDN).cfg.Token) != token || !c.(*CDN).cfg.Soft {
		t.Fatalf("%v %v", c, err)
	}
	c, err = FromSettings(t.Context(), purge.NewSettings("cdn[1].fastly", map[string]any{"service": "S", "token_env": "OTHER"}, get))
	if err != nil || string(c.(*CDN).cfg.Token) != "other-token" {
		t.Fatalf("token_env: %v", err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[1].fastly", map[string]any{}, get)); err == nil || err.Error() != "cdn[1].fastly.service is required" {
		t.Errorf("no service: %v", err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[1].fastly", map[string]any{"service": "S"}, func(string) string { return "" })); err == nil || !strings.Contains(err.Error(), "FASTLY_API_TOKEN") {
		t.Errorf("no token: %v", err)
	}
}

func TestPlan(t *testing.T) {
	f := cdntest.NewFastly(t, service, token)
	c, _ := newCDN(t, f, func(c *Config) { c.Soft = true })
	lines, rep, err := c.Plan(&purge.Request{Site: "site", BaseURL: "https://www.example.org/", Keys: keys(300), Paths: []string{"/n/"}, Added: []string{"/n/"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /service/SVC123/purge (256 keys) [Fastly-Soft-Purge: 1]",
		"POST /service/SVC123/purge (44 keys) [Fastly-Soft-Purge: 1]",
		"POST /purge/www.example.org/n/ [Fastly-Soft-Purge: 1]",
	}
	if !slices.Equal(lines, want) || rep.Calls != 3 || rep.Keys != 300 || rep.Paths != 1 || f.Requests() != 0 {
		t.Errorf("plan %q, report %+v, %d requests sent", lines, rep, f.Requests())
	}
}
