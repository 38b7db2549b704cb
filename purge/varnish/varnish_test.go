package varnish_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	s3store "github.com/stump-dev/stump/publish/store/s3"
	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/varnish"
	"github.com/stump-dev/stump/themes"
)

// TestMain shares one versitygw among the tests and points the AWS default chain at the
// test server's credentials only: s3store.Open takes credentials from nowhere else.
func TestMain(m *testing.M) {
	testenv.IsolateAWS()
	testenv.Main(m)
}

const (
	siteName = "x"
	siteHost = "x.example.org"
	baseURL  = "https://" + siteHost + "/"
	// freshURL is a page v1 lacks (visitors get a cached 404) and v2 adds.
	freshURL = "/news/fresh/"
	// lateURL is a page v4 adds, with a cached 404 before, while the 404 page itself
	// stays the same (so only the 404's own URL key can drop it in xkey mode).
	lateURL = "/news/late/"
)

// version is one build of the test site.
type version struct {
	name string
	dir  string
	m    *manifest.Manifest
	objs []publish.Object
	byP  map[string]publish.Object
}

// The test site, with the built-in campaign theme and its own copy of the theme's CSS
// (sites/x/static/css/site.css overrides the theme's; every page links it by its
// fingerprinted name).
func siteV1(t *testing.T) map[string]string {
	css, err := fs.ReadFile(mustTheme(t), "static/css/site.css")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"stump.yaml":                      "output: public\n",
		"sites/x/site.yaml":               "title: X\nbaseURL: " + baseURL + "\n",
		"sites/x/content/_index.md":       "---\ntitle: Home\n---\nWelcome.\n",
		"sites/x/content/news/_index.md":  "---\ntitle: News\n---\nAll the news.\n",
		"sites/x/content/news/a.md":       "---\ntitle: Alpha\ndate: 2026-01-01\n---\nAlpha, version one.\n",
		"sites/x/content/news/b.md":       "---\ntitle: Beta\ndate: 2026-02-01\n---\nBeta, version one.\n\n<!--more-->\n\nThe rest of Beta.\n",
		"sites/x/content/about.md":        "---\ntitle: About\n---\nAbout us.\n",
		"sites/x/content/contact.md":      "---\ntitle: Contact\n---\nWrite to us.\n",
		"sites/x/static/css/site.css":     string(css),
		"sites/x/static/files/manual.txt": "A static file that never changes.\n",
	}
}

func mustTheme(t *testing.T) fs.FS {
	th, ok := themes.Get("campaign")
	if !ok {
		t.Fatal("no built-in campaign theme")
	}
	return th
}

// buildVersions builds v1; v2, which changes one page and the CSS, adds the page at
// freshURL and deletes /about/; v3, which edits the body of one page only; and v4,
// which adds the page at lateURL and leaves the CSS and the 404 page as they were.
func buildVersions(t *testing.T) (v1, v2, v3, v4 *version) {
	ws := t.TempDir()
	files := siteV1(t)
	writeFiles(t, ws, files)
	v1 = buildVersion(t, ws, "v1")

	writeFiles(t, ws, map[string]string{
		"sites/x/content/news/a.md":     "---\ntitle: Alpha\ndate: 2026-01-01\n---\nAlpha, version two (v2-marker).\n",
		"sites/x/static/css/site.css":   files["sites/x/static/css/site.css"] + "\n/* v2 */\n.v2-marker { outline: 1px solid red; }\n",
		"sites/x/content/news/fresh.md": "---\ntitle: Fresh\ndate: 2026-03-01\n---\nA fresh page (fresh-marker).\n",
	})
	if err := os.Remove(filepath.Join(ws, "sites/x/content/about.md")); err != nil {
		t.Fatal(err)
	}
	v2 = buildVersion(t, ws, "v2")

	writeFiles(t, ws, map[string]string{
		"sites/x/content/news/b.md": "---\ntitle: Beta\ndate: 2026-02-01\n---\nBeta, version one.\n\n<!--more-->\n\nThe rest of Beta, edited (v3-marker).\n",
	})
	v3 = buildVersion(t, ws, "v3")

	writeFiles(t, ws, map[string]string{
		"sites/x/content/news/late.md": "---\ntitle: Late\ndate: 2026-04-01\n---\nA late page (late-marker).\n",
	})
	v4 = buildVersion(t, ws, "v4")
	return v1, v2, v3, v4
}

func buildVersion(t *testing.T, ws, name string) *version {
	t.Helper()
	w, err := build.Open(ws)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	res, err := w.Build(context.Background(), siteName, build.Options{OutDir: out, Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	objs, err := publish.Objects(res.Manifest, publish.DefaultCache, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &version{name: name, dir: out, m: res.Manifest, objs: objs, byP: map[string]publish.Object{}}
	for _, o := range objs {
		v.byP[o.Path] = o
	}
	return v
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// urls are the URL paths a file is served at: dir/index.html at "/dir/" and
// "/dir/index.html", anything else at its own path.
func urls(p string) []string {
	if p == "index.html" || strings.HasSuffix(p, "/index.html") {
		return []string{"/" + strings.TrimSuffix(p, "index.html"), "/" + p}
	}
	return []string{"/" + p}
}

// diff sorts the paths of two versions the way an edge sees them, independently of the
// planner: changed or added (must be fresh at once), deleted (must be gone), kept (must
// still be cached). Fingerprinted assets a deploy leaves behind stay in the store, so
// they count as kept.
type diff struct {
	changed, added, deleted, kept []string // file paths
}

func diffVersions(from, to *version) diff {
	var d diff
	for _, o := range to.objs {
		prev, ok := from.byP[o.Path]
		switch {
		case !ok:
			d.added = append(d.added, o.Path)
		case !sameObject(prev, o):
			d.changed = append(d.changed, o.Path)
		default:
			d.kept = append(d.kept, o.Path)
		}
	}
	for _, o := range from.objs {
		if _, ok := to.byP[o.Path]; !ok {
			if o.Class == manifest.Immutable {
				d.kept = append(d.kept, o.Path)
			} else {
				d.deleted = append(d.deleted, o.Path)
			}
		}
	}
	return d
}

func sameObject(a, b publish.Object) bool {
	if a.SHA256 != b.SHA256 || a.ContentType != b.ContentType || a.CacheControl != b.CacheControl || a.Redirect != b.Redirect || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if b.Metadata[k] != v {
			return false
		}
	}
	return true
}

// edge is Varnish as visitors reach it.
type edge struct {
	t    *testing.T
	base string
	// soft: purges mark objects stale, so the first request after one may still get
	// the old copy (from grace) while Varnish fetches the new one.
	soft   bool
	client *http.Client
}

type answer struct {
	status int
	body   []byte
	cache  string // X-Cache
	hits   int    // X-Cache-Hits
	age    string
	header http.Header
}

func (e *edge) get(path string) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = siteHost
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	hits, _ := strconv.Atoi(resp.Header.Get("X-Cache-Hits"))
	return answer{status: resp.StatusCode, body: body, cache: resp.Header.Get("X-Cache"), hits: hits, age: resp.Header.Get("Age"), header: resp.Header}
}

// await repeats a GET until it answers status (and body, when not nil), for at most 5
// seconds: after a soft purge, Varnish refreshes the object in the background.
func (e *edge) await(path string, status int, body []byte) answer {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := e.get(path)
		if a.status == status && (body == nil || bytes.Equal(a.body, body)) || time.Now().After(deadline) {
			return a
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileBytes(t *testing.T, v *version, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v.dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealVarnish publishes a site through stump's real deploy path to versitygw, with
// Varnish and the recommended VCL in front of its website endpoint, and checks after each
// deploy's purge (planned by purge.Plan, sent by purge.Purger and this adapter), in each
// mode, that what changed is fresh at once and nothing else went cold.
func TestRealVarnish(t *testing.T) {
	s3env := testenv.S3(t)
	if s3env.Website == "" {
		t.Fatal("the S3 server has no website endpoint")
	}
	v1, v2, v3, v4 := buildVersions(t)
	d12, d23, d34 := diffVersions(v1, v2), diffVersions(v2, v3), diffVersions(v3, v4)
	t.Logf("v1→v2: %d changed %v, %d added %v, %d deleted %v, %d kept %v", len(d12.changed), d12.changed,
		len(d12.added), d12.added, len(d12.deleted), d12.deleted, len(d12.kept), d12.kept)
	t.Logf("v2→v3: %d changed %v, %d added, %d deleted, %d kept", len(d23.changed), d23.changed,
		len(d23.added), len(d23.deleted), len(d23.kept))
	t.Logf("v3→v4: %d changed %v, %d added %v, %d deleted, %d kept", len(d34.changed), d34.changed,
		len(d34.added), d34.added, len(d34.deleted), len(d34.kept))
	// The scenario must be what it claims, whatever the theme does.
	newCSS := false
	for _, p := range d12.added {
		newCSS = newCSS || strings.HasSuffix(p, ".css") && v2.byP[p].Class == manifest.Immutable
	}
	if !newCSS || !contains(d12.added, "news/fresh/index.html") || !contains(d12.deleted, "about/index.html") ||
		!contains(d12.changed, "news/a/index.html") || !contains(d12.kept, "files/manual.txt") {
		t.Fatalf("v1→v2 is not the scenario (a new CSS, fresh added, about deleted, alpha changed, the static file kept): %+v", d12)
	}
	if !contains(d23.changed, "news/b/index.html") || len(d23.added)+len(d23.deleted) != 0 || countPages(v3, d23.kept) == 0 {
		t.Fatalf("v2→v3 is not a one-page edit that leaves pages unchanged: %+v", d23)
	}
	if !contains(d34.added, "news/late/index.html") || !contains(d34.kept, "404.html") {
		t.Fatalf("v3→v4 does not add a page while keeping the 404 page: %+v", d34)
	}

	for _, sc := range []struct {
		name string
		cfg  varnish.Config
	}{
		{"xkey", varnish.Config{Mode: varnish.ModeXkey}},
		{"purge", varnish.Config{Mode: varnish.ModePurge}},
		{"ban", varnish.Config{Mode: varnish.ModeBan}},
		{"xkey-soft", varnish.Config{Mode: varnish.ModeXkey, Soft: true}},
		{"purge-soft", varnish.Config{Mode: varnish.ModePurge, Soft: true}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			runScenario(t, s3env, sc.cfg, []*version{v1, v2, v3, v4})
			t.Logf("%s: scenario took %s", sc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

func countPages(v *version, paths []string) int {
	n := 0
	for _, p := range paths {
		if v.byP[p].Class == manifest.Page {
			n++
		}
	}
	return n
}

func runScenario(t *testing.T, s3env testenv.S3Env, cfg varnish.Config, vs []*version) {
	ctx := context.Background()
	v1, v2, v3, v4 := vs[0], vs[1], vs[2], vs[3]
	bucket := testenv.NewBucket(t, s3env)
	testenv.EnableWebsite(t, s3env, bucket, "404.html")
	bhost, bport, err := net.SplitHostPort(strings.TrimPrefix(s3env.Website, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(bport)
	vcl, err := varnish.VCL(varnish.VCLOptions{BackendHost: bhost, BackendPort: port, WebsiteHost: bucket + "." + s3env.WebsiteDomain, Site: siteName})
	if err != nil {
		t.Fatal(err)
	}
	vn := testenv.Varnish(t, vcl)
	e := &edge{t: t, base: vn.URL, soft: cfg.Soft, client: &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DisableCompression: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}

	st, err := s3store.Open(ctx, s3store.Config{Bucket: bucket, Endpoint: s3env.Endpoint, PathStyle: true, Region: s3env.Region})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Endpoints = []string{vn.URL}
	cdn, err := varnish.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	purger := &purge.Purger{CDNs: []purge.CDN{cdn}, BaseURL: baseURL}
	d := &publish.Deployer{Store: st, Site: siteName, Purger: purger}
	deploy := func(v *version, threshold float64) {
		t.Helper()
		purger.PlanOptions = purge.PlanOptions{FullThreshold: threshold}
		src, err := publish.OpenDir(v.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		res, err := d.Publish(ctx, v.objs, src, publish.Options{Message: v.name})
		if err != nil {
			t.Fatalf("publish %s: %v", v.name, err)
		}
		reports := purger.LastReports()
		if res.PurgePending || len(reports) != 1 {
			t.Fatalf("publish %s: purge pending or not run: %+v", v.name, reports)
		}
		r := reports[0]
		if r.Error != "" {
			t.Fatalf("publish %s: purge failed: %s", v.name, r.Error)
		}
		t.Logf("publish %s: plan %q; %s: %d calls, mode %s, %d paths, %d keys: %s",
			v.name, purger.LastPlan().Reason, r.CDN, r.Calls, r.Mode, r.Paths, r.Keys, r.Detail)
	}
	warm := func(v *version) {
		t.Helper()
		for _, o := range v.objs {
			for _, u := range urls(o.Path) {
				first := e.get(u)
				if first.status != http.StatusOK || !bytes.Equal(first.body, fileBytes(t, v, o.Path)) {
					t.Fatalf("%s: GET %s = %d %.80q; want 200 and the %s file", v.name, u, first.status, first.body, v.name)
				}
				if again := e.get(u); again.cache != "HIT" {
					t.Fatalf("%s: GET %s again: X-Cache %q, want HIT", v.name, u, again.cache)
				}
			}
		}
	}
	// cache404 requests a page that does not exist yet, twice: its 404 is cached.
	cache404 := func(page string) {
		t.Helper()
		for _, u := range urls(strings.TrimPrefix(page, "/") + "index.html") {
			first := e.get(u)
			again := e.get(u)
			if first.status != http.StatusNotFound || again.status != http.StatusNotFound || again.cache != "HIT" {
				t.Fatalf("GET %s = %d then %d %s; want a cached 404", u, first.status, again.status, again.cache)
			}
			if again.header.Get("X-Amz-Meta-Surrogate-Key") != "" || again.header.Get("Xkey") != "" {
				t.Errorf("GET %s: S3 or xkey headers reach visitors: %v", u, again.header)
			}
		}
	}

	// v1 live, and every URL of it cached; a 404 cached where v2 adds a page.
	deploy(v1, 0)
	warm(v1)
	cache404(freshURL)

	// v2: one page and the CSS changed (so every page linking it), a page added where
	// the 404 was cached, a page deleted. The planner must not fall back to a site-wide
	// purge here, so that what stays cached can be checked.
	deploy(v2, -1)
	checkAfter(t, e, v1, v2, diffVersions(v1, v2))

	// v3: a one-page edit, with the planner's defaults: everything but the pages that
	// show it stays cached.
	warm(v2)
	deploy(v3, 0)
	checkAfter(t, e, v2, v3, diffVersions(v2, v3))

	// v4: a page added where a 404 is cached, the 404 page unchanged. (Lists, feeds and
	// the neighbours' links change too: more than half the pages, so URL by URL here.)
	warm(v3)
	cache404(lateURL)
	deploy(v4, -1)
	checkAfter(t, e, v3, v4, diffVersions(v3, v4))
	if a := e.get(lateURL); a.status != http.StatusOK || !bytes.Contains(a.body, []byte("late-marker")) {
		t.Fatalf("GET %s after v4 = %d; want 200 with the new page", lateURL, a.status)
	}
}

// checkAfter checks the edge right after the deploy from → to and its purge.
func checkAfter(t *testing.T, e *edge, from, to *version, d diff) {
	t.Helper()
	// Kept first, before any request could refill anything: still cached.
	for _, p := range d.kept {
		v := to
		if _, ok := to.byP[p]; !ok {
			v = from // an asset the deploy left in the store
		}
		for _, u := range urls(p) {
			a := e.get(u)
			if a.status != http.StatusOK || a.cache != "HIT" || a.hits < 2 || !bytes.Equal(a.body, fileBytes(t, v, p)) {
				t.Errorf("%s: unchanged %s = %d, X-Cache %s (hits %d, Age %s); want a cache HIT of the same file",
					to.name, u, a.status, a.cache, a.hits, a.age)
			}
		}
	}
	for _, p := range append(append([]string(nil), d.changed...), d.added...) {
		want := fileBytes(t, to, p)
		for _, u := range urls(p) {
			a := e.get(u)
			if e.soft && (a.status != http.StatusOK || !bytes.Equal(a.body, want)) {
				a = e.await(u, http.StatusOK, want)
			} else if a.cache != "MISS" {
				t.Errorf("%s: changed %s: X-Cache %s; want a MISS", to.name, u, a.cache)
			}
			if a.status != http.StatusOK || !bytes.Equal(a.body, want) {
				t.Errorf("%s: changed %s = %d, X-Cache %s, body %d bytes (want %d); want the new file",
					to.name, u, a.status, a.cache, len(a.body), len(want))
				continue
			}
			if again := e.get(u); again.cache != "HIT" || !bytes.Equal(again.body, want) {
				t.Errorf("%s: changed %s again: X-Cache %s; want a HIT of the new file", to.name, u, again.cache)
			}
		}
	}
	for _, p := range d.deleted {
		for _, u := range urls(p) {
			a := e.get(u)
			if e.soft && a.status != http.StatusNotFound {
				a = e.await(u, http.StatusNotFound, nil)
			}
			if a.status != http.StatusNotFound {
				t.Errorf("%s: deleted %s = %d, X-Cache %s; want 404", to.name, u, a.status, a.cache)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRealVarnishFleet sends big purges to two real Varnish servers with the recommended
// VCL: xkey purges and bans split to stay under Varnish's header limit (8 KiB), and
// every server gets every request.
func TestRealVarnishFleet(t *testing.T) {
	const pages = 600
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimSuffix(r.URL.Path, "index.html")
		w.Header().Set("X-Amz-Meta-Surrogate-Key", siteName+" "+siteName+":page "+siteName+":url:"+key)
		w.Header().Set("Cache-Control", "public, max-age=60, s-maxage=3600")
		io.WriteString(w, "page "+r.URL.Path+"\n")
	}))
	defer origin.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(origin.URL, "http://"))
	p, _ := strconv.Atoi(port)
	vcl, err := varnish.VCL(varnish.VCLOptions{BackendHost: host, BackendPort: p, WebsiteHost: "origin.localhost", Site: siteName})
	if err != nil {
		t.Fatal(err)
	}
	fleet := []testenv.VarnishEnv{testenv.Varnish(t, vcl), testenv.Varnish(t, vcl)}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var paths []string
	for i := range pages {
		paths = append(paths, fmt.Sprintf("/news/a-rather-long-page-name-%04d/", i))
	}
	get := func(base, path string) string {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = siteHost
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Cache")
	}
	warm := func() {
		var wg sync.WaitGroup
		for _, v := range fleet {
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(paths); i += 8 {
						get(v.URL, paths[i])
						get(v.URL, paths[i]+"index.html")
					}
				}()
			}
		}
		wg.Wait()
		for _, v := range fleet {
			if c := get(v.URL, paths[0]); c != "HIT" {
				t.Fatalf("%s not warm: %s", v.URL, c)
			}
		}
	}
	other := "/not-purged/"
	// check purges every page (both forms) through the adapter and checks both servers.
	check := func(mode string, minCalls int) {
		t.Helper()
		warm()
		for _, v := range fleet {
			get(v.URL, other)
			get(v.URL, other)
		}
		cdn, err := varnish.New(varnish.Config{Endpoints: []string{fleet[0].URL, fleet[1].URL}, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		req := &purge.Request{Site: siteName, BaseURL: baseURL}
		for _, p := range paths {
			req.Paths = append(req.Paths, p, p+"index.html")
		}
		plan, _, err := cdn.Plan(req)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) < minCalls {
			t.Errorf("%s: %d calls planned, want at least %d", mode, len(plan), minCalls)
		}
		start := time.Now()
		rep, err := cdn.Purge(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		t.Logf("%s: %d URLs: %d calls in %s: %s", mode, len(req.Paths), rep.Calls, time.Since(start).Round(time.Millisecond), rep.Detail)
		if rep.Calls != len(fleet)*len(plan) {
			t.Errorf("%s: %d calls, want %d to each of %d servers", mode, rep.Calls, len(plan), len(fleet))
		}
		for _, v := range fleet {
			for _, p := range []string{paths[0], paths[len(paths)/2] + "index.html", paths[len(paths)-1]} {
				if c := get(v.URL, p); c != "MISS" {
					t.Errorf("%s: %s%s after the purge: %s, want MISS", mode, v.URL, p, c)
				}
			}
			if c := get(v.URL, other); c != "HIT" {
				t.Errorf("%s: %s%s (not purged): %s, want HIT", mode, v.URL, other, c)
			}
		}
	}
	// 600 keys of ~43 bytes: 26 KB, so at least 4 headers of 7 KiB.
	check(varnish.ModeXkey, 4)
	// 600 alternatives of ~55 bytes, one per page for both its forms: at least 5.
	check(varnish.ModeBan, 5)
	check(varnish.ModePurge, 2*pages)
}
