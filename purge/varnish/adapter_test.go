package varnish

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stump-dev/stump/purge"
)

// fake is a Varnish that answers as the recommended VCL does and records requests.
type fake struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string // "METHOD PATH host=H [header: value]"
	// fail, when set, answers instead (status, headers) for the n-th request (from 1).
	fail func(n int, r *http.Request) (int, http.Header)
	n    atomic.Int64
}

func newFake(t *testing.T) *fake {
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.n.Add(1))
		line := fmt.Sprintf("%s %s host=%s", r.Method, r.URL.RequestURI(), r.Host)
		for _, h := range []string{"xkey-purge", "xkey-softpurge", "X-Ban-Url", "X-Purge-Soft", "X-Purge-Token"} {
			if v := r.Header.Get(h); v != "" {
				line += fmt.Sprintf(" [%s: %s]", h, v)
			}
		}
		f.mu.Lock()
		f.got = append(f.got, line)
		f.mu.Unlock()
		if f.fail != nil {
			if code, h := f.fail(n, r); code != 0 {
				for k, v := range h {
					w.Header()[k] = v
				}
				w.WriteHeader(code)
				fmt.Fprintf(w, "%d fake\n", code)
				return
			}
		}
		switch {
		case r.Method == "BAN":
			w.Header().Set("X-Banned", "1")
		case r.Header.Get("xkey-purge") != "" || r.Header.Get("xkey-softpurge") != "":
			w.Header().Set("X-Purged", "2")
		default:
			w.Header().Set("X-Purged", "1")
		}
		fmt.Fprintln(w, "200 Purged")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.got...)
	sort.Strings(out)
	return out
}

// noSleep records backoff waits instead of sleeping.
type noSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *noSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newCDN(t *testing.T, cfg Config) *CDN {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var sampleReq = &purge.Request{
	Site:    "x",
	BaseURL: "https://x.example.org/",
	Paths:   []string{"/news/a/", "/news/a/index.html", "/feed.xml", "/news/fresh/", "/news/fresh/index.html"},
	Added:   []string{"/news/fresh/", "/news/fresh/index.html"},
	Keys:    []string{"x:url:/news/a/", "x:url:/feed.xml", "x:url:/news/fresh/", "x:section:news"},
}

func TestPlanXkey(t *testing.T) {
	c := newCDN(t, Config{Endpoints: []string{"http://127.0.0.1:6081"}})
	calls, rep, err := c.Plan(sampleReq)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PURGE / [Xkey-Purge: x:section:news x:url:/feed.xml x:url:/news/a/ x:url:/news/fresh/]"}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if rep.Mode != "keys" || rep.Keys != 4 || rep.CDN != "varnish:127.0.0.1:6081" {
		t.Errorf("report = %+v", rep)
	}

	// Soft, and added URLs purged by URL as well.
	c = newCDN(t, Config{Endpoints: []string{"http://127.0.0.1:6081"}, Soft: true, AddedByURL: true})
	calls, rep, _ = c.Plan(sampleReq)
	want = []string{
		"PURGE / [Xkey-Softpurge: x:section:news x:url:/feed.xml x:url:/news/a/ x:url:/news/fresh/]",
		"PURGE /news/fresh/ [X-Purge-Soft: 1]",
		"PURGE /news/fresh/index.html [X-Purge-Soft: 1]",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") || rep.Paths != 2 {
		t.Errorf("soft calls:\n%s\nwant:\n%s\nreport %+v", strings.Join(calls, "\n"), strings.Join(want, "\n"), rep)
	}

	// Paths alone (stump purge --urls): their URL keys, below the base URL's path.
	r := &purge.Request{Site: "x", BaseURL: "https://x.example.org/blog/", Paths: []string{"/blog/", "/blog/index.html", "/blog/caf%C3%A9/", "/blog/café/index.html"}}
	calls, _, _ = c.Plan(r)
	if len(calls) != 1 || calls[0] != "PURGE / [Xkey-Softpurge: x:url:/ x:url:/caf%C3%A9/]" {
		t.Errorf("paths as keys: %q", calls)
	}

	// All, or the site key among the keys: the site key alone.
	for _, r := range []*purge.Request{{Site: "x", BaseURL: "https://x.example.org/", All: true},
		{Site: "x", BaseURL: "https://x.example.org/", Keys: []string{"x:url:/a/", "x"}}} {
		calls, rep, _ = newCDN(t, Config{Endpoints: []string{"http://v"}}).Plan(r)
		if len(calls) != 1 || calls[0] != "PURGE / [Xkey-Purge: x]" || rep.Mode != "site" {
			t.Errorf("all: %q %+v", calls, rep)
		}
	}
}

func TestPlanPurge(t *testing.T) {
	c := newCDN(t, Config{Endpoints: []string{"http://127.0.0.1:6081"}, Mode: ModePurge, Host: "www.example.org"})
	r := &purge.Request{Site: "x", BaseURL: "https://x.example.org/", Paths: []string{"/news/a/", "/news/a/index.html"},
		Keys: []string{"x:url:/feed.xml", "x:url:/news/a/", "x:url:/about/", "x:section:news"}}
	calls, rep, err := c.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PURGE /about/", "PURGE /about/index.html", "PURGE /feed.xml", "PURGE /news/a/", "PURGE /news/a/index.html"}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if rep.Mode != "urls" || rep.Paths != 5 || !strings.Contains(rep.Detail, "1 surrogate keys skipped") {
		t.Errorf("report = %+v", rep)
	}
	calls, rep, _ = c.Plan(&purge.Request{Site: "x", All: true})
	if len(calls) != 1 || calls[0] != "BAN / [X-Ban-Url: .]" || rep.Mode != "all" {
		t.Errorf("all: %q %+v", calls, rep)
	}
}

func TestPlanBan(t *testing.T) {
	c := newCDN(t, Config{Endpoints: []string{"http://127.0.0.1:6081"}, Mode: ModeBan})
	calls, rep, err := c.Plan(sampleReq)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || rep.Calls != 0 || rep.Paths != 5 {
		t.Fatalf("calls %q report %+v", calls, rep)
	}
	re := regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(calls[0], "BAN / [X-Ban-Url: "), "]"))
	for _, p := range []string{"/news/a/", "/news/a/index.html", "/feed.xml", "/news/fresh/", "/news/fresh/index.html"} {
		if !re.MatchString(p) {
			t.Errorf("ban %s does not match %s", re, p)
		}
	}
	for _, p := range []string{"/news/", "/news/ab/", "/news/a/x", "/feedxxml", "/feed.xml2", "/x/news/a/", "/news/a/index.htm"} {
		if re.MatchString(p) {
			t.Errorf("ban %s matches %s", re, p)
		}
	}
}

// TestBanRegexes: metacharacters stay literal, and many paths split under the limit.
func TestBanRegexes(t *testing.T) {
	odd := []string{"/a+b/", "/c(d)*.html", "/e$f/index.html", "/g[h]/", "/i%20j/"}
	res, err := banRegexes(odd, 1000)
	if err != nil || len(res) != 1 {
		t.Fatalf("%q %v", res, err)
	}
	if strings.ContainsAny(res[0], " \"\\") {
		t.Errorf("regex %q has a space, quote or backslash", res[0])
	}
	re := regexp.MustCompile(res[0])
	for _, p := range append(odd, "/a+b/index.html", "/g[h]/index.html") {
		if !re.MatchString(p) {
			t.Errorf("%s does not match %s", re, p)
		}
	}
	for _, p := range []string{"/aab/", "/cd.html", "/c(d)x.html", "/e/index.html", "/gh/"} {
		if re.MatchString(p) {
			t.Errorf("%s matches %s", re, p)
		}
	}

	var many []string
	for i := range 3000 {
		many = append(many, fmt.Sprintf("/news/page-%04d/", i))
	}
	res, err = banRegexes(many, DefaultMaxHeaderBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 2 {
		t.Fatalf("%d regexes for 3000 paths", len(res))
	}
	alts := 0
	var res2 []*regexp.Regexp
	for _, r := range res {
		if len(r) > DefaultMaxHeaderBytes {
			t.Errorf("regex of %d bytes", len(r))
		}
		alts += strings.Count(r, "|") + 1
		res2 = append(res2, regexp.MustCompile(r))
	}
	if alts != len(many) {
		t.Errorf("%d alternatives for %d paths", alts, len(many))
	}
	// A sample (matching 3000 paths against big alternations is slow under -race).
	for i := 0; i < len(many); i += 97 {
		n := 0
		for _, re := range res2 {
			if re.MatchString(many[i]) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d regexes, want 1", many[i], n)
		}
	}
	if _, err := banRegexes([]string{"/" + strings.Repeat("a", 100)}, 50); err == nil {
		t.Error("a path longer than the limit was accepted")
	}
}

func TestXkeyChunks(t *testing.T) {
	r := &purge.Request{Site: "x", BaseURL: "https://x.example.org/"}
	for i := range 2000 {
		r.Keys = append(r.Keys, fmt.Sprintf("x:url:/news/page-%04d/", i))
	}
	c := newCDN(t, Config{Endpoints: []string{"http://v"}})
	calls, rep, err := c.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, cl := range calls {
		v := strings.TrimSuffix(strings.TrimPrefix(cl, "PURGE / [Xkey-Purge: "), "]")
		if len(v) > DefaultMaxHeaderBytes {
			t.Errorf("header of %d bytes", len(v))
		}
		for _, k := range strings.Fields(v) {
			seen[k] = true
		}
	}
	// 2000 keys of 24 bytes and a space: 50,000 bytes, so 7 calls of at most 7 KiB.
	if len(seen) != 2000 || len(calls) != 7 || rep.Keys != 2000 {
		t.Errorf("%d keys in %d calls (report %+v)", len(seen), len(calls), rep)
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                  "/",
		"/news/a/":           "/news/a/",
		"/café/":             "/caf%C3%A9/",
		"/caf%C3%A9/":        "/caf%C3%A9/",
		"/a b/":              "/a%20b/",
		"/a?b":               "/a%3Fb",
		"//x/y":              "//x/y",
		"/100%/":             "/100%25/",
		"/a\r\nX-Evil: 1":    "/a%0D%0AX-Evil:%201",
		"/news/(draft)+v2/":  "/news/(draft)+v2/",
		"/news/%28draft%29/": "/news/%28draft%29/",
	} {
		got, err := escapePath(in)
		if err != nil || got != want {
			t.Errorf("escapePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := escapePath("news/"); err == nil {
		t.Error("a relative path was accepted")
	}
}

// TestFleet: every endpoint gets every request; a 5xx is retried; an endpoint that
// refuses fails the purge (naming it) without stopping the others.
func TestFleet(t *testing.T) {
	a, b, bad := newFake(t), newFake(t), newFake(t)
	b.fail = func(n int, _ *http.Request) (int, http.Header) {
		if n <= 2 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}
		}
		return 0, nil
	}
	bad.fail = func(int, *http.Request) (int, http.Header) { return http.StatusForbidden, nil }
	s := &noSleep{}
	c := newCDN(t, Config{Endpoints: []string{a.srv.URL, b.srv.URL, bad.srv.URL}, Mode: ModePurge,
		Backoff: purge.Backoff{Sleep: s.sleep}})
	r := &purge.Request{Site: "x", BaseURL: "https://x.example.org/", Paths: []string{"/a/", "/b/", "/c.xml"}}
	rep, err := c.Purge(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), bad.srv.URL) || !strings.Contains(err.Error(), "403") ||
		!strings.Contains(err.Error(), "purgers ACL") || strings.Contains(err.Error(), a.srv.URL) {
		t.Errorf("err = %v; want only the refusing endpoint, with the ACL hint", err)
	}
	want := []string{"PURGE /a/ host=x.example.org", "PURGE /b/ host=x.example.org", "PURGE /c.xml host=x.example.org"}
	if got := a.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("endpoint a got:\n%s", strings.Join(got, "\n"))
	}
	if got := b.requests(); len(got) != 5 { // 3 calls, 2 of them answered 503 once
		t.Errorf("endpoint b got %d requests, want 5: %q", len(got), got)
	}
	if got := bad.requests(); len(got) != 3 { // a 403 is not retried
		t.Errorf("bad endpoint got %d requests, want 3", len(got))
	}
	if len(s.waits) != 2 || s.waits[0] != time.Second || s.waits[1] != time.Second {
		t.Errorf("waits = %v; want Retry-After's 1s twice", s.waits)
	}
	if rep.Calls != 9 || rep.Paths != 3 || rep.Mode != "urls" || !strings.Contains(rep.Detail, "3 endpoints") {
		t.Errorf("report = %+v", rep)
	}
	if c.Name() != "varnish:"+strings.TrimPrefix(a.srv.URL, "http://")+"+2" {
		t.Errorf("name = %s", c.Name())
	}
}

func TestRetriesGiveUp(t *testing.T) {
	f := newFake(t)
	f.fail = func(int, *http.Request) (int, http.Header) { return http.StatusBadGateway, nil }
	s := &noSleep{}
	c := newCDN(t, Config{Endpoints: []string{f.srv.URL}, Backoff: purge.Backoff{Attempts: 3, Base: 100 * time.Millisecond, Sleep: s.sleep}})
	_, err := c.Purge(context.Background(), sampleReq)
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "3 tries") {
		t.Errorf("err = %v", err)
	}
	if len(f.requests()) != 3 || len(s.waits) != 2 || s.waits[1] < s.waits[0] {
		t.Errorf("%d requests, waits %v", len(f.requests()), s.waits)
	}

	// A Retry-After longer than the backoff's Max is not waited for.
	f.fail = func(int, *http.Request) (int, http.Header) {
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"600"}}
	}
	_, err = c.Purge(context.Background(), sampleReq)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("err = %v", err)
	}

	// Connection refused is retried too.
	f.srv.Close()
	s.waits = nil
	_, err = c.Purge(context.Background(), sampleReq)
	if err == nil || len(s.waits) != 2 {
		t.Errorf("closed endpoint: err = %v, waits %v", err, s.waits)
	}
}

// TestWrongVCL: a 200 without the recommended VCL's answer header means the VCL did
// something else (a plain `return (purge)` of "/"): that is an error, not a success.
func TestWrongVCL(t *testing.T) {
	f := newFake(t)
	f.fail = func(int, *http.Request) (int, http.Header) { return http.StatusOK, nil }
	for _, mode := range []string{ModeXkey, ModeBan} {
		c := newCDN(t, Config{Endpoints: []string{f.srv.URL}, Mode: mode})
		_, err := c.Purge(context.Background(), sampleReq)
		if err == nil || !strings.Contains(err.Error(), "docs/varnish.md") {
			t.Errorf("%s: err = %v", mode, err)
		}
	}
	// Plain PURGE is what any VCL does; a 404 (nothing cached) is fine too.
	f.fail = func(n int, _ *http.Request) (int, http.Header) {
		if n%2 == 0 {
			return http.StatusNotFound, nil
		}
		return http.StatusOK, nil
	}
	c := newCDN(t, Config{Endpoints: []string{f.srv.URL}, Mode: ModePurge})
	if _, err := c.Purge(context.Background(), sampleReq); err != nil {
		t.Errorf("purge mode: %v", err)
	}
	// 405: the VCL has no PURGE.
	f.fail = func(int, *http.Request) (int, http.Header) { return http.StatusMethodNotAllowed, nil }
	if _, err := c.Purge(context.Background(), sampleReq); err == nil || !strings.Contains(err.Error(), "does not accept PURGE") {
		t.Errorf("405: %v", err)
	}
}

func TestCanceled(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := newCDN(t, Config{Endpoints: []string{f.srv.URL}, Mode: ModePurge})
	if _, err := c.Purge(ctx, sampleReq); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestEmptyRequest(t *testing.T) {
	f := newFake(t)
	c := newCDN(t, Config{Endpoints: []string{f.srv.URL}})
	rep, err := c.Purge(context.Background(), &purge.Request{Site: "x"})
	if err != nil || rep.Calls != 0 || len(f.requests()) != 0 {
		t.Errorf("rep %+v err %v, %d requests", rep, err, len(f.requests()))
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no endpoints"},
		{Config{Endpoints: []string{"http://v"}, Mode: "soft"}, `mode "soft"`},
		{Config{Endpoints: []string{"127.0.0.1:6081"}}, "not an http(s) URL"},
		{Config{Endpoints: []string{"http://v/purge"}}, "has a path"},
		{Config{Endpoints: []string{"http://admin:hunter2@v:6081"}}, "holds credentials"},
		{Config{Endpoints: []string{"http://v"}, Host: "a b"}, "not a host"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%+v) = %v; want %q", tc.cfg, err, tc.want)
		}
	}
	c := newCDN(t, Config{Endpoints: []string{"http://v:6081/", "http://v:6081"}})
	if len(c.endpoints) != 1 || c.Mode() != ModeXkey {
		t.Errorf("endpoints %v mode %s", c.endpoints, c.Mode())
	}
	if _, _, err := c.Plan(&purge.Request{Site: "x", Paths: []string{"/a/"}}); err == nil || !strings.Contains(err.Error(), "no Host") {
		t.Errorf("no host: %v", err)
	}
}

func TestFromSettings(t *testing.T) {
	s := purge.NewSettings("cdn[0].varnish", map[string]any{
		"endpoints": []any{"http://127.0.0.1:6081", "http://127.0.0.1:6082"},
		"mode":      "ban", "host": "www.example.org", "soft": true,
	}, nil)
	cdn, err := FromSettings(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	c := cdn.(*CDN)
	if c.cfg.Mode != ModeBan || c.cfg.Host != "www.example.org" || !c.cfg.Soft || len(c.endpoints) != 2 {
		t.Errorf("cfg = %+v", c.cfg)
	}
	s = purge.NewSettings("cdn[0].varnish", map[string]any{"endpoints": "http://v", "mode": "nope"}, nil)
	if _, err := FromSettings(context.Background(), s); err == nil || !strings.Contains(err.Error(), "cdn[0].varnish.mode") {
		t.Errorf("bad mode: %v", err)
	}
	s = purge.NewSettings("cdn[0].varnish", map[string]any{"endpoints": "ftp://v"}, nil)
	if _, err := FromSettings(context.Background(), s); err == nil || !strings.Contains(err.Error(), "cdn[0].varnish") {
		t.Errorf("bad endpoint: %v", err)
	}
}

// The purge token comes from the environment (STUMP_PURGE_TOKEN, or the variable
// token_env names) and goes with every request, never into Plan's lines.
func TestToken(t *testing.T) {
	env := map[string]string{"STUMP_PURGE_TOKEN": "default-token-0123456789", "OTHER_TOKEN": " other-token-0123456789 \n"}
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "default-token-0123456789"},
		{map[string]any{"token_env": "OTHER_TOKEN"}, "other-token-0123456789"},
		{map[string]any{"token_env": "UNSET_TOKEN"}, ""},
	} {
		f := newFake(t)
		tc.settings["endpoints"] = []any{f.srv.URL}
		s := purge.NewSettings("cdn[0].varnish", tc.settings, func(k string) string { return env[k] })
		cdn, err := FromSettings(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Done(); err != nil {
			t.Fatal(err)
		}
		lines, _, err := cdn.(*CDN).Plan(sampleReq)
		if err != nil || strings.Contains(strings.Join(lines, "\n"), "token-") {
			t.Errorf("Plan shows the token: %q %v", lines, err)
		}
		if _, err := cdn.Purge(context.Background(), sampleReq); err != nil {
			t.Fatal(err)
		}
		for _, got := range f.requests() {
			has := strings.Contains(got, "[X-Purge-Token: "+tc.want+"]")
			if tc.want == "" {
				has = !strings.Contains(got, "X-Purge-Token")
			}
			if !has {
				t.Errorf("%v: request %q, want token %q", tc.settings, got, tc.want)
			}
		}
	}
	s := purge.NewSettings("cdn[0].varnish", map[string]any{"endpoints": "http://v", "token_env": "a=b"}, nil)
	if _, err := FromSettings(context.Background(), s); err == nil || !strings.Contains(err.Error(), "token_env") {
		t.Errorf("token_env holding a value: %v", err)
	}
}

func TestVCL(t *testing.T) {
	vcl, err := VCL(VCLOptions{BackendHost: "127.0.0.1", BackendPort: 7071, WebsiteHost: "site.localhost", Site: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.host = "127.0.0.1";`, `.port = "7071";`, `set bereq.http.Host = "site.localhost";`,
		`" x:url:" +`, "import xkey;", "xkey.purge(req.http.xkey-purge)", "std.ban(", `set beresp.ttl = 60s;`} {
		if !strings.Contains(vcl, want) {
			t.Errorf("VCL lacks %q", want)
		}
	}
	if regexp.MustCompile(`@[A-Z_]+@`).MatchString(vcl) {
		t.Errorf("VCL keeps a placeholder: %s", regexp.MustCompile(`@[A-Z_]+@`).FindString(vcl))
	}
	for _, o := range []VCLOptions{
		{BackendHost: `x"; }`, BackendPort: 1, WebsiteHost: "h", Site: "x"},
		{BackendHost: "h", BackendPort: 0, WebsiteHost: "h", Site: "x"},
		{BackendHost: "h", BackendPort: 1, WebsiteHost: "a b", Site: "x"},
		{BackendHost: "h", BackendPort: 1, WebsiteHost: "h", Site: "x y"},
	} {
		if _, err := VCL(o); err == nil {
			t.Errorf("VCL(%+v) accepted", o)
		}
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the VCL block of docs/varnish.md from stump.vcl")

// TestDocsVCL: docs/varnish.md shows the VCL that VCL() makes for its example, so the
// two cannot drift apart.
func TestDocsVCL(t *testing.T) {
	const path = "../../docs/varnish.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vcl, err := VCL(docExample)
	if err != nil {
		t.Fatal(err)
	}
	block := "```vcl\n" + vcl + "```\n"
	if strings.Contains(string(doc), block) {
		return
	}
	start := strings.Index(string(doc), "```vcl\n")
	end := -1
	if start >= 0 {
		if i := strings.Index(string(doc)[start+1:], "```\n"); i >= 0 {
			end = start + 1 + i + len("```\n")
		}
	}
	if *updateDocs && end > start {
		out := string(doc[:start]) + block + string(doc[end:])
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the VCL block of %s", path)
		return
	}
	t.Errorf("docs/varnish.md does not hold the VCL of %+v in its ```vcl block; rewrite it with:\n"+
		"  go test ./purge/varnish -run TestDocsVCL -update-docs", docExample)
}

// docExample is the setup docs/varnish.md shows: versitygw's website endpoint on
// 127.0.0.1:7071, bucket "example", site "example".
var docExample = VCLOptions{BackendHost: "127.0.0.1", BackendPort: 7071, WebsiteHost: "example.localhost", Site: "example"}
