package edge

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
)

// The hostile tests: each finding of the adversarial review of the edge (issue 11) as a
// request an attacker would send, through a real Varnish running the generated VCL in
// front of versitygw's website endpoint.

const (
	testPurgeToken  = "test-purge-token-0123456789abcdef"
	testPreviewAuth = "preview:s3cret-preview"
	liveID          = "20261201t100000z-aaaaaa"
	previewID       = "20261202t100000z-bbbbbb"
)

// hreq is one request of a hostile test.
type hreq struct {
	method, host, path string
	hdr                http.Header
	from               string // local address to connect from (default 127.0.0.1)
	base               string // listener URL (default the main one)
}

type hostileEnv struct {
	*edgeEnv
	v       testenv.VarnishEnv
	mu      sync.Mutex
	clients map[string]*http.Client
}

func (h *hostileEnv) client(from string) *http.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[from]; c != nil {
		return c
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Timeout: 20 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableCompression: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h.clients[from] = c
	return c
}

func (h *hostileEnv) send(r hreq) answer {
	h.t.Helper()
	if r.method == "" {
		r.method = "GET"
	}
	if r.from == "" {
		r.from = "127.0.0.1"
	}
	if r.base == "" {
		r.base = h.v.URL
	}
	req, err := http.NewRequest(r.method, r.base+r.path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = r.host
	for k, vs := range r.hdr {
		req.Header[k] = vs
	}
	resp, err := h.client(r.from).Do(req)
	if err != nil {
		h.t.Fatalf("%s %s%s from %s: %v", r.method, r.host, r.path, r.from, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func randHex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rand.IntN(16)]
	}
	return string(b)
}

// setupHostile starts versitygw, the proxy and a Varnish with the VCL of sites, with
// the purge token and the preview credentials in varnishd's environment, a PROXY
// listener and a listener named "purge".
func setupHostile(t *testing.T, objects func(e *edgeEnv, bucket string), siteYAML func(origin, domain, bucket string) []*config.Loaded) *hostileEnv {
	t.Helper()
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	proxy := newSwitchProxy(t, env.Website)
	e := &edgeEnv{t: t, s3: env.Client(), bucket: bucket, proxy: proxy}
	objects(e, bucket)
	vcl, err := VCL(&config.Workspace{}, siteYAML("http://"+proxy.addr, env.WebsiteDomain, bucket)...)
	if err != nil {
		t.Fatal(err)
	}
	v := testenv.VarnishWith(t, string(vcl), testenv.VarnishOptions{
		Env:      []string{"STUMP_PURGE_TOKEN=" + testPurgeToken, "STUMP_TEST_PREVIEW_AUTH=" + testPreviewAuth},
		Proxy:    true,
		Listener: "purge",
	})
	e.url = v.URL
	h := &hostileEnv{edgeEnv: e, v: v, clients: map[string]*http.Client{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("VCL:\n%s", numbered(vcl))
		}
	})
	return h
}

// TestHostile is every finding of issue 11 but the shared probe (TestSharedOriginHealth).
func TestHostile(t *testing.T) {
	keys := func(site, path string) map[string]string {
		return map[string]string{"surrogate-key": site + ":url:" + path + " " + site}
	}
	h := setupHostile(t, func(e *edgeEnv, bucket string) {
		for _, s := range []string{"q", "rl", "geo"} {
			e.put(s+"/index.html", "home of "+s, keys(s, "/"), pageCC)
			e.put(s+"/404.html", "404 of "+s, keys(s, "/404.html"), pageCC)
		}
		e.put("q/page/index.html", "a page", keys("q", "/page/"), pageCC)
		e.put("q/search/index.html", "search", keys("q", "/search/"), pageCC)
		e.put("q/style.css", "body { color: black; } /* "+strings.Repeat("padding ", 200)+"*/", keys("q", "/style.css"), pageCC)
		for _, id := range []string{liveID, previewID} {
			for _, s := range []string{"d", "pa"} {
				e.put(s+"/_stump/trees/"+id+"/index.html", s+" home of "+id, keys(s, "/"), pageCC)
				e.put(s+"/_stump/trees/"+id+"/404.html", s+" 404 of "+id, keys(s, "/404.html"), pageCC)
			}
		}
		for _, s := range []string{"d", "pa"} {
			e.put(s+"/_stump/live", liveID, map[string]string{"deploy": liveID, "surrogate-key": s + ":pointer " + s}, "public, max-age=5")
			// Publish writes max-age=5; 60 (the VCL's cap) keeps a slow run within one TTL.
			e.put(s+"/_stump/trees.txt", previewID+"\n"+liveID+"\n", map[string]string{"ids": previewID + " " + liveID, "surrogate-key": s + ":trees " + s}, "public, max-age=60")
		}
	}, func(origin, domain, bucket string) []*config.Loaded {
		ws := &config.Workspace{}
		edge := func(extra string) string {
			return "edge:\n  origin: " + origin + "\n  website_domain: " + domain + "\n" +
				"  trusted_proxies: [127.0.0.1/32]\n  purgers: [127.0.0.1]\n" + extra
		}
		return []*config.Loaded{
			loadSite(t, ws, "q", "baseURL: https://q.test/\ntarget: s3://"+bucket+"/q\n"+edge(
				"  purge_listener: purge\n  query:\n    - { path: 'search/**', params: [q, page] }\n")),
			loadSite(t, ws, "rl", "baseURL: https://rl.test/\ntarget: s3://"+bucket+"/rl\n"+edge(
				"  defenses:\n    rate_limit: { requests: 5, per: 60s }\n")),
			loadSite(t, ws, "geo", "baseURL: https://geo.test/\ntarget: s3://"+bucket+"/geo\n"+edge(
				"  defenses:\n    blocked_countries: [RU]\n")),
			loadSite(t, ws, "d", "baseURL: https://d.test/\ntarget: s3://"+bucket+"/d\ndeploy: { mode: atomic }\n"+edge(
				"  preview_host: preview.d.test\n")),
			loadSite(t, ws, "pa", "baseURL: https://pa.test/\ntarget: s3://"+bucket+"/pa\ndeploy: { mode: atomic }\n"+edge(
				"  preview_host: preview.pa.test\n  preview_auth_env: STUMP_TEST_PREVIEW_AUTH\n")),
		}
	})
	proxy := h.proxy

	// 1. A flood of random query strings is one object and one origin request, and the
	// origin never sees the query; the allowlist keeps the parameters that matter.
	t.Run("cache busting", func(t *testing.T) {
		before := proxy.requests.Load()
		for i := 0; i < 100; i++ {
			r := h.send(hreq{host: "q.test", path: "/page/?v=" + randHex(12) + "&utm_source=x"})
			if r.status != 200 || r.body != "a page" {
				t.Fatalf("request %d: %d %q", i, r.status, r.body)
			}
		}
		seen := proxy.since(before)
		if len(seen) > 1 {
			t.Errorf("100 random query strings: %d origin requests (want at most 1), first %q", len(seen), seen[:min(3, len(seen))])
		}
		for _, u := range seen {
			if strings.Contains(u, "?") {
				t.Errorf("the origin got a query: %s", u)
				break
			}
		}
		before = proxy.requests.Load()
		for _, p := range []string{"/search/?q=rally&v=1", "/search/?v=2&q=rally&x=y", "/search/?q=rally", "/search/?q=march"} {
			if r := h.send(hreq{host: "q.test", path: p}); r.status != 200 || r.body != "search" {
				t.Fatalf("%s: %d %q", p, r.status, r.body)
			}
		}
		seen = proxy.since(before)
		if len(seen) != 2 || !strings.HasSuffix(seen[0], "/q/search/?q=rally") || !strings.HasSuffix(seen[1], "/q/search/?q=march") {
			t.Errorf("allowlisted q: origin requests %q, want /q/search/?q=rally then ?q=march", seen)
		}
	})

	// Random missing paths reach the origin once each (the 404 is cached), and preview
	// labels that are not deploy ids never reach it.
	t.Run("negative caching and unknown hosts", func(t *testing.T) {
		before := proxy.requests.Load()
		var paths []string
		for i := 0; i < 20; i++ {
			paths = append(paths, "/missing-"+randHex(10)+"/")
		}
		for round := 0; round < 3; round++ {
			for _, p := range paths {
				if r := h.send(hreq{host: "q.test", path: p, hdr: hdr("X-Forwarded-For", "192.0.2."+fmt.Sprint(round))}); r.status != 404 || r.body != "404 of q" {
					t.Fatalf("%s: %d %q", p, r.status, r.body)
				}
			}
		}
		if n := proxy.requests.Load() - before; n > int64(len(paths))+1 {
			t.Errorf("%d distinct missing paths asked 3 times: %d origin requests, want at most %d", len(paths), n, len(paths)+1)
		}

		before = proxy.requests.Load()
		for i := 0; i < 20; i++ {
			label := []string{"www", "admin", "a1b2", randHex(8), "20261201t100000z-aaaaa", "20261201T100000Z-AAAAAA-x"}[i%6] + randHex(2)
			if i%6 == 5 {
				label = "20261201t1000" + randHex(2) + "z-" + randHex(5) + "g" // one character off the pattern
			}
			if r := h.send(hreq{host: label + ".preview.d.test", path: "/"}); r.status != 404 {
				t.Errorf("preview label %q: %d %q", label, r.status, r.body)
			}
		}
		if seen := proxy.since(before); len(seen) > 0 {
			t.Errorf("preview labels that are not deploy ids reached the origin %d times: %q", len(seen), seen[:min(3, len(seen))])
		}
		r := h.send(hreq{host: previewID + ".preview.d.test", path: "/"})
		if r.status != 200 || r.body != "d home of "+previewID {
			t.Errorf("preview of a deploy: %d %q", r.status, r.body)
		}
		if got := r.h.Get("X-Robots-Tag"); got != "noindex" {
			t.Errorf("preview X-Robots-Tag = %q, want noindex", got)
		}
		if r := h.send(hreq{host: "d.test", path: "/"}); r.status != 200 || r.body != "d home of "+liveID || r.h.Get("X-Robots-Tag") != "" {
			t.Errorf("live site: %d %q X-Robots-Tag %q", r.status, r.body, r.h.Get("X-Robots-Tag"))
		}
	})

	// A label shaped like a deploy id that publish has not recorded (in
	// _stump/trees.txt) gets the 404 of a bad label: the origin sees the list, once
	// while it is cached, and never the preview.
	t.Run("unrecorded preview labels", func(t *testing.T) {
		h.send(hreq{host: previewID + ".preview.d.test", path: "/"}) // the list is cached
		before := proxy.requests.Load()
		bad := h.send(hreq{host: "www.preview.d.test", path: "/"})
		for i := 0; i < 30; i++ {
			label := fmt.Sprintf("2026%02d%02dt%02d%02d%02dz-%s", 1+rand.IntN(12), 1+rand.IntN(28), rand.IntN(24), rand.IntN(60), rand.IntN(60), randHex(6))
			path := []string{"/", "/missing/", "/app." + randHex(64) + ".js"}[i%3]
			r := h.send(hreq{host: label + ".preview.d.test", path: path})
			if r.status != 404 || r.body != bad.body || strings.Contains(r.body, "home") {
				t.Errorf("unrecorded deploy %s%s: %d %q, want the 404 of a bad label (%d %q)", label, path, r.status, r.body, bad.status, bad.body)
			}
			if r.h.Get("X-Robots-Tag") != "noindex" || r.h.Get("Strict-Transport-Security") == "" {
				t.Errorf("unrecorded deploy %s: headers %v", label, r.h)
			}
		}
		for _, u := range proxy.since(before) {
			if !strings.HasSuffix(u, "/d/_stump/trees.txt") {
				t.Errorf("an unrecorded preview reached the origin: %s", u)
			}
		}
		if n := len(proxy.since(before)); n > 1 {
			t.Errorf("30 unrecorded previews within the list's TTL: %d fetches of the list, want at most 1", n)
		}
		// A recorded deploy is served, the live one included.
		for _, id := range []string{previewID, strings.ToUpper(liveID)} {
			if r := h.send(hreq{host: id + ".preview.d.test", path: "/"}); r.status != 200 || r.body != "d home of "+strings.ToLower(id) {
				t.Errorf("recorded preview %s: %d %q", id, r.status, r.body)
			}
		}
		// The list is a whole-word match: a prefix or an extension of a recorded id is
		// not one.
		for _, label := range []string{previewID[:len(previewID)-1] + "c", "0" + previewID[1:]} {
			if r := h.send(hreq{host: label + ".preview.d.test", path: "/"}); r.status != 404 {
				t.Errorf("near miss %s: %d %q", label, r.status, r.body)
			}
		}
		// _stump/trees.txt itself is not served.
		if r := h.send(hreq{host: "d.test", path: "/_stump/trees.txt"}); r.status != 404 || strings.Contains(r.body, previewID) {
			t.Errorf("/_stump/trees.txt: %d %q", r.status, r.body)
		}
	})

	// Previews can require basic authentication.
	t.Run("preview authentication", func(t *testing.T) {
		before := proxy.requests.Load()
		host := previewID + ".preview.pa.test"
		if r := h.send(hreq{host: host, path: "/"}); r.status != 401 || r.h.Get("WWW-Authenticate") == "" || strings.Contains(r.body, "home") {
			t.Errorf("preview without credentials: %d %q %v", r.status, r.body, r.h)
		}
		bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("preview:wrong"))
		if r := h.send(hreq{host: host, path: "/", hdr: hdr("Authorization", bad)}); r.status != 401 {
			t.Errorf("preview with a wrong password: %d %q", r.status, r.body)
		}
		if n := proxy.requests.Load() - before; n != 0 {
			t.Errorf("unauthenticated previews reached the origin %d times", n)
		}
		good := "Basic " + base64.StdEncoding.EncodeToString([]byte(testPreviewAuth))
		for i := 0; i < 2; i++ {
			if r := h.send(hreq{host: host, path: "/", hdr: hdr("Authorization", good)}); r.status != 200 || r.body != "pa home of "+previewID {
				t.Errorf("preview with credentials (%d): %d %q", i, r.status, r.body)
			}
		}
		// Cached now: still no answer without credentials.
		if r := h.send(hreq{host: host, path: "/"}); r.status != 401 {
			t.Errorf("cached preview without credentials: %d", r.status)
		}
		if r := h.send(hreq{host: "pa.test", path: "/"}); r.status != 200 || r.body != "pa home of "+liveID {
			t.Errorf("live site of a site with preview auth: %d %q", r.status, r.body)
		}
	})

	// 2. The rate limit keys on the right-most untrusted X-Forwarded-For hop: rotating
	// the hops a client writes does not help, and visitors behind the proxy have their
	// own buckets; cache hits do not count.
	t.Run("rate limit and X-Forwarded-For", func(t *testing.T) {
		blocked := 0
		for i := 0; i < 10; i++ {
			xff := fmt.Sprintf("198.51.100.%d, 203.0.113.50", i)
			r := h.send(hreq{host: "rl.test", path: "/miss-" + randHex(8) + "/", hdr: hdr("X-Forwarded-For", xff)})
			if r.status == 403 {
				blocked++
			}
		}
		if blocked != 5 {
			t.Errorf("10 misses from one client rotating its first X-Forwarded-For hop: %d blocked, want 5", blocked)
		}
		for i := 0; i < 10; i++ {
			xff := fmt.Sprintf("203.0.113.%d", 100+i)
			if r := h.send(hreq{host: "rl.test", path: "/miss-" + randHex(8) + "/", hdr: hdr("X-Forwarded-For", xff)}); r.status != 404 {
				t.Errorf("visitor %s behind the proxy, first request: %d (a shared bucket?)", xff, r.status)
			}
		}
		// Many page views from one address (a rally's venue Wi-Fi): hits do not count.
		for i := 0; i < 30; i++ {
			if r := h.send(hreq{host: "rl.test", path: "/", hdr: hdr("X-Forwarded-For", "203.0.113.200")}); r.status != 200 {
				t.Fatalf("page view %d of a cached page from one address: %d", i, r.status)
			}
		}
	})

	// The PROXY protocol gives Varnish the visitor's address: X-Forwarded-For from it is
	// not believed.
	t.Run("PROXY protocol listener", func(t *testing.T) {
		blocked := 0
		for i := 0; i < 8; i++ {
			st := proxyProtoGet(t, h.v.ProxyAddr, "192.0.2.77", "rl.test", "/pp-"+randHex(8)+"/",
				fmt.Sprintf("198.51.100.%d", i))
			if st == 403 {
				blocked++
			}
		}
		if blocked != 3 {
			t.Errorf("8 misses from one PROXY-protocol client rotating X-Forwarded-For: %d blocked, want 3", blocked)
		}
		// A TLS terminator speaking PROXY passes the visitor's headers through: its
		// geo header is the visitor's, not believed.
		if st := rawStatus(t, h.v.ProxyAddr, "PROXY TCP4 192.0.2.78 127.0.0.1 40001 80\r\nGET / HTTP/1.1\r\nHost: geo.test\r\nX-Country: RU\r\nConnection: close\r\n\r\n"); st != 200 {
			t.Errorf("X-Country: RU from a PROXY-protocol client: %d, want 200 (ignored)", st)
		}
	})

	// 3. Purges need the token, from a purger, on the purge listener; a visitor behind
	// the TLS terminator on loopback is not loopback.
	t.Run("purge authentication", func(t *testing.T) {
		h.send(hreq{host: "q.test", path: "/page/"})
		purge := func(base string, hd http.Header) answer {
			if hd == nil {
				hd = http.Header{}
			}
			hd.Set("xkey-purge", "q:url:/page/")
			return h.send(hreq{method: "PURGE", host: "q.test", path: "/", hdr: hd, base: base})
		}
		for why, r := range map[string]answer{
			"no token":                 purge(h.v.NamedURL, nil),
			"wrong token":              purge(h.v.NamedURL, hdr("X-Purge-Token", "guess")),
			"token prefix":             purge(h.v.NamedURL, hdr("X-Purge-Token", testPurgeToken[:10])),
			"visitor behind the proxy": purge(h.v.NamedURL, hdr("X-Purge-Token", testPurgeToken, "X-Forwarded-For", "203.0.113.7")),
			"main listener":            purge(h.v.URL, hdr("X-Purge-Token", testPurgeToken)),
		} {
			if r.status != 403 || r.h.Get("X-Purged") != "" {
				t.Errorf("purge, %s: %d %q, want 403", why, r.status, r.body)
			}
		}
		if r := h.send(hreq{host: "q.test", path: "/page/"}); r.h.Get("X-Cache") != "HIT" {
			t.Errorf("a refused purge purged: X-Cache %q", r.h.Get("X-Cache"))
		}
		if r := purge(h.v.NamedURL, hdr("X-Purge-Token", testPurgeToken)); r.status != 200 || r.h.Get("X-Purged") == "" {
			t.Errorf("purge with the token: %d %q %v", r.status, r.body, r.h)
		}
		if r := h.send(hreq{host: "q.test", path: "/page/"}); r.h.Get("X-Cache") != "MISS" {
			t.Errorf("after the purge: X-Cache %q", r.h.Get("X-Cache"))
		}
	})

	// 5. The country comes from a trusted proxy only, and its own header wins over the
	// client's.
	t.Run("geo header", func(t *testing.T) {
		if r := h.send(hreq{host: "geo.test", path: "/", hdr: hdr("X-Country", "RU")}); r.status != 403 {
			t.Errorf("RU from the trusted proxy: %d", r.status)
		}
		if r := h.send(hreq{host: "geo.test", path: "/", hdr: hdr("X-Country", "DE", "X-Country", "RU")}); r.status != 403 {
			t.Errorf("client's DE then the proxy's RU: %d, want 403", r.status)
		}
		if r := h.send(hreq{host: "geo.test", path: "/", from: "127.0.0.2", hdr: hdr("X-Country", "RU")}); r.status != 200 {
			t.Errorf("RU written by an untrusted client: %d, want 200 (ignored)", r.status)
		}
		if r := h.send(hreq{host: "geo.test", path: "/", hdr: hdr("X-Country", "DE")}); r.status != 200 {
			t.Errorf("DE from the trusted proxy: %d", r.status)
		}
	})

	// 6. Normalisation before the rules; hygiene of every answer.
	t.Run("normalisation", func(t *testing.T) {
		for _, p := range []string{"/%77p-login.php", "/%57P-LOGIN.PHP", "//wp-admin/", "/%2577p-login.php", "/x/%78mlrpc%2ephp", "/%77%70-admin/x"} {
			r := h.send(hreq{host: "q.test", path: p})
			if p == "/%2577p-login.php" {
				// %25 is "%": a literal "%77p-login.php" file name, not wp-login.php.
				if r.status != 404 {
					t.Errorf("%s: %d", p, r.status)
				}
				continue
			}
			if r.status != 403 || r.body != DefaultBlockedBody {
				t.Errorf("%s: %d %q, want the blocked answer", p, r.status, r.body)
			}
		}
		// The absolute form of the request target must not skip the rules.
		for target, want := range map[string]int{"http://q.test/wp-login.php": 403, "HTTP://q.test//_stump/live": 404, "http://q.test/page/": 200} {
			if st := rawStatus(t, h.v.Addr, "GET "+target+" HTTP/1.1\r\nHost: q.test\r\nConnection: close\r\n\r\n"); st != want {
				t.Errorf("GET %s: %d, want %d", target, st, want)
			}
		}
		if st := rawStatus(t, h.v.Addr, "GET /%zz/ HTTP/1.1\r\nHost: q.test\r\nConnection: close\r\n\r\n"); st != 400 {
			t.Errorf("a broken escape: %d", st)
		}
		if r := h.send(hreq{host: "q.test", path: "/%5fstump/live"}); r.status != 404 || r.body != "404 of q" {
			t.Errorf("/%%5fstump/live: %d %q", r.status, r.body)
		}
		h.send(hreq{host: "q.test", path: "/page/"})
		for _, p := range []string{"//page/", "/page//", "/%70age/", "/%70%61ge/?x=1"} {
			if r := h.send(hreq{host: "q.test", path: p}); r.status != 200 || r.body != "a page" || r.h.Get("X-Cache") != "HIT" {
				t.Errorf("%s: %d %q X-Cache %q, want the cached /page/", p, r.status, r.body, r.h.Get("X-Cache"))
			}
		}
	})

	t.Run("hygiene", func(t *testing.T) {
		answers := map[string]answer{
			"200":              h.send(hreq{host: "q.test", path: "/"}),
			"403 blocked":      h.send(hreq{host: "q.test", path: "/xmlrpc.php"}),
			"404 unknown host": h.send(hreq{host: "nowhere.test", path: "/"}),
			"404 page":         h.send(hreq{host: "q.test", path: "/nope/"}),
			"OPTIONS":          h.send(hreq{method: "OPTIONS", host: "q.test", path: "/", hdr: hdr("X-Forwarded-For", "192.0.2.200")}),
		}
		proxy.down.Store(true)
		answers["503"] = h.send(hreq{host: "q.test", path: "/never-" + randHex(6) + "/"})
		proxy.down.Store(false)
		for what, r := range answers {
			for _, k := range []string{"Via", "X-Varnish", "Server"} {
				if v := r.h.Get(k); v != "" {
					t.Errorf("%s (%d): %s: %q reveals the server", what, r.status, k, v)
				}
			}
			for k, v := range DefaultHeaders {
				if got := r.h.Get(k); got != v {
					t.Errorf("%s (%d): %s = %q, want %q", what, r.status, k, got, v)
				}
			}
		}
		if answers["503"].status != 503 {
			t.Errorf("origin down: %d", answers["503"].status)
		}
		r := h.send(hreq{host: "q.test", path: "/style.css", hdr: hdr("Accept-Encoding", "gzip")})
		if r.status != 200 || r.h.Get("Content-Encoding") != "gzip" {
			t.Errorf("text file with Accept-Encoding: gzip: %d Content-Encoding %q", r.status, r.h.Get("Content-Encoding"))
		}
		if r := h.send(hreq{host: "q.test", path: "/style.css"}); r.status != 200 || r.h.Get("Content-Encoding") != "" || !strings.HasPrefix(r.body, "body {") {
			t.Errorf("text file without Accept-Encoding: %d Content-Encoding %q", r.status, r.h.Get("Content-Encoding"))
		}
	})
}

// rawStatus sends one raw request over a new connection and returns the status.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// proxyProtoGet sends one GET over a new connection to a PROXY-protocol listener,
// claiming to come from client, and returns the status.
func proxyProtoGet(t *testing.T, addr, client, host, path, xff string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 40000 80\r\n", client)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: %s\r\nConnection: close\r\n\r\n", path, host, xff)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("PROXY %s: %v", client, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// 4. Sites on one origin have their own backends and probes: one site's missing
// pointer (before its first atomic deploy) does not make the other sites' origin sick.
func TestSharedOriginHealth(t *testing.T) {
	keys := func(site, path string) map[string]string {
		return map[string]string{"surrogate-key": site + ":url:" + path + " " + site}
	}
	probe := "  probe: { interval: 100ms, timeout: 1s, window: 3, threshold: 2 }\n"
	h := setupHostile(t, func(e *edgeEnv, bucket string) {
		e.put("new/index.html", "new, in place", keys("new", "/"), pageCC)
		e.put("inp/index.html", "in place home", keys("inp", "/"), pageCC) // its probe's URL
		for i := 0; i < 5; i++ {
			e.put(fmt.Sprintf("old/_stump/trees/%s/p%d/index.html", liveID, i), "old page", keys("old", "/"), pageCC)
			e.put(fmt.Sprintf("inp/p%d/index.html", i), "in place page", keys("inp", "/"), pageCC)
		}
		e.put("old/_stump/live", liveID, map[string]string{"deploy": liveID, "surrogate-key": "old:pointer old"}, "public, max-age=5")
	}, func(origin, domain, bucket string) []*config.Loaded {
		ws := &config.Workspace{}
		edge := "edge:\n  origin: " + origin + "\n  website_domain: " + domain + "\n" + probe
		return []*config.Loaded{
			// First on the origin: atomic, but nothing published that way yet.
			loadSite(t, ws, "new", "baseURL: https://new.test/\ntarget: s3://"+bucket+"/new\ndeploy: { mode: atomic }\n"+edge),
			loadSite(t, ws, "old", "baseURL: https://old.test/\ntarget: s3://"+bucket+"/old\ndeploy: { mode: atomic }\n"+edge),
			loadSite(t, ws, "inp", "baseURL: https://inp.test/\ntarget: s3://"+bucket+"/inp\n"+edge),
		}
	})
	// Wait until the probes have run several times: new's _stump/live is missing.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		cmd := h.send(hreq{host: "new.test", path: fmt.Sprintf("/wait-%d/", i)})
		if cmd.status == 503 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 5; i++ {
		if r := h.send(hreq{host: "old.test", path: fmt.Sprintf("/p%d/", i)}); r.status != 200 || r.body != "old page" {
			t.Errorf("old.test/p%d/ while new.test has no pointer: %d %q", i, r.status, r.body)
		}
		if r := h.send(hreq{host: "inp.test", path: fmt.Sprintf("/p%d/", i)}); r.status != 200 || r.body != "in place page" {
			t.Errorf("inp.test/p%d/ while new.test has no pointer: %d %q", i, r.status, r.body)
		}
	}
}
