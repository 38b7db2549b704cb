package edge

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// switchProxy stands between Varnish and the S3 website endpoint: a test turns it
// "down" (it answers 503 with S3's XML, as an overloaded origin does) and counts the
// requests that reach the origin.
type switchProxy struct {
	down     atomic.Bool
	requests atomic.Int64
	srv      *http.Server
	addr     string

	mu   sync.Mutex
	seen []string // request URIs of the counted requests, in order
}

// since returns the request URIs counted after the first n.
func (p *switchProxy) since(n int64) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(n) > len(p.seen) {
		return nil
	}
	return append([]string(nil), p.seen[n:]...)
}

func newSwitchProxy(t *testing.T, website string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(website)
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{addr: ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the bucket is named by Host
	}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		if r.Header.Get("User-Agent") != "stump-edge-probe" {
			p.mu.Lock()
			p.seen = append(p.seen, r.Host+" "+r.URL.RequestURI())
			p.requests.Add(1)
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

type edgeEnv struct {
	t      *testing.T
	s3     *s3.Client
	bucket string
	url    string
	proxy  *switchProxy
	client *http.Client
}

func (e *edgeEnv) put(key, body string, meta map[string]string, cc string) {
	e.t.Helper()
	ctype := "text/html; charset=utf-8"
	if !strings.HasSuffix(key, ".html") && !strings.HasSuffix(key, "/") {
		ctype = "text/plain; charset=utf-8"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body)),
		ContentType: aws.String(ctype), CacheControl: aws.String(cc), Metadata: meta,
	})
	if err != nil {
		e.t.Fatalf("put %s: %v", key, err)
	}
}

type answer struct {
	status int
	body   string
	h      http.Header
}

func (e *edgeEnv) do(method, host, path string, hdr map[string]string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if method == "PURGE" || method == "BAN" {
		req.Header.Set("X-Purge-Token", testPurgeToken)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func (e *edgeEnv) get(host, path string) answer { return e.do("GET", host, path, nil) }

const pageCC = "public, max-age=60, s-maxage=3600"

// TestVarnish runs the generated VCL in a real Varnish in front of versitygw's website
// endpoint (through a proxy the test can take down).
func TestVarnish(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	proxy := newSwitchProxy(t, env.Website)
	e := &edgeEnv{t: t, s3: env.Client(), bucket: bucket, proxy: proxy,
		client: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	keys := func(site, path string) map[string]string {
		return map[string]string{"surrogate-key": site + ":url:" + path + " " + site}
	}
	// Sites a and b: in place, one bucket, two prefixes.
	e.put("a/index.html", "site A home", keys("a", "/"), pageCC)
	e.put("a/404.html", "site A: page not found", keys("a", "/404.html"), pageCC)
	e.put("a/stale/index.html", "stale v1", keys("a", "/stale/"), "public, max-age=1")
	e.put("a/q/index.html", "query page", keys("a", "/q/"), pageCC)
	e.put("a/doc.pdf", "%PDF-", keys("a", "/doc.pdf"), pageCC)
	e.put("b/index.html", "site B home", keys("b", "/"), pageCC)
	e.put("b/404.html", "site B: page not found", keys("b", "/404.html"), pageCC)
	e.put("c/index.html", "site C home", keys("c", "/"), pageCC)
	e.put("e/index.html", "site E home, in place", keys("e", "/"), pageCC)
	// Site d: atomic, deploy A live.
	const idA, idB = "20261130t094500z-1a2b3c", "20261130t094600z-4d5e6f"
	for id, changed := range map[string]string{idA: "A changed", idB: "B changed"} {
		e.put("d/_stump/trees/"+id+"/index.html", "D home", keys("d", "/"), pageCC)
		e.put("d/_stump/trees/"+id+"/changed/index.html", changed, keys("d", "/changed/"), pageCC)
		e.put("d/_stump/trees/"+id+"/same/index.html", "same in both", keys("d", "/same/"), pageCC)
		e.put("d/_stump/trees/"+id+"/404.html", "D 404 of "+id, keys("d", "/404.html"), pageCC)
	}
	live := func(id string) {
		e.put("d/_stump/live", id, map[string]string{"deploy": id, "surrogate-key": "d:pointer d"}, "public, max-age=5")
	}
	live(idA)
	// The deploys publish recorded (publish/previews.go): what previews the edge serves.
	e.put("d/_stump/trees.txt", idB+"\n"+idA+"\n", map[string]string{"ids": idB + " " + idA, "surrogate-key": "d:trees d"}, "public, max-age=5, s-maxage=5")

	ws := &config.Workspace{Targets: map[string]string{"shared": "s3://" + bucket + "/b"}}
	origin := "http://" + proxy.addr
	edge := func(extra string) string {
		return "edge:\n  origin: " + origin + "\n  website_domain: " + env.WebsiteDomain + "\n" +
			"  trusted_proxies: [127.0.0.1]\n  purgers: [127.0.0.1]\n" + extra
	}
	sites := []*config.Loaded{
		loadSite(t, ws, "a", "baseURL: https://a.test/\ntarget: s3://"+bucket+"/a\n"+
			"redirects:\n  - { from: /old/, to: /new/ }\nheaders:\n  - { path: '*.pdf', values: { Content-Disposition: attachment } }\n"+
			edge("  probe: { interval: 200ms, timeout: 100ms, window: 3, threshold: 2 }\n")),
		loadSite(t, ws, "b", "baseURL: https://b.test/\ntarget: shared\n"+edge("  aliases: [www.b.test]\n")),
		loadSite(t, ws, "c", "baseURL: https://c.test/\ntarget: s3://"+bucket+"/c\n"+edge(
			"  defenses:\n    blocked_countries: [RU, KP]\n    rate_limit: { requests: 3, per: 60s, count: all }\n    blocked_body: \"Nope.\\n\"\n")),
		loadSite(t, ws, "d", "baseURL: https://d.test/\ntarget: s3://"+bucket+"/d\ndeploy: { mode: atomic }\n"+
			edge("  preview_host: preview.localhost\n")),
		// Atomic, but nothing published that way yet: served in place.
		loadSite(t, ws, "e", "baseURL: https://e.test/\ntarget: s3://"+bucket+"/e\ndeploy: { mode: atomic }\n"+edge("")),
	}
	vcl, err := VCL(ws, sites...)
	if err != nil {
		t.Fatal(err)
	}
	v := testenv.VarnishWith(t, string(vcl), testenv.VarnishOptions{Env: []string{"STUMP_PURGE_TOKEN=" + testPurgeToken}})
	e.url = v.URL

	t.Run("routing", func(t *testing.T) {
		for host, want := range map[string]string{"e.test": "site E home, in place", "a.test": "site A home", "b.test": "site B home", "WWW.B.test:80": "site B home", "c.test": "site C home"} {
			if r := e.get(host, "/"); r.status != 200 || r.body != want {
				t.Errorf("%s: %d %q, want %q", host, r.status, r.body, want)
			}
		}
		if r := e.get("unknown.test", "/"); r.status != 404 || strings.Contains(r.body, "site") {
			t.Errorf("unknown host: %d %q", r.status, r.body)
		}
	})

	t.Run("security headers", func(t *testing.T) {
		r := e.get("a.test", "/")
		for k, v := range DefaultHeaders {
			if got := r.h.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		for k := range r.h {
			if strings.HasPrefix(strings.ToLower(k), "x-amz") || strings.EqualFold(k, "xkey") || strings.HasPrefix(strings.ToLower(k), "x-stump") {
				t.Errorf("internal header %s reached the client", k)
			}
		}
		if r := e.get("a.test", "/doc.pdf"); r.h.Get("Content-Disposition") != "attachment" {
			t.Errorf("per-path rule: Content-Disposition = %q", r.h.Get("Content-Disposition"))
		}
		if r.h.Get("Content-Disposition") != "" {
			t.Errorf("per-path rule applied to /")
		}
	})

	t.Run("tracking parameters share one object", func(t *testing.T) {
		before := proxy.requests.Load()
		r1 := e.get("a.test", "/q/?utm_source=x&a=1")
		r2 := e.get("a.test", "/q/?a=1&fbclid=abc&gclid=1")
		if r1.status != 200 || r2.status != 200 || r2.body != "query page" {
			t.Fatalf("%d %d %q", r1.status, r2.status, r2.body)
		}
		if r2.h.Get("X-Cache") != "HIT" {
			t.Errorf("second request: X-Cache %q, want HIT", r2.h.Get("X-Cache"))
		}
		if n := proxy.requests.Load() - before; n != 1 {
			t.Errorf("%d origin requests, want 1", n)
		}
	})

	t.Run("404 page and no origin errors", func(t *testing.T) {
		r := e.get("a.test", "/no/such/page/")
		if r.status != 404 || r.body != "site A: page not found" {
			t.Errorf("missing page: %d %q", r.status, r.body)
		}
		r = e.get("b.test", "/nope.html")
		if r.status != 404 || r.body != "site B: page not found" {
			t.Errorf("missing page on b: %d %q", r.status, r.body)
		}
		r = e.get("a.test", "/_stump/current.json")
		if r.status != 404 || r.body != "site A: page not found" {
			t.Errorf("_stump path: %d %q", r.status, r.body)
		}
		// c has no 404 page: S3's own HTML answer (with its request ids) is not served.
		for i := 0; i < 2; i++ {
			r = e.get("c.test", "/missing/")
			if r.status != 404 || r.body != "<!doctype html><title>Not Found</title><h1>Not Found</h1>\n" {
				t.Errorf("missing page of a site without a 404 page (%d): %d %q", i, r.status, r.body)
			}
		}
	})

	t.Run("redirects", func(t *testing.T) {
		r := e.get("a.test", "/old/")
		if r.status != 301 || r.h.Get("Location") != "/new/" {
			t.Errorf("site redirect: %d %q", r.status, r.h.Get("Location"))
		}
		// The website endpoint's own redirects (x-amz-website-redirect-location) pass
		// through, naming the site's path, not the bucket's prefix.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/moved/index.html"),
			Body: strings.NewReader(""), WebsiteRedirectLocation: aws.String("/a/q/")})
		if err != nil {
			t.Fatal(err)
		}
		r = e.get("a.test", "/moved/")
		if r.status != 301 || r.h.Get("Location") != "/q/" {
			t.Errorf("origin redirect: %d %q %q %v", r.status, r.h.Get("Location"), r.body, r.h)
		}
	})

	t.Run("stale while the origin is down", func(t *testing.T) {
		if r := e.get("a.test", "/stale/"); r.body != "stale v1" {
			t.Fatalf("first fetch: %d %q", r.status, r.body)
		}
		proxy.down.Store(true)
		defer func() {
			proxy.down.Store(false)
			time.Sleep(time.Second) // the probe sees it healthy again
		}()
		time.Sleep(1500 * time.Millisecond) // past max-age=1: only grace keeps it
		for i := 0; i < 3; i++ {
			r := e.get("a.test", "/stale/")
			if r.status != 200 || r.body != "stale v1" {
				t.Fatalf("origin down, request %d: %d %q", i, r.status, r.body)
			}
		}
		r := e.get("a.test", "/never/cached/")
		if r.status != 503 || strings.Contains(r.body, "Error>") || strings.Contains(r.body, "SlowDown") {
			t.Errorf("uncached page with the origin down: %d %q", r.status, r.body)
		}
	})

	t.Run("defenses", func(t *testing.T) {
		ref := e.do("GET", "c.test", "/wp-login.php", map[string]string{"X-Forwarded-For": "198.51.100.1"})
		if ref.status != 403 || ref.body != "Nope.\n" {
			t.Fatalf("wp-login: %d %q", ref.status, ref.body)
		}
		blocked := map[string]answer{
			"xmlrpc":   e.do("POST", "c.test", "/xmlrpc.php", map[string]string{"X-Forwarded-For": "198.51.100.2"}),
			"pingback": e.do("POST", "c.test", "/", map[string]string{"X-Forwarded-For": "198.51.100.3", "Content-Type": "text/xml"}),
			"wp-admin": e.do("GET", "c.test", "/wp-admin/install.php", map[string]string{"X-Forwarded-For": "198.51.100.4"}),
			"country":  e.do("GET", "c.test", "/", map[string]string{"X-Forwarded-For": "198.51.100.5", "X-Country": "ru"}),
		}
		for i := 0; i < 3; i++ {
			if r := e.do("GET", "c.test", "/", map[string]string{"X-Forwarded-For": "203.0.113.9"}); r.status != 200 {
				t.Fatalf("request %d under the limit: %d", i, r.status)
			}
		}
		blocked["rate"] = e.do("GET", "c.test", "/", map[string]string{"X-Forwarded-For": "203.0.113.9"})
		for why, r := range blocked {
			if r.status != ref.status || r.body != ref.body {
				t.Errorf("%s: %d %q, want the bland %d %q", why, r.status, r.body, ref.status, ref.body)
			}
			for k := range r.h {
				if strings.HasPrefix(strings.ToLower(k), "x-stump") {
					t.Errorf("%s: header %s", why, k)
				}
			}
		}
		if r := e.do("GET", "c.test", "/", map[string]string{"X-Forwarded-For": "203.0.113.10", "X-Country": "DE"}); r.status != 200 {
			t.Errorf("another client from another country: %d", r.status)
		}
		if r := e.get("a.test", "/xmlrpc.php"); r.status != 403 || r.body != DefaultBlockedBody {
			t.Errorf("site a, default bland answer: %d %q", r.status, r.body)
		}
	})

	t.Run("atomic switch and previews", func(t *testing.T) {
		if r := e.get("d.test", "/changed/"); r.status != 200 || r.body != "A changed" {
			t.Fatalf("live A: %d %q", r.status, r.body)
		}
		if r := e.get("d.test", "/same/"); r.body != "same in both" {
			t.Fatalf("same: %q", r.body)
		}
		if r := e.get("d.test", "/same/"); r.h.Get("X-Cache") != "HIT" {
			t.Fatalf("same, again: not a HIT")
		}
		if r := e.get(strings.ToUpper(idB)+".preview.localhost", "/changed/"); r.status != 200 || r.body != "B changed" {
			t.Errorf("preview B: %d %q", r.status, r.body)
		}
		if r := e.get("d.test", "/changed/"); r.body != "A changed" {
			t.Errorf("live host after the preview: %q", r.body)
		}
		if r := e.get("d.test", "/missing/"); r.status != 404 || r.body != "D 404 of "+idA {
			t.Errorf("404 in tree A: %d %q", r.status, r.body)
		}
		if r := e.get("d.test", "/_stump/live"); r.status != 404 || r.body != "D 404 of "+idA {
			t.Errorf("_stump/live served: %d %q", r.status, r.body)
		}

		live(idB)
		p := e.do("PURGE", "d.test", "/", map[string]string{"xkey-purge": "d:pointer d:url:/changed/ d:url:/404.html"})
		if p.status != 200 || p.h.Get("X-Purged") == "" {
			t.Fatalf("xkey purge: %d %q", p.status, p.body)
		}
		if r := e.get("d.test", "/changed/"); r.body != "B changed" {
			t.Errorf("changed page after the switch: %q", r.body)
		}
		r := e.get("d.test", "/same/")
		if r.body != "same in both" || r.h.Get("X-Cache") != "HIT" {
			t.Errorf("unchanged page after the switch: %q X-Cache %q", r.body, r.h.Get("X-Cache"))
		}
		if r := e.get("d.test", "/other-missing/"); r.status != 404 || r.body != "D 404 of "+idB {
			t.Errorf("404 in tree B: %d %q", r.status, r.body)
		}
		if r := e.get("20261130t094700z-000000.preview.localhost", "/"); r.status != 404 {
			t.Errorf("preview of an unknown deploy: %d %q", r.status, r.body)
		}
	})

	t.Run("purge adapter methods", func(t *testing.T) {
		e.get("b.test", "/")
		if r := e.do("PURGE", "b.test", "/", nil); r.status != 200 || r.h.Get("X-Purged") == "" {
			t.Errorf("PURGE /: %d %v", r.status, r.h)
		}
		if r := e.get("b.test", "/"); r.h.Get("X-Cache") != "MISS" {
			t.Errorf("after PURGE /: %s", r.h.Get("X-Cache"))
		}
		if r := e.do("BAN", "b.test", "/", map[string]string{"X-Ban-Url": "^/$"}); r.status != 200 || r.h.Get("X-Banned") == "" {
			t.Errorf("BAN: %d", r.status)
		}
		if r := e.get("b.test", "/"); r.h.Get("X-Cache") != "MISS" {
			t.Errorf("after BAN: %s", r.h.Get("X-Cache"))
		}
	})
	if t.Failed() {
		t.Logf("VCL:\n%s", numbered(vcl))
		t.Logf("varnishd folder: %s", v.Dir)
	}
}
