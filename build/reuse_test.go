package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildSkippedOnlyWhenNothingChanged: with Options.Version a build whose inputs,
// version and options are those of the last build into the folder, which still holds
// that build, is skipped; any change to an input, an option, the version, the output
// folder or the clock passing a page's publish or expiry date builds again.
func TestBuildSkippedOnlyWhenNothingChanged(t *testing.T) {
	dir := t.TempDir()
	files := writeSite()
	files["sites/x/content/news/later.md"] = "---\ntitle: Later\ndate: 2026-01-02\npublishDate: 2026-06-01T20:00:00Z\n---\nDue on election night.\n"
	files["sites/x/content/news/brief.md"] = "---\ntitle: Brief\ndate: 2026-01-02\nexpiryDate: 2026-07-01T00:00:00Z\n---\nGone in July.\n"
	writeFiles(t, dir, files)
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := ws.OutDir("x")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Now: t0, Version: "v1"}
	build := func(what string, o Options, wantReused bool) *Result {
		t.Helper()
		res, err := ws.Build(context.Background(), "x", o)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Reused != wantReused {
			t.Fatalf("%s: reused %v, want %v", what, res.Reused, wantReused)
		}
		return res
	}
	first := build("first build", opts, false)
	if want := time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC); !first.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil %v, want the future page's publishDate %v", first.ValidUntil, want)
	}
	before := snapshot(t, out)
	again := build("nothing changed", opts, true)
	if again.Files != first.Files || again.Pages != first.Pages || again.Manifest == nil || len(again.Manifest.Files) != first.Files {
		t.Fatalf("reused result %d files %d pages, first %d files %d pages", again.Files, again.Pages, first.Files, first.Pages)
	}
	snapshot(t, out).equal(t, before, "after a skipped build")

	build("another version", Options{Now: t0, Version: "v2"}, false)
	build("same again", Options{Now: t0, Version: "v2"}, true)
	build("drafts", Options{Now: t0, Version: "v2", Drafts: true}, false)
	build("no drafts", Options{Now: t0, Version: "v2"}, false)
	build("no drafts again", Options{Now: t0, Version: "v2"}, true)

	// An input changes.
	p := filepath.Join(dir, "sites/x/content/news/b.md")
	if err := os.WriteFile(p, []byte("---\ntitle: B\ndate: 2026-01-03\n---\nBody of B, edited.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build("content edited", Options{Now: t0, Version: "v2"}, false)
	build("content edited, again", Options{Now: t0, Version: "v2"}, true)

	// The output folder is tampered with: a file of the same size, rewritten; a file deleted.
	page := filepath.Join(out, "news/b/index.html")
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a modification time after the manifest's
	if err := os.WriteFile(page, []byte(string(make([]byte, len(b)))), 0o644); err != nil {
		t.Fatal(err)
	}
	build("an output file rewritten", Options{Now: t0, Version: "v2"}, false)
	if got, _ := os.ReadFile(page); string(got) != string(b) {
		t.Fatal("the rebuild did not put the page back")
	}
	if err := os.Remove(page); err != nil {
		t.Fatal(err)
	}
	build("an output file deleted", Options{Now: t0, Version: "v2"}, false)
	if _, err := os.Stat(page); err != nil {
		t.Fatal("the rebuild did not put the page back")
	}

	// The clock reaches the future page's date: it must appear.
	due := time.Date(2026, 6, 1, 20, 0, 1, 0, time.UTC)
	res := build("the future page is due", Options{Now: due, Version: "v2"}, false)
	if _, ok := res.Manifest.Lookup("news/later/index.html"); !ok {
		t.Fatal("the page due on June 1 is not in the build made after it")
	}
	if want := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC); !res.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil %v, want the expiry %v", res.ValidUntil, want)
	}
	build("before the expiry", Options{Now: due.Add(time.Hour), Version: "v2"}, true)
	res = build("after the expiry", Options{Now: time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC), Version: "v2"}, false)
	if _, ok := res.Manifest.Lookup("news/brief/index.html"); ok {
		t.Fatal("the page that expired on July 1 is still in the build made after it")
	}
	if !res.ValidUntil.IsZero() {
		t.Fatalf("ValidUntil %v with no page dated in the future", res.ValidUntil)
	}
	build("no version: always builds", Options{Now: t0}, false)
}

// TestMarkdownCache: with Options.Version, rendered Markdown is kept between builds
// (.stump/cache/markdown/<site>.gob); a build that finds it writes the same bytes as
// an uncached build; shortcode templates still run (the cache holds placeholders); an
// edited body renders again; another version ignores the cache.
func TestMarkdownCache(t *testing.T) {
	dir := t.TempDir()
	files := writeSite()
	files["sites/x/content/news/sc.md"] = "---\ntitle: SC\ndate: 2026-01-02\n---\nBefore {{< note >}}inside{{< /note >}} after.\n"
	files["sites/x/layouts/shortcodes/note.html"] = `<b>{{ .Inner }}</b>`
	writeFiles(t, dir, files)
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := ws.OutDir("x")
	opts := Options{Now: now, Version: "v1", Force: true}
	build := func(o Options) {
		t.Helper()
		if _, err := ws.Build(context.Background(), "x", o); err != nil {
			t.Fatal(err)
		}
	}
	build(opts)
	cacheFile := filepath.Join(dir, ".stump", "cache", "markdown", "x.gob")
	st, err := os.Stat(cacheFile)
	if err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	first := snapshot(t, out)
	uncached := t.TempDir()
	build(Options{Now: now, OutDir: uncached})
	snapshot(t, uncached).equal(t, first, "an uncached build beside the cached one")

	// Every body is found: the same output, the file not rewritten.
	time.Sleep(10 * time.Millisecond)
	build(opts)
	snapshot(t, out).equal(t, first, "a build from the cache")
	if st2, _ := os.Stat(cacheFile); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("a build that found every body in the cache rewrote it")
	}

	// The shortcode's template changes: the cached body's placeholder runs it.
	writeFiles(t, dir, map[string]string{"sites/x/layouts/shortcodes/note.html": `<aside>{{ .Inner }}</aside>`})
	build(opts)
	if b, _ := os.ReadFile(filepath.Join(out, "news/sc/index.html")); !strings.Contains(string(b), "<aside>inside</aside>") {
		t.Fatalf("the edited shortcode template is not used:\n%s", b)
	}
	// An edited body renders again.
	writeFiles(t, dir, map[string]string{"sites/x/content/news/b.md": "---\ntitle: B\ndate: 2026-01-03\n---\nBody of B, *edited*.\n"})
	build(opts)
	if b, _ := os.ReadFile(filepath.Join(out, "news/b/index.html")); !strings.Contains(string(b), "<em>edited</em>") {
		t.Fatalf("edited page not rendered again:\n%s", b)
	}
	// The cache holds what the last build used, under the salt of its version.
	c := openMDCache(dir, "x", ws.mdSaltFor(t, "x", "v1"))
	md := 0
	for p := range files {
		if strings.HasPrefix(p, "sites/x/content/") && strings.HasSuffix(p, ".md") {
			md++
		}
	}
	if len(c.old) == 0 || len(c.old) > md {
		t.Fatalf("cache of %d entries after a build of %d Markdown files (the edited body's old render must be gone)", len(c.old), md)
	}
	if other := openMDCache(dir, "x", ws.mdSaltFor(t, "x", "v2")); len(other.old) != 0 {
		t.Fatal("another version read the cache")
	}
}

// mdSaltFor is the Markdown cache salt of site at version v.
func (w *Workspace) mdSaltFor(t *testing.T, site, v string) string {
	t.Helper()
	st, ls, err := w.load(context.Background(), site, Options{Now: now, Version: v})
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	return st.mdSalt(ls)
}

// TestMarkdownCacheKeptOnFailedBuild: the cache file is written while pages render but
// put in place only when the build succeeds: a build that fails at its last step leaves
// the file as it was and no temporary file beside it; the same build without the fault
// replaces it.
func TestMarkdownCacheKeptOnFailedBuild(t *testing.T) {
	dir, ws := openSite(t, writeSite())
	opts := Options{Now: now, Version: "v1"}
	if _, err := ws.Build(context.Background(), "x", opts); err != nil {
		t.Fatal(err)
	}
	cacheFile := filepath.Join(dir, ".stump", "cache", "markdown", "x.gob")
	before, err := os.ReadFile(cacheFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"sites/x/content/news/b.md": "---\ntitle: B\ndate: 2026-01-03\n---\nBody of B, *edited*.\n"})
	boom := failManifestWrite(t)
	if _, err := ws.Build(context.Background(), "x", opts); !errors.Is(err, boom) {
		t.Fatalf("build error %v, want the injected one", err)
	}
	if after, _ := os.ReadFile(cacheFile); !bytes.Equal(after, before) {
		t.Error("a failed build changed the Markdown cache")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cacheFile), ".tmp-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	journalFault = nil
	if _, err := ws.Build(context.Background(), "x", opts); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cacheFile); bytes.Equal(after, before) {
		t.Error("the build that succeeded did not save the edited page's render")
	}
}

// TestBuildRendersWhatItFingerprinted: the Markdown a build's fingerprint read is what
// it renders (each file is read once). A page edited between the fingerprint and the
// loading shows its old text, which is what the build's record describes; the next
// build sees the edit and renders it.
func TestBuildRendersWhatItFingerprinted(t *testing.T) {
	dir, ws := openSite(t, writeSite())
	opts := Options{Now: now, Version: "v1"}
	page := filepath.Join(ws.OutDir("x"), "news", "b", "index.html")
	fingerprinted = func() {
		writeFiles(t, dir, map[string]string{"sites/x/content/news/b.md": "---\ntitle: B\ndate: 2026-01-03\n---\nEdited while the build ran.\n"})
	}
	t.Cleanup(func() { fingerprinted = nil })
	if _, err := ws.Build(context.Background(), "x", opts); err != nil {
		t.Fatal(err)
	}
	fingerprinted = nil
	if b, _ := os.ReadFile(page); strings.Contains(string(b), "Edited while") || !strings.Contains(string(b), "Body of B") {
		t.Fatalf("the build did not render the text its fingerprint read:\n%s", b)
	}
	res, err := ws.Build(context.Background(), "x", opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(page); res.Reused || !strings.Contains(string(b), "Edited while") {
		t.Fatalf("the next build (reused %v) did not render the edit:\n%s", res.Reused, b)
	}
}
