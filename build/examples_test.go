package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build/manifest"
)

// TestExampleSites builds the repository's own workspace (sites/ and themes/) twice in
// parallel and checks features the example sites are meant to exercise, and that the two
// builds are byte-identical.
func TestExampleSites(t *testing.T) {
	ws, err := Open("..")
	if err != nil {
		t.Fatal(err)
	}
	sites, err := ws.Sites()
	if err != nil || len(sites) < 2 {
		t.Fatalf("sites: %v %v", sites, err)
	}
	build := func() map[string]*Result {
		out := map[string]*Result{}
		for _, r := range ws.BuildAll(context.Background(), sites, Options{NoWrite: true, Now: now}) {
			if r.Err != nil {
				t.Fatalf("%s: %v", r.Site, r.Err)
			}
			out[r.Site] = r.Result
		}
		return out
	}
	a, b := build(), build()
	descRE := regexp.MustCompile(`name="description" content="([^"]*)"`)
	for _, s := range sites {
		// The example sites are clean: no warnings (broken links, leaked template
		// syntax, missing layouts), and no meta description with stray white space.
		if w := a[s].Report.Warnings; len(w) > 0 {
			t.Errorf("%s: the build warns: %q", s, w)
		}
		for p, data := range a[s].Tree {
			for _, m := range descRE.FindAllSubmatch(data, -1) {
				if d := string(m[1]); d != strings.TrimSpace(d) {
					t.Errorf("%s/%s: meta description %q has leading or trailing white space", s, p, d)
				}
			}
		}
	}
	for _, s := range sites {
		ma, _ := a[s].Manifest.Marshal()
		mb, _ := b[s].Manifest.Marshal()
		if !bytes.Equal(ma, mb) {
			t.Errorf("%s: two builds gave different manifests", s)
		}
		for p, data := range a[s].Tree {
			if !bytes.Equal(data, b[s].Tree[p]) {
				t.Errorf("%s: %s differs between two builds", s, p)
			}
		}
		checkManifest(t, s, a[s])
	}
	c := a["candidate"].Tree
	for _, want := range []string{
		"index.html", "404.html", "sitemap.xml", "robots.txt", "index.xml",
		"news/index.html", "news/page/2/index.html", "news/index.xml", "tags/index.html",
		"issues/index.html", "news/town-hall/index.html", "rally/index.html",
		"old/press-release/index.html", "on/broadband/index.html", // permalinks: issues: /on/:slug/
	} {
		if _, ok := c[want]; !ok {
			t.Errorf("candidate: %s not built", want)
		}
	}
	// The example sites use shortcodes: a video and a figure.
	if !bytes.Contains(c["news/launch-announcement/index.html"], []byte(`src="https://www.youtube-nocookie.com/embed/ZJthWmvUzzc"`)) {
		t.Error("candidate: the launch announcement lacks its youtube shortcode's video")
	}
	if !bytes.Contains(c["news/town-hall/index.html"], []byte(`<figure><img src="/news/town-hall/crowd.svg"`)) {
		t.Error("candidate: the town hall lacks its figure shortcode")
	}
	if _, ok := a["stateparty"].Tree["press/2026/platform-adopted/index.html"]; !ok {
		t.Error("stateparty: press/2026/platform-adopted/ not built (permalinks: press: /press/:year/:slugorfilename/)")
	}
	if _, ok := a["stateparty"].Tree["atom.xml"]; !ok {
		t.Error("stateparty: atom.xml not built (feeds: atom)")
	}
	var hasFingerprint bool
	for p := range c {
		if strings.HasPrefix(p, "css/site.") && len(p) > len("css/site..css")+60 {
			hasFingerprint = true
		}
	}
	if !hasFingerprint {
		t.Error("candidate: no fingerprinted css/site.<hash>.css")
	}
	for p, data := range c {
		if strings.HasSuffix(p, ".html") && bytes.Contains(data, []byte("<script")) {
			t.Errorf("candidate: %s has a script; the theme must need none", p)
		}
	}
}

// checkManifest checks the manifest against the tree: every file listed once, hashes and
// sizes right, classes set.
func checkManifest(t *testing.T, site string, r *Result) {
	t.Helper()
	if len(r.Manifest.Files) != len(r.Tree) {
		t.Errorf("%s: manifest lists %d files, tree has %d", site, len(r.Manifest.Files), len(r.Tree))
	}
	for _, e := range r.Manifest.Files {
		data, ok := r.Tree[e.Path]
		if !ok {
			t.Errorf("%s: manifest lists %s, not in the tree", site, e.Path)
			continue
		}
		if e.Size != int64(len(data)) || e.SHA256 != sha(data) {
			t.Errorf("%s: %s: manifest size/hash wrong", site, e.Path)
		}
		switch e.Class {
		case manifest.Immutable, manifest.Page, manifest.Static:
		default:
			t.Errorf("%s: %s: class %q", site, e.Path, e.Class)
		}
		if e.ContentType == "" || len(e.Keys) < 3 {
			t.Errorf("%s: %s: content type %q keys %v", site, e.Path, e.ContentType, e.Keys)
		}
		if strings.HasPrefix(filepath.Base(e.Path), ".") {
			t.Errorf("%s: dotfile %s in the manifest", site, e.Path)
		}
	}
}

// TestWriteSwap checks the written tree matches the manifest and that a rebuild swaps in
// a complete new tree (removed pages disappear; no temporary folders remain).
func TestWriteSwap(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, goodSite())
	writeFiles(t, dir, map[string]string{"sites/x/content/gone.md": "---\ntitle: Gone\n---\nx\n", "sites/x/static/.env": "SECRET=1\n", "sites/x/static/notes.txt~": "backup\n"})
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(context.Background(), "x", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Read(filepath.Join(res.Dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Files {
		b, err := os.ReadFile(filepath.Join(res.Dir, filepath.FromSlash(e.Path)))
		if err != nil || sha(b) != e.SHA256 {
			t.Errorf("%s: on disk does not match the manifest (%v)", e.Path, err)
		}
	}
	for _, bad := range []string{".env", "notes.txt~"} {
		if _, err := os.Stat(filepath.Join(res.Dir, bad)); err == nil {
			t.Errorf("%s was copied into the output", bad)
		}
	}
	if err := os.Remove(filepath.Join(dir, "sites/x/content/gone.md")); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Build(context.Background(), "x", Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "gone/index.html")); !os.IsNotExist(err) {
		t.Errorf("a removed page is still in the output: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "public", ".stump-tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary folders left: %v", left)
	}
}
