package website

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

func TestHandler(t *testing.T) {
	m := mem.New()
	ctx := context.Background()
	put := func(k, body string, meta store.Meta) {
		if _, err := store.PutBytes(ctx, m, k, []byte(body), store.PutOptions{Meta: meta}); err != nil {
			t.Fatal(err)
		}
	}
	html := store.Meta{ContentType: "text/html; charset=utf-8", CacheControl: "public, max-age=60", Metadata: map[string]string{"surrogate-key": "s s:url:/"}}
	put("index.html", "home", html)
	put("news/index.html", "news", html)
	put("404.html", "not here", html)
	put("old/index.html", "moved", store.Meta{ContentType: "text/html", RedirectLocation: "/news/"})
	put("_stump/current.json", "{}", store.Meta{})
	srv := httptest.NewServer(&Handler{Store: m})
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(method, path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := res.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return res, b.String()
	}
	cases := []struct {
		method, path string
		code         int
		body, loc    string
	}{
		{"GET", "/", 200, "home", ""},
		{"GET", "/news/", 200, "news", ""},
		{"GET", "/news", 302, "", "/news/"},
		{"GET", "/news?utm_source=x&q=1", 302, "", "/news/"}, // no query is kept by default
		{"GET", "/old/", 301, "", "/news/"},
		{"GET", "/missing/", 404, "not here", ""},
		{"GET", "/_stump/current.json", 404, "not here", ""},
		{"GET", "/../etc/passwd", 404, "not here", ""},
		{"HEAD", "/", 200, "", ""},
		{"POST", "/", 405, "method not allowed\n", ""},
	}
	for _, tc := range cases {
		res, body := get(tc.method, tc.path)
		if res.StatusCode != tc.code || (tc.body != "" && body != tc.body) || res.Header.Get("Location") != tc.loc {
			t.Errorf("%s %s = %d %q Location %q; want %d %q %q", tc.method, tc.path, res.StatusCode, body, res.Header.Get("Location"), tc.code, tc.body, tc.loc)
		}
	}
	// With the edge's rule for the site: only its parameters survive, sorted.
	srv.Config.Handler = &Handler{Store: m, KeepQuery: func(p, q string) string {
		if p == "/news" && q != "" {
			return "q=1"
		}
		return ""
	}}
	if res, _ := get("GET", "/news?utm_source=x&q=1"); res.StatusCode != 302 || res.Header.Get("Location") != "/news/?q=1" {
		t.Errorf("kept query: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ := get("GET", "/")
	if res.Header.Get("Cache-Control") != "public, max-age=60" || res.Header.Get("Content-Type") != "text/html; charset=utf-8" || res.Header.Get("X-Amz-Meta-Surrogate-Key") != "s s:url:/" {
		t.Errorf("headers %v", res.Header)
	}
	etag := res.Header.Get("ETag")
	if res, _ := get("GET", "/", "If-None-Match", etag); etag == "" || res.StatusCode != 304 {
		t.Errorf("conditional GET: %d (etag %q)", res.StatusCode, etag)
	}
}

func TestHandlerAtomicTree(t *testing.T) {
	m := mem.New()
	ctx := context.Background()
	store.PutBytes(ctx, m, "_stump/trees/D1/index.html", []byte("tree one"), store.PutOptions{Meta: store.Meta{ContentType: "text/html"}})
	store.PutBytes(ctx, m, "_stump/trees/D1/404.html", []byte("tree 404"), store.PutOptions{Meta: store.Meta{ContentType: "text/html"}})
	store.PutBytes(ctx, m, "_stump/live", []byte("D1\n"), store.PutOptions{Meta: store.Meta{Metadata: map[string]string{"deploy": "D1"}}})
	srv := httptest.NewServer(&Handler{Store: m})
	defer srv.Close()
	for path, want := range map[string]string{"/": "tree one", "/nope/": "tree 404"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, _ := res.Body.Read(b)
		res.Body.Close()
		if string(b[:n]) != want {
			t.Errorf("%s = %q, want %q", path, b[:n], want)
		}
	}
}

// TestHandlerLayeredTree: a layered atomic deploy is served as the edge serves it: its
// layer first, then its base; a tombstone is a 404; "/dir" redirects when the index is
// in either.
func TestHandlerLayeredTree(t *testing.T) {
	m := mem.New()
	ctx := context.Background()
	html := store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}
	for k, v := range map[string]string{
		"_stump/trees/B/index.html":      "base home",
		"_stump/trees/B/same/index.html": "same",
		"_stump/trees/B/gone/index.html": "gone in L",
		"_stump/trees/B/404.html":        "base 404",
		"_stump/trees/L/index.html":      "layer home",
	} {
		if _, err := store.PutBytes(ctx, m, k, []byte(v), html); err != nil {
			t.Fatal(err)
		}
	}
	tomb := store.PutOptions{Meta: store.Meta{Metadata: map[string]string{"tombstone": "1"}}}
	if _, err := store.PutBytes(ctx, m, "_stump/trees/L/gone/index.html", nil, tomb); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutBytes(ctx, m, "_stump/live", []byte("L\n"), store.PutOptions{Meta: store.Meta{Metadata: map[string]string{"deploy": "L", "base": "B"}}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&Handler{Store: m})
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/", 200, "layer home"},
		{"/same/", 200, "same"},
		{"/same", 302, ""},
		{"/gone/", 404, "base 404"},
		{"/gone", 404, "base 404"},
		{"/nope/", 404, "base 404"},
	} {
		res, err := c.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, _ := res.Body.Read(b)
		res.Body.Close()
		if res.StatusCode != tc.code || (tc.body != "" && string(b[:n]) != tc.body) {
			t.Errorf("%s = %d %q, want %d %q", tc.path, res.StatusCode, b[:n], tc.code, tc.body)
		}
	}
}

// A target nothing was published to answers 404 with the hint stump serve gives it.
func TestNotFoundHint(t *testing.T) {
	h := &Handler{Store: mem.New(), NotFoundHint: "nothing is published here yet: run stump publish --site x"}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "run stump publish --site x") {
		t.Errorf("GET / on an empty target: %d %q", rec.Code, rec.Body.String())
	}
}
