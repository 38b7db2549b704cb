package fastly

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/internal/testenv"
)

// origin stands for Fastly's Host override between the simulator and versitygw's
// website endpoint: falco sends the backend's address as Host (Go's HTTP client ignores
// bereq.http.Host), so this loopback proxy names the bucket, and records what reached
// the origin.
type origin struct {
	addr string
	mu   sync.Mutex
	seen []string // "Host-the-VCL-asked-for path"
}

func (o *origin) since(n int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen[n:]...)
}

func (o *origin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

func newOrigin(t *testing.T, website, bucketHost string) *origin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(website)
	o := &origin{addr: ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = bucketHost
	}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r.URL.RequestURI())
		o.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func put(t *testing.T, c *s3.Client, bucket, key, body string, meta map[string]string, cc string) {
	t.Helper()
	ctype := "text/html; charset=utf-8"
	if !strings.HasSuffix(key, ".html") {
		ctype = "text/plain; charset=utf-8"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte(body)), ContentType: aws.String(ctype), CacheControl: aws.String(cc), Metadata: meta}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func loadSite(t testing.TB, name, text string) *config.Loaded {
	t.Helper()
	p := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := config.ReadSite(&config.Workspace{}, name, p, "sites/"+name+"/site.yaml")
	if err != nil {
		t.Fatalf("site %s: %v", name, err)
	}
	return l
}

type answer struct {
	status int
	body   string
	h      http.Header
}

// blandNotFound is the edge's own 404 (vcl_error).
const blandNotFound = "<!doctype html><title>Not Found</title><h1>Not Found</h1>\n"

const (
	liveID    = "20261201t100000z-aaaaaa"
	previewID = "20261202t100000z-bbbbbb"
	pageCC    = "public, max-age=60, s-maxage=3600"
)

// TestSimulate runs the generated Fastly VCL in `falco simulate --proxy` in front of
// versitygw's website endpoint and checks what a visitor gets, with real requests.
func TestSimulate(t *testing.T) {
	env, bucket := websiteBucket(t)
	c := env.Client()
	keys := func(site, path string) map[string]string {
		return map[string]string{"surrogate-key": site + ":url:" + path + " " + site}
	}
	put(t, c, bucket, "a/index.html", "home of a", keys("a", "/"), pageCC)
	put(t, c, bucket, "a/404.html", "404 of a", keys("a", "/404.html"), pageCC)
	put(t, c, bucket, "a/page/index.html", "a page", keys("a", "/page/"), pageCC)
	put(t, c, bucket, "a/doc.pdf", "%PDF-", keys("a", "/doc.pdf"), pageCC)
	put(t, c, bucket, "a/search/index.html", "search", keys("a", "/search/"), pageCC)
	put(t, c, bucket, "n/index.html", "home of n, which has no 404 page", keys("n", "/"), pageCC)
	for _, id := range []string{liveID, previewID} {
		put(t, c, bucket, "d/_stump/trees/"+id+"/index.html", "d home of "+id, keys("d", "/"), pageCC)
		put(t, c, bucket, "d/_stump/trees/"+id+"/404.html", "d 404 of "+id, keys("d", "/404.html"), pageCC)
	}
	put(t, c, bucket, "d/_stump/live", liveID, map[string]string{"deploy": liveID, "surrogate-key": "d:pointer d"}, "public, max-age=5")
	put(t, c, bucket, "d/_stump/trees.txt", previewID+"\n"+liveID+"\n", map[string]string{"ids": previewID + " " + liveID, "surrogate-key": "d:trees d"}, "public, max-age=5")

	o := newOrigin(t, env.Website, bucket+"."+env.WebsiteDomain)
	edgeYAML := "edge:\n  origin: http://" + o.addr + "\n  website_domain: " + env.WebsiteDomain + "\n  fastly: { service_id: SU1Z0isxPaozGVKXdv0eY }\n"
	sites := []*config.Loaded{
		loadSite(t, "a", "baseURL: https://a.test/\ntarget: s3://"+bucket+"/a\n"+
			"redirects:\n  - { from: /old/, to: /new/ }\nheaders:\n  - { path: '*.pdf', values: { Content-Disposition: attachment } }\n"+
			edgeYAML+"  aliases: [www.a.test]\n  query:\n    - { path: 'search/**', params: [q] }\n  defenses: { blocked_countries: [RU] }\n"),
		loadSite(t, "d", "baseURL: https://d.test/\ntarget: s3://"+bucket+"/d\ndeploy: { mode: atomic }\n"+edgeYAML+
			"  preview_host: preview.d.test\n  defenses: { wordpress: false, blocked_status: 404, blocked_body: \"gone\\n\" }\n"),
		loadSite(t, "n", "baseURL: https://n.test/\ntarget: s3://"+bucket+"/n\n"+edgeYAML),
	}
	do := simulator(t, sites)
	get := func(host, path string) answer { t.Helper(); return do("GET", host, path) }

	t.Run("routing", func(t *testing.T) {
		for host, want := range map[string]string{"a.test": "home of a", "WWW.A.test": "home of a", "d.test": "d home of " + liveID} {
			if r := get(host, "/"); r.status != 200 || r.body != want {
				t.Errorf("%s: %d %q, want %q", host, r.status, r.body, want)
			}
		}
		if r := get("a.test", "/page/"); r.status != 200 || r.body != "a page" {
			t.Errorf("/page/: %d %q", r.status, r.body)
		}
		if r := get("unknown.test", "/"); r.status != 404 || strings.Contains(r.body, "home") {
			t.Errorf("unknown host: %d %q", r.status, r.body)
		}
	})
	t.Run("404", func(t *testing.T) {
		r := get("a.test", "/missing/")
		if r.status != 404 || r.body != "404 of a" {
			t.Errorf("missing page: %d %q", r.status, r.body)
		}
		for k := range r.h {
			if strings.HasPrefix(strings.ToLower(k), "x-amz") {
				t.Errorf("the 404 carries %s", k)
			}
		}
		if r := get("a.test", "/_stump/live"); r.status != 404 || r.body != "404 of a" {
			t.Errorf("_stump path: %d %q", r.status, r.body)
		}
		if r := get("d.test", "/missing/"); r.status != 404 || r.body != "d 404 of "+liveID {
			t.Errorf("missing page of the live tree: %d %q", r.status, r.body)
		}
		// Without a 404 page, S3's own HTML answer (with its request ids) is not served.
		for i := 0; i < 2; i++ {
			if r := get("n.test", "/missing/"); r.status != 404 || r.body != blandNotFound {
				t.Errorf("n, no 404 page (%d): %d %q, want the bland 404", i, r.status, r.body)
			}
		}
	})
	t.Run("previews", func(t *testing.T) {
		if r := get(previewID+".preview.d.test", "/"); r.status != 200 || r.body != "d home of "+previewID || r.h.Get("X-Robots-Tag") != "noindex" {
			t.Errorf("recorded preview: %d %q %v", r.status, r.body, r.h)
		}
		before := o.count()
		for _, label := range []string{"www", "20261203t100000z-cccccc"} {
			if r := get(label+".preview.d.test", "/"); r.status != 404 || strings.Contains(r.body, "home") {
				t.Errorf("preview %s: %d %q", label, r.status, r.body)
			}
		}
		for _, u := range o.since(before) {
			if !strings.HasSuffix(u, "/_stump/trees.txt") {
				t.Errorf("an unrecorded preview reached the origin: %s", u)
			}
		}
	})
	t.Run("redirects and queries", func(t *testing.T) {
		if r := get("a.test", "/old/?x=1"); r.status != 301 || r.h.Get("Location") != "/new/" {
			t.Errorf("redirect: %d %q", r.status, r.h.Get("Location"))
		}
		before := o.count()
		if r := get("a.test", "/page/?utm_source=x&v=123"); r.status != 200 || r.body != "a page" {
			t.Errorf("page with a query: %d %q", r.status, r.body)
		}
		if r := get("a.test", "/search/?v=2&q=rally"); r.status != 200 || r.body != "search" {
			t.Errorf("search: %d %q", r.status, r.body)
		}
		for _, u := range o.since(before) {
			if strings.Contains(u, "v=") || strings.Contains(u, "utm_") {
				t.Errorf("the origin got a dropped parameter: %s", u)
			}
			if strings.HasPrefix(u, "/a/search/") && u != "/a/search/?q=rally" {
				t.Errorf("search at the origin: %s, want /a/search/?q=rally", u)
			}
		}
	})
	t.Run("headers", func(t *testing.T) {
		for what, r := range map[string]answer{"200": get("a.test", "/"), "404": get("a.test", "/nope/"),
			"403": get("a.test", "/xmlrpc.php"), "unknown host": get("nowhere.test", "/")} {
			for k, v := range edge.DefaultHeaders {
				if got := r.h.Get(k); got != v {
					t.Errorf("%s (%d): %s = %q, want %q", what, r.status, k, got, v)
				}
			}
			for _, k := range []string{"Via", "Server", "Surrogate-Key", "X-Amz-Meta-Surrogate-Key", "X-Stump-Site"} {
				if v := r.h.Get(k); v != "" {
					t.Errorf("%s (%d): %s: %q", what, r.status, k, v)
				}
			}
		}
		if r := get("a.test", "/doc.pdf"); r.h.Get("Content-Disposition") != "attachment" {
			t.Errorf("header rule: Content-Disposition %q", r.h.Get("Content-Disposition"))
		}
	})
	t.Run("blocks", func(t *testing.T) {
		before := o.count()
		for _, p := range []string{"/xmlrpc.php", "/wp-login.php", "/%77p-login.php", "/WP-Admin/x", "/x/trackback/"} {
			if r := get("a.test", p); r.status != 403 || r.body != edge.DefaultBlockedBody {
				t.Errorf("%s: %d %q, want the blocked answer", p, r.status, r.body)
			}
		}
		if r := do("POST", "a.test", "/"); r.status != 403 || r.body != edge.DefaultBlockedBody {
			t.Errorf("POST: %d %q", r.status, r.body)
		}
		// (Paths with "//" are cleaned by the simulator's Go HTTP server, with a redirect,
		// before the VCL sees them: the unit tests cover them.)
		// d turns the WordPress rules off: other methods are refused plainly.
		if r := do("POST", "d.test", "/"); r.status != 405 {
			t.Errorf("POST to d: %d %q", r.status, r.body)
		}
		if r := get("d.test", "/xmlrpc.php"); r.status != 404 {
			t.Errorf("d, no WordPress rules: %d %q", r.status, r.body)
		}
		if seen := o.since(before); len(seen) > 2 {
			t.Errorf("blocked requests reached the origin: %q", seen)
		}
	})
}

// TestSimulateLayers runs layered atomic deploys through the Fastly VCL in falco's
// simulator: a path missing from the live deploy's layer is served from its base with
// one extra origin fetch, and then from the cache; a tombstone and a missing page get
// the live deploy's own 404 page; the restart budget (three) holds when the layer lacks
// the 404 page; and a cached marker sends the visitor to the base it was made for, not
// to the base of a deploy made live since.
func TestSimulateLayers(t *testing.T) {
	env, bucket := websiteBucket(t)
	c := env.Client()
	const (
		base, layer   = "20261201t100000z-aaaaaa", "20261201t110000z-bbbbbb"
		base2, layer2 = "20261201t120000z-cccccc", "20261201t130000z-dddddd"
	)
	keys := func(site, path string) map[string]string {
		return map[string]string{"surrogate-key": site + ":url:" + path + " " + site}
	}
	tomb := map[string]string{"tombstone": "1", "surrogate-key": "l"}
	tree := func(site, id, p string) string { return site + "/_stump/trees/" + id + "/" + p }
	for _, site := range []string{"l", "m"} {
		put(t, c, bucket, tree(site, base, "index.html"), site+" home", keys(site, "/"), pageCC)
		put(t, c, bucket, tree(site, base, "404.html"), site+" 404 of the base", keys(site, "/404.html"), pageCC)
		put(t, c, bucket, tree(site, base, "kept/index.html"), "kept", keys(site, "/kept/"), "max-age=1")
		put(t, c, bucket, tree(site, base, "changed/index.html"), "changed, old", keys(site, "/changed/"), pageCC)
		put(t, c, bucket, tree(site, base, "gone/index.html"), "gone", keys(site, "/gone/"), pageCC)
		put(t, c, bucket, tree(site, layer, "changed/index.html"), "changed, new", keys(site, "/changed/"), pageCC)
		put(t, c, bucket, tree(site, layer, "gone/index.html"), "", tomb, "no-cache")
		put(t, c, bucket, site+"/_stump/live", layer, map[string]string{"deploy": layer, "base": base, "surrogate-key": site + ":pointer " + site}, "max-age=1")
	}
	// l's layer holds its 404 page (publish writes it into every layer of a site on
	// Fastly); m's layer, written otherwise, does not.
	put(t, c, bucket, tree("l", layer, "404.html"), "l 404 of the layer", keys("l", "/404.html"), pageCC)

	o := newOrigin(t, env.Website, bucket+"."+env.WebsiteDomain)
	edgeYAML := "edge:\n  origin: http://" + o.addr + "\n  website_domain: " + env.WebsiteDomain + "\n  fastly: { service_id: SU1Z0isxPaozGVKXdv0eY }\n  not_found_ttl: 1m\n"
	var sites []*config.Loaded
	for _, s := range []string{"l", "m"} {
		sites = append(sites, loadSite(t, s, "baseURL: https://"+s+".test/\ntarget: s3://"+bucket+"/"+s+"\ndeploy: { mode: atomic }\n"+edgeYAML))
	}
	do := simulator(t, sites)
	get := func(host, path string, hdr ...string) answer { t.Helper(); return do("GET", host, path, hdr...) }

	t.Run("layer and base", func(t *testing.T) {
		before := o.count()
		if r := get("l.test", "/changed/"); r.status != 200 || r.body != "changed, new" {
			t.Errorf("a path in the layer: %d %q", r.status, r.body)
		}
		if seen := o.since(before); len(seen) != 2 || seen[1] != "/"+tree("l", layer, "changed/") {
			t.Errorf("a path in the layer reached the origin as %q, want the pointer and the layer's copy", seen)
		}
		before = o.count()
		r := get("l.test", "/kept/")
		if r.status != 200 || r.body != "kept" {
			t.Errorf("a path only in the base: %d %q", r.status, r.body)
		}
		for k := range r.h {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz") || strings.HasPrefix(lk, "x-stump") {
				t.Errorf("the answer carries %s", k)
			}
		}
		want := []string{"/" + tree("l", layer, "kept/"), "/" + tree("l", base, "kept/")}
		if seen := o.since(before); len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
			t.Errorf("a path only in the base reached the origin as %q, want %q (one extra fetch)", seen, want)
		}
		before = o.count()
		if r := get("l.test", "/kept/"); r.status != 200 || r.body != "kept" {
			t.Errorf("again: %d %q", r.status, r.body)
		}
		if seen := o.since(before); len(seen) != 0 {
			t.Errorf("a cached path reached the origin: %q", seen)
		}
	})
	t.Run("spoofed", func(t *testing.T) {
		// The fallback and base headers are the VCL's own: a visitor's are dropped.
		before := o.count()
		r := get("m.test", "/changed/", "X-Stump-Fallback", base, "X-Stump-Base", base, "X-Stump-Deploy", base)
		if r.status != 200 || r.body != "changed, new" {
			t.Errorf("spoofed headers: %d %q", r.status, r.body)
		}
		seen := o.since(before)
		if len(seen) == 0 {
			t.Fatal("nothing reached the origin: the check needs an uncached path")
		}
		for _, u := range seen {
			if strings.Contains(u, base) {
				t.Errorf("spoofed headers reached the base: %s", u)
			}
		}
	})
	t.Run("404 pages", func(t *testing.T) {
		if r := get("l.test", "/gone/"); r.status != 404 || r.body != "l 404 of the layer" {
			t.Errorf("a tombstone: %d %q, want the layer's 404 page", r.status, r.body)
		}
		if r := get("l.test", "/missing/"); r.status != 404 || r.body != "l 404 of the layer" {
			t.Errorf("in neither tree: %d %q, want the layer's 404 page", r.status, r.body)
		}
		// m's layer has no 404 page. A tombstone leaves a restart for the base's.
		if r := get("m.test", "/gone/"); r.status != 404 || r.body != "m 404 of the base" {
			t.Errorf("m, a tombstone: %d %q, want the base's 404 page", r.status, r.body)
		}
		// In neither tree: pointer, base and 404 page are the three restarts Fastly
		// allows, so the 404 is the edge's own (a fourth would be Fastly's 503).
		for i := 0; i < 2; i++ { // the second time from the cache (vcl_hit)
			r := get("m.test", "/missing/")
			if r.status != 404 || r.body != blandNotFound {
				t.Errorf("m, in neither tree (%d): %d %q, want the bland 404 %q", i, r.status, r.body, blandNotFound)
			}
		}
	})
	t.Run("marker keeps its base", func(t *testing.T) {
		// The cached marker of /kept/ names base. A deploy with another base goes live
		// with no purge of /kept/ (its content is the same there); when the base's copy
		// has left the cache (max-age=1), the marker still sends the visitor to the tree
		// it was made for. (base2's copy differs here only to tell the two apart.)
		put(t, c, bucket, tree("l", base2, "kept/index.html"), "kept, but the wrong tree", keys("l", "/kept/"), pageCC)
		put(t, c, bucket, "l/_stump/live", layer2, map[string]string{"deploy": layer2, "base": base2, "surrogate-key": "l:pointer l"}, "max-age=1")
		time.Sleep(1500 * time.Millisecond) // the pointer and the base's copy expire
		before := o.count()
		if r := get("l.test", "/kept/"); r.status != 200 || r.body != "kept" {
			t.Errorf("after a switch: %d %q", r.status, r.body)
		}
		if seen := o.since(before); len(seen) != 2 || seen[1] != "/"+tree("l", base, "kept/") {
			t.Errorf("after a switch, the origin saw %q: want the new pointer and the marker's base", seen)
		}
	})
}

// websiteBucket is a new bucket of the shared versitygw with website hosting on, for
// the simulator to fetch from (falco must be there too).
func websiteBucket(t *testing.T) (testenv.S3Env, string) {
	t.Helper()
	testenv.Falco(t)
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	return env, bucket
}

// simulator lints the Fastly VCL of sites, runs it in falco's simulator (its log is
// copied to $STUMP_DEBUG_SIM when set) and returns a request through it (with headers:
// name, value, ...).
func simulator(t *testing.T, sites []*config.Loaded) func(method, host, path string, hdr ...string) answer {
	t.Helper()
	main, _ := writeVCL(t, nil, sites...)
	if out, err := Lint(context.Background(), testenv.Falco(t), main); err != nil {
		t.Fatalf("falco lint: %v\n%s", err, out)
	}
	f := testenv.FalcoSimulate(t, main)
	if os.Getenv("STUMP_DEBUG_SIM") != "" {
		t.Cleanup(func() { b, _ := os.ReadFile(f.Log); os.WriteFile(os.Getenv("STUMP_DEBUG_SIM"), b, 0o644) })
	}
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(method, host, path string, hdr ...string) answer {
		t.Helper()
		req, err := http.NewRequest(method, f.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, host, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, string(b), resp.Header}
	}
}
