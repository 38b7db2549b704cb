package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
)

// TestVarnishLayers: an atomic deploy whose tree is a layer over a full base tree (see
// publish/atomic.go) is served whole through the generated VCL: a path in the layer
// from the layer, any other from the base with one extra origin fetch at most, a
// tombstone as the site's 404 page, and a preview of the layered deploy through its marker.
func TestVarnishLayers(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	proxy := newSwitchProxy(t, env.Website)
	e := &edgeEnv{t: t, s3: env.Client(), bucket: bucket, proxy: proxy,
		client: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	keys := func(path string) map[string]string {
		return map[string]string{"surrogate-key": "l:url:" + path + " l"}
	}
	for p, body := range map[string]string{
		"index.html": "L home", "same/index.html": "same in both", "gone/index.html": "removed by the layer",
		"changed/index.html": "changed v1", "404.html": "L 404",
	} {
		e.put("l/_stump/trees/20261206t030000z-aaaaaa/"+p, body, keys("/"+p), pageCC)
	}
	e.put("l/_stump/trees/20261206t040000z-bbbbbb/changed/index.html", "changed v2", keys("/changed/"), pageCC)
	e.put("l/_stump/trees/20261206t040000z-bbbbbb/gone/index.html", "", map[string]string{"tombstone": "1", "surrogate-key": "l"}, "no-cache")
	e.put("l/_stump/layers/20261206t040000z-bbbbbb", "{}", map[string]string{"deploy": "20261206t040000z-bbbbbb", "base": "20261206t030000z-aaaaaa"}, "public, max-age=31536000, immutable")
	e.put("l/_stump/trees.txt", "20261206t040000z-bbbbbb\n20261206t030000z-aaaaaa\n", map[string]string{"ids": "20261206t040000z-bbbbbb 20261206t030000z-aaaaaa", "surrogate-key": "l:trees l"}, "public, max-age=5")
	e.put("l/_stump/live", "20261206t040000z-bbbbbb", map[string]string{"deploy": "20261206t040000z-bbbbbb", "base": "20261206t030000z-aaaaaa", "surrogate-key": "l:pointer l"}, "public, max-age=5")

	ws := &config.Workspace{}
	site := loadSite(t, ws, "l", "baseURL: https://l.test/\ntarget: s3://"+bucket+"/l\ndeploy: { mode: atomic }\n"+
		"edge:\n  origin: http://"+proxy.addr+"\n  website_domain: "+env.WebsiteDomain+"\n  preview_host: preview.localhost\n  probe: { disabled: true }\n")
	vcl, err := VCL(ws, site)
	if err != nil {
		t.Fatal(err)
	}
	v := testenv.Varnish(t, string(vcl))
	e.url = v.URL

	// The pointer costs one origin fetch, cached afterwards.
	if r := e.get("l.test", "/"); r.status != 200 || r.body != "L home" {
		t.Fatalf("home (from the base): %d %q", r.status, r.body)
	}
	for _, tc := range []struct {
		path, body string
		status     int
		origin     int64 // origin fetches on a miss
	}{
		{"/changed/", "changed v2", 200, 1},
		{"/same/", "same in both", 200, 2},
		{"/gone/", "L 404", 404, 1 + 2}, // the tombstone, then the 404 page (layer, base)
	} {
		before := proxy.requests.Load()
		r := e.get("l.test", tc.path)
		if r.status != tc.status || r.body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, r.status, r.body, tc.status, tc.body)
		}
		if n := proxy.requests.Load() - before; n > tc.origin {
			t.Errorf("%s: %d origin fetches, want at most %d", tc.path, n, tc.origin)
		}
		for k := range r.h {
			if k == "X-Amz-Meta-Tombstone" || k == "X-Amz-Meta-Base" || k == "X-Stump-Base" {
				t.Errorf("%s: internal header %s reached the client", tc.path, k)
			}
		}
	}
	if r := e.get("20261206t040000z-bbbbbb.preview.localhost", "/same/"); r.status != 200 || r.body != "same in both" {
		t.Errorf("preview of the layered deploy, a path of its base: %d %q", r.status, r.body)
	}
	if r := e.get("20261206t040000z-bbbbbb.preview.localhost", "/changed/"); r.status != 200 || r.body != "changed v2" {
		t.Errorf("preview of the layered deploy, a path of its layer: %d %q", r.status, r.body)
	}
	if r := e.get("20261206t030000z-aaaaaa.preview.localhost", "/changed/"); r.status != 200 || r.body != "changed v1" {
		t.Errorf("preview of the base (no marker: a full tree): %d %q", r.status, r.body)
	}
	if t.Failed() {
		t.Logf("VCL:\n%s", numbered(vcl))
	}
}
