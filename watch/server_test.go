package watch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/publish"
)

// newTestServer builds files' site "x" in a session and serves it with httptest.
func newTestServer(t *testing.T, files map[string]string) (*Server, *build.Session, *httptest.Server) {
	t.Helper()
	root := writeTree(t, t.TempDir(), files)
	ws, err := build.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	sess := ws.NewSession("x", build.Options{})
	t.Cleanup(sess.Close)
	if _, err := sess.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, err := ws.LoadSiteConfig("x")
	if err != nil {
		t.Fatal(err)
	}
	var rules []publish.HeaderRule
	for _, h := range cfg.Headers {
		rules = append(rules, publish.HeaderRule{Path: h.Path, Values: h.Values})
	}
	srv := NewServer()
	srv.SetSource(sess, cfg.Base.Path, rules)
	srv.Reload()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.CloseStreams()
		hs.Close()
	})
	return srv, sess, hs
}

func TestServerURLs(t *testing.T) {
	_, _, hs := newTestServer(t, smallSite)
	for _, c := range []struct {
		path     string
		status   int
		location string
		body     string
	}{
		{"/", 200, "", "Welcome home."},
		{"/news/a/", 200, "", "<p>Body of A.</p>"},
		{"/news/a/index.html", 200, "", "<p>Body of A.</p>"},
		{"/news/a", 302, "/news/a/", ""},
		{"/news/a?x=1", 302, "/news/a/", ""}, // the edge keeps no query by default
		{"/about/", 200, "", "About us."},
		{"/tags/go/", 200, "", `href="/news/a/"`},
		{"/old-a/", 301, "/news/a/", ""},
		{"/old-a/index.html", 301, "/news/a/", ""},
		{"/nope", 404, "", "Page not found"},
		{"/news/nope/", 404, "", "Page not found"},
		{"/_stump/", 404, "", ""},
		{"/_stump/x", 404, "", ""},
		{"/news/../about/", 404, "", ""}, // never leaves the tree
		{"/robots.txt", 200, "", "Sitemap: https://x.example.org/sitemap.xml"},
	} {
		resp, body := get(t, hs.URL+c.path)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: status %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if loc := resp.Header.Get("Location"); loc != c.location {
			t.Errorf("GET %s: Location %q, want %q", c.path, loc, c.location)
		}
		if !strings.Contains(body, c.body) {
			t.Errorf("GET %s: body does not hold %q:\n%.300s", c.path, c.body, body)
		}
	}
}

// Query strings are treated as the edge treats them: only edge.query's parameters
// survive, sorted (here, on a redirect).
func TestServerQuery(t *testing.T) {
	srv, _, hs := newTestServer(t, smallSite)
	q, err := edge.NewQueryRules(&config.Edge{Query: []config.EdgeQuery{{Path: "news/**", Params: []string{"q", "page"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetQuery(q.Keep)
	for path, want := range map[string]string{
		"/news/a?x=1&q=go&page=2": "/news/a/?page=2&q=go",
		"/news/a?utm_source=x":    "/news/a/",
		"/about?q=go":             "/about/",
	} {
		resp, _ := get(t, hs.URL+path)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d Location %q, want 302 %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestServerHeadersAndScript(t *testing.T) {
	files := withFiles(smallSite, map[string]string{
		"sites/x/site.yaml": "title: X Site\nbaseURL: https://x.example.org/\nheaders:\n" +
			"  - path: '**/*.html'\n    values: {X-Frame-Options: DENY, Cache-Control: 'max-age=9', Content-Security-Policy: \"script-src 'none'\"}\n",
	})
	_, sess, hs := newTestServer(t, files)
	_, page := get(t, hs.URL+"/news/a/")
	m := regexp.MustCompile(`href="(/css/site\.[0-9a-f]{64}\.css)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no fingerprinted stylesheet in the page:\n%s", page)
	}
	scriptRE := regexp.MustCompile(`<script id="stump-live" data-v="[^"]+">`)
	for _, c := range []struct {
		path, ctype, cache string
		script             bool
	}{
		{"/news/a/", "text/html; charset=utf-8", "no-cache", true},
		{"/", "text/html; charset=utf-8", "no-cache", true},
		{"/nope", "text/html; charset=utf-8", "no-cache", true},
		{m[1], "text/css; charset=utf-8", publish.Immutable, false},
		{"/css/site.css", "text/css; charset=utf-8", "no-cache", false},
		{"/index.xml", "application/xml", "no-cache", false},
		{"/sitemap.xml", "application/xml", "no-cache", false},
		{"/robots.txt", "text/plain; charset=utf-8", "no-cache", false},
	} {
		resp, body := get(t, hs.URL+c.path)
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if got := scriptRE.MatchString(body); got != c.script {
			t.Errorf("%s: live script injected %v, want %v", c.path, got, c.script)
		}
		if c.script {
			// Once, right before </body>.
			if strings.Count(body, `id="stump-live"`) != 1 || !regexp.MustCompile(`</script>\s*</body>`).MatchString(body) {
				t.Errorf("%s: the script is not once before </body>", c.path)
			}
			if strings.Contains(body, `src="http`) && strings.Contains(body, "stump-live\" src") {
				t.Errorf("%s: external script", c.path)
			}
		}
		if c.path != "/nope" && c.script {
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") != "" {
				t.Errorf("%s: header rules: X-Frame-Options %q, CSP %q", c.path, resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"))
			}
		}
	}
	// Bytes other than HTML are served as built.
	data, _, _ := sess.File(strings.TrimPrefix(m[1], "/"))
	if _, body := get(t, hs.URL+m[1]); body != string(data) {
		t.Error("the stylesheet differs from the built one")
	}

	// HEAD: headers, no body. POST: 405. ETag: 304.
	resp, err := http.Head(hs.URL + "/news/a/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, err = http.Post(hs.URL+"/news/a/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = get(t, hs.URL+"/news/a/")
	req, _ := http.NewRequest("GET", hs.URL+"/news/a/", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
}

func TestServerBasePath(t *testing.T) {
	files := withFiles(smallSite, map[string]string{"sites/x/site.yaml": "title: X Site\nbaseURL: https://x.example.org/docs/\n"})
	_, _, hs := newTestServer(t, files)
	for _, c := range []struct {
		path, location string
		status         int
	}{
		{"/", "/docs/", 302},
		{"/docs", "/docs/", 302},
		{"/docs/", "", 200},
		{"/docs/news/a/", "", 200},
		{"/docs/news/a", "/docs/news/a/", 302},
		{"/docs/old-a/", "/docs/news/a/", 301},
		{"/news/a/", "", 404},
	} {
		resp, body := get(t, hs.URL+c.path)
		if resp.StatusCode != c.status || resp.Header.Get("Location") != c.location {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, resp.StatusCode, resp.Header.Get("Location"), c.status, c.location)
		}
		if c.status == 200 && !strings.Contains(body, `href="/docs/css/site.`) {
			t.Errorf("GET %s: stylesheet not under /docs/", c.path)
		}
	}
}

func TestServerEvents(t *testing.T) {
	srv, _, hs := newTestServer(t, smallSite)
	s := openStream(t, hs.URL+EventsPath)
	ev, ok := s.next(5 * time.Second)
	if !ok || ev.name != "hello" {
		t.Fatalf("first event %+v, want hello", ev)
	}
	var hello struct{ V string }
	json.Unmarshal([]byte(ev.data), &hello)
	if hello.V != srv.Version() {
		t.Fatalf("hello v %q, want %q", hello.V, srv.Version())
	}
	// Pages carry the version they were served at (the script compares it with hello's).
	if _, page := get(t, hs.URL+"/"); !strings.Contains(page, `data-v="`+srv.Version()+`"`) {
		t.Error("page does not carry the current version")
	}

	srv.Reload()
	ev, ok = s.next(5 * time.Second)
	if !ok || ev.name != "reload" || !strings.Contains(ev.data, srv.Version()) {
		t.Fatalf("event %+v, want reload at %s", ev, srv.Version())
	}

	srv.SwapCSS([]CSSSwap{{From: "/css/site.aaa.css", To: "/css/site.bbb.css", Integrity: "sha256-x"}}, []string{"/css/plain.css"})
	ev, ok = s.next(5 * time.Second)
	if !ok || ev.name != "css" {
		t.Fatalf("event %+v, want css", ev)
	}
	var css struct {
		V       string
		Swap    []CSSSwap
		Refetch []string
	}
	if err := json.Unmarshal([]byte(ev.data), &css); err != nil {
		t.Fatal(err)
	}
	if len(css.Swap) != 1 || css.Swap[0].From != "/css/site.aaa.css" || css.Swap[0].To != "/css/site.bbb.css" || css.Swap[0].Integrity != "sha256-x" || len(css.Refetch) != 1 {
		t.Fatalf("css event %s", ev.data)
	}

	err := errors.Join(
		&diag.Error{File: "sites/x/layouts/_default/single.html", Line: 3, Col: 7, Msg: `can't evaluate field Nope in type page (at <.Nope>)`},
		diag.New("sites/x/content/news/a.md", 2, 8, `unknown key "<b>"`),
		errors.New("plain & simple"),
	)
	srv.Failed(err)
	ev, ok = s.next(5 * time.Second)
	if !ok || ev.name != "error" {
		t.Fatalf("event %+v, want error", ev)
	}
	var fail struct {
		V      string
		Errors []ErrorItem
		HTML   string
	}
	if err := json.Unmarshal([]byte(ev.data), &fail); err != nil {
		t.Fatal(err)
	}
	if len(fail.Errors) != 3 || fail.Errors[0].Where() != "sites/x/layouts/_default/single.html:3:7" || fail.Errors[2].Msg != "plain & simple" {
		t.Fatalf("error items %+v", fail.Errors)
	}
	for _, want := range []string{"sites/x/layouts/_default/single.html:3:7", "(at &lt;.Nope&gt;)", "&#34;&lt;b&gt;&#34;", "plain &amp; simple"} {
		if !strings.Contains(fail.HTML, want) {
			t.Errorf("overlay does not hold %q:\n%s", want, fail.HTML)
		}
	}
	// HTML pages show the overlay over the last good page; other files are unchanged.
	resp, page := get(t, hs.URL+"/news/a/")
	if resp.StatusCode != 200 || !strings.Contains(page, `id="stump-error"`) || !strings.Contains(page, "<p>Body of A.</p>") ||
		!strings.Contains(page, "sites/x/layouts/_default/single.html:3:7") || strings.Contains(page, "<.Nope>") {
		t.Errorf("page during the error: %d\n%s", resp.StatusCode, page)
	}
	if _, robots := get(t, hs.URL+"/robots.txt"); strings.Contains(robots, `id="stump-error"`) {
		t.Error("overlay in robots.txt")
	}
	if resp, page := get(t, hs.URL+"/nope"); resp.StatusCode != 404 || !strings.Contains(page, `id="stump-error"`) {
		t.Errorf("404 during the error: %d, overlay %v", resp.StatusCode, strings.Contains(page, `id="stump-error"`))
	}

	// The next good build: reload, and the overlay is gone.
	srv.Reload()
	if ev, _ := s.next(5 * time.Second); ev.name != "reload" {
		t.Fatalf("event %+v, want reload", ev)
	}
	if _, page := get(t, hs.URL+"/news/a/"); strings.Contains(page, `id="stump-error"`) {
		t.Error("overlay after the fix")
	}

	// A second stream; shutting down ends both.
	s2 := openStream(t, hs.URL+EventsPath)
	s2.next(5 * time.Second) // hello
	if n := srv.Clients(); n != 2 {
		t.Errorf("%d clients, want 2", n)
	}
	srv.CloseStreams()
	for _, st := range []*sseStream{s, s2} {
		if ev, ok := st.next(5 * time.Second); ok {
			t.Errorf("event %+v after CloseStreams, want the end of the stream", ev)
		}
	}
	resp, err2 := http.Get(hs.URL + EventsPath)
	if err2 != nil {
		t.Fatal(err2)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("events after CloseStreams: %d", resp.StatusCode)
	}
}

func TestServerNoBuildYet(t *testing.T) {
	srv := NewServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	resp, page := get(t, hs.URL+"/")
	if resp.StatusCode != 503 || !strings.Contains(page, "building") || !strings.Contains(page, "stump-live") {
		t.Errorf("before the first build: %d\n%s", resp.StatusCode, page)
	}
	srv.Failed(diag.New("sites/x/site.yaml", 2, 1, "unknown key %q", "titel"))
	resp, page = get(t, hs.URL+"/news/a/")
	if resp.StatusCode != 500 || !strings.Contains(page, "sites/x/site.yaml:2:1") || !strings.Contains(page, "unknown key &#34;titel&#34;") {
		t.Errorf("first build failed: %d\n%s", resp.StatusCode, page)
	}
}

func TestInject(t *testing.T) {
	for _, c := range []struct{ page, want string }{
		{"<html><body><p>x</p></body></html>", "<html><body><p>x</p>S</body></html>"},
		{"<HTML><BODY>x</BODY></HTML>", "<HTML><BODY>xS</BODY></HTML>"},
		{"<p>no body</p>", "<p>no body</p>S"},
		{"<body><pre>&lt;/body&gt;</pre></body>", "<body><pre>&lt;/body&gt;</pre>S</body>"},
	} {
		if got := string(Inject([]byte(c.page), []byte("S"))); got != c.want {
			t.Errorf("Inject(%q) = %q, want %q", c.page, got, c.want)
		}
	}
}

func TestCSSBase(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"css/site." + h + ".css", "css/site.css", true},
		{"css/a.b." + h + ".css", "css/a.b.css", true},
		{"css/site.css", "", false},
		{"css/site." + h[:10] + ".css", "", false},
		{"js/app." + h + ".js", "", false},
	} {
		got, ok := cssBase(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("cssBase(%q) = %q, %v", c.in, got, ok)
		}
	}
}
