package fastly

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
	s3store "github.com/stump-dev/stump/publish/store/s3"
)

// TestMain shares one versitygw among the tests and points the AWS default chain at the
// test server's credentials only: s3store.Open takes credentials from nowhere else.
func TestMain(m *testing.M) {
	testenv.IsolateAWS()
	testenv.Main(m)
}

// built is one build of the test site.
type built struct {
	dir  string
	objs []publish.Object
}

// TestSimulatePublished publishes three builds of a site in atomic mode as stump
// publish does on Fastly (the first a full tree, the next two layers over it, the 404
// page pinned) to versitygw, and serves them through the generated Fastly VCL in
// falco's simulator, a fresh one (empty cache) after each switch: every file of the
// live build answers with its bytes, a removed page with the live build's 404 page,
// and so after rollbacks to the full tree and to a layer.
func TestSimulatePublished(t *testing.T) {
	env, bucket := websiteBucket(t)
	ctx := context.Background()

	ws := t.TempDir()
	write := func(files map[string]string) {
		for p, text := range files {
			p = filepath.Join(ws, p)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	build1 := func(name string) built {
		w, err := build.Open(ws)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), name)
		res, err := w.Build(ctx, "w", build.Options{OutDir: out, Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		objs, err := publish.Objects(res.Manifest, publish.DefaultCache, nil)
		if err != nil {
			t.Fatal(err)
		}
		return built{out, objs}
	}
	write(map[string]string{
		"stump.yaml":                 "output: public\n",
		"sites/w/site.yaml":          "title: W\nbaseURL: https://w.test/\n",
		"sites/w/content/_index.md":  "---\ntitle: Home\n---\nWelcome.\n",
		"sites/w/content/news/a.md":  "---\ntitle: Alpha\ndate: 2026-01-01\n---\nAlpha, version one.\n",
		"sites/w/content/news/b.md":  "---\ntitle: Beta\ndate: 2026-02-01\n---\nBeta, version one.\n",
		"sites/w/content/about.md":   "---\ntitle: About\n---\nAbout us.\n",
		"sites/w/static/files/m.txt": "A static file that never changes.\n",
	})
	for i := range 40 { // so that a change is a small part of the site
		write(map[string]string{fmt.Sprintf("sites/w/content/pages/p%d.md", i): fmt.Sprintf("---\ntitle: Page %d\n---\nPage %d.\n", i, i)})
	}
	v1 := build1("v1")
	write(map[string]string{"sites/w/content/news/a.md": "---\ntitle: Alpha\ndate: 2026-01-01\n---\nAlpha, version two.\n",
		"sites/w/content/news/fresh.md": "---\ntitle: Fresh\ndate: 2026-03-01\n---\nA fresh page.\n"})
	if err := os.Remove(filepath.Join(ws, "sites/w/content/about.md")); err != nil {
		t.Fatal(err)
	}
	v2 := build1("v2")
	write(map[string]string{"sites/w/content/news/b.md": "---\ntitle: Beta\ndate: 2026-02-01\n---\nBeta, version three.\n"})
	v3 := build1("v3")

	s3s, err := s3store.Open(ctx, s3store.Config{Bucket: bucket, Endpoint: env.Endpoint, PathStyle: true, Region: env.Region})
	if err != nil {
		t.Fatal(err)
	}
	st := store.WithPrefix(s3s, "w")
	if err := publish.WriteEdgeStamp(ctx, st, publish.EdgeStamp{Layers: true, By: "test"}); err != nil {
		t.Fatal(err)
	}
	d := &publish.Deployer{Store: st, Site: "w", Mode: publish.ModeAtomic, NeedEdgeStamp: true, FullPreviewTrees: true, Pins: []string{"404.html"}}
	ids := map[string]string{}
	for _, v := range []struct {
		name string
		b    built
	}{{"v1", v1}, {"v2", v2}, {"v3", v3}} {
		src, err := publish.OpenDir(v.b.dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.Publish(ctx, v.b.objs, src, publish.Options{Message: v.name})
		src.Close()
		if err != nil {
			t.Fatalf("publish %s: %v", v.name, err)
		}
		if (v.name == "v1") != (res.Base == "") {
			t.Fatalf("publish %s: base %q: want the first a full tree, the others layers", v.name, res.Base)
		}
		ids[v.name] = res.Deploy
	}

	o := newOrigin(t, env.Website, bucket+"."+env.WebsiteDomain)
	sites := []*config.Loaded{loadSite(t, "w", "baseURL: https://w.test/\ntarget: s3://"+bucket+"/w\ndeploy: { mode: atomic }\n"+
		"edge:\n  origin: http://"+o.addr+"\n  website_domain: "+env.WebsiteDomain+"\n  fastly: { service_id: SU1Z0isxPaozGVKXdv0eY }\n")}
	// check serves every file of b through a fresh simulator, and gone as missing.
	check := func(name string, b built, gone []string) {
		t.Helper()
		do := simulator(t, sites)
		get := func(host, path string) answer { t.Helper(); return do("GET", host, path) }
		notFound, err := os.ReadFile(filepath.Join(b.dir, "404.html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range b.objs {
			if obj.Redirect != "" {
				continue // (an alias: S3 website hosting's redirect, not the trees' concern)
			}
			want, err := os.ReadFile(filepath.Join(b.dir, obj.Path))
			if err != nil {
				t.Fatal(err)
			}
			u := "/" + strings.TrimSuffix(obj.Path, "index.html")
			status := http.StatusOK
			if obj.Path == "404.html" {
				u = "/404.html"
			}
			before := o.count()
			r := get("w.test", u)
			if r.status != status || r.body != string(want) {
				t.Errorf("%s: %s: %d %.60q, want %d and the built file", name, u, r.status, r.body, status)
			}
			if n := len(o.since(before)); n > 3 {
				t.Errorf("%s: %s: %d origin fetches (pointer, layer, base at most)", name, u, n)
			}
		}
		for _, u := range gone {
			if r := get("w.test", u); r.status != http.StatusNotFound || r.body != string(notFound) {
				t.Errorf("%s: %s: %d %.60q, want 404 and the live build's 404 page", name, u, r.status, r.body)
			}
		}
	}
	check("v3 (a layer)", v3, []string{"/about/", "/nowhere/"})
	for _, to := range []struct {
		name string
		b    built
		gone []string
	}{{"v1", v1, []string{"/news/fresh/", "/nowhere/"}}, {"v2", v2, []string{"/about/"}}} {
		if _, err := d.Rollback(ctx, ids[to.name]); err != nil {
			t.Fatalf("rollback to %s: %v", to.name, err)
		}
		check("rolled back to "+to.name, to.b, to.gone)
	}
}
