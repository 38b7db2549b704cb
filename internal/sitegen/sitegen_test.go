package sitegen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/themes"
)

// treeHash hashes every file's path and bytes under dir, in walk (lexical) order.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(filepath.ToSlash(rel) + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mdFiles returns the .md files under dir, relative to it.
func mdFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	opts := Options{Pages: 60, Seed: 7}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := Generate(d, opts); err != nil {
			t.Fatal(err)
		}
	}
	if ha, hb := treeHash(t, a), treeHash(t, b); ha != hb {
		t.Fatalf("same seed, different trees: %s vs %s", ha, hb)
	}
	opts.Seed = 8
	if err := Generate(c, opts); err != nil {
		t.Fatal(err)
	}
	if treeHash(t, a) == treeHash(t, c) {
		t.Fatal("seeds 7 and 8 gave the same tree")
	}
}

func TestGenerateCounts(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, Options{Pages: 250, Sections: 5, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"stump.yaml", "sites/gen/site.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	content := filepath.Join(dir, "sites", "gen", "content")
	var pages, indexes int
	sections := map[string]bool{}
	for _, f := range mdFiles(t, content) {
		if strings.HasSuffix(f, "_index.md") {
			indexes++
			continue
		}
		pages++
		sections[strings.Split(f, "/")[0]] = true
	}
	if pages != 250 {
		t.Errorf("%d pages, want 250", pages)
	}
	if indexes != 1+5 {
		t.Errorf("%d _index.md files, want 6 (home and 5 sections)", indexes)
	}
	if len(sections) != 5 {
		t.Errorf("pages in %d sections, want 5", len(sections))
	}
}

var frontMatter = regexp.MustCompile(`(?s)\A---\ntitle: "[^"\n]+"\ndate: 202[2-4]-\d\d-\d\dT\d\d:\d\d:00Z\ntags: \[("[a-z-]+(-\d+)?"(, )?){1,5}\]\ncategories: \["[a-z]+"\]\n(summary: "[^"\n]+"\n)?draft: false\n---\n\n`)

func TestPageShape(t *testing.T) {
	files := contentFiles(mustDefaults(t, Options{Pages: 40, Seed: 3}))
	var tables, code, more int
	for _, f := range files {
		if strings.HasSuffix(f.Path, "_index.md") {
			continue
		}
		s := string(f.Data)
		loc := frontMatter.FindStringIndex(s)
		if loc == nil {
			t.Fatalf("%s: front matter does not match:\n%s", f.Path, s)
		}
		body := s[loc[1]:]
		if n := len(body); n < 600 || n > 1800 {
			t.Errorf("%s: body is %d bytes, want about 600–1500", f.Path, n)
		}
		if h := strings.Count(body, "\n## ") + strings.Count(body, "\n### "); h < 2 || h > 4 {
			t.Errorf("%s: %d headings, want 2–4", f.Path, h)
		}
		if !strings.Contains(body, "\n- ") {
			t.Errorf("%s: no bullet list", f.Path)
		}
		if strings.Contains(body, "| --- |") {
			tables++
		}
		if strings.Contains(body, "\n```") {
			code++
		}
		if strings.Contains(body, "<!--more-->") {
			more++
		}
	}
	if tables != 8 || code != 10 {
		t.Errorf("%d tables and %d code blocks in 40 pages, want 8 and 10", tables, code)
	}
	if more == 0 {
		t.Error("no page has <!--more-->")
	}
}

func TestGenerateHugoHasSameContent(t *testing.T) {
	opts := Options{Pages: 30, Seed: 5}
	stump, hugo := t.TempDir(), t.TempDir()
	if err := Generate(stump, opts); err != nil {
		t.Fatal(err)
	}
	if err := GenerateHugo(hugo, opts); err != nil {
		t.Fatal(err)
	}
	if a, b := treeHash(t, filepath.Join(stump, "sites", "gen", "content")), treeHash(t, filepath.Join(hugo, "content")); a != b {
		t.Fatal("stump and Hugo content differ")
	}
	for _, f := range []string{"hugo.yaml", "layouts/baseof.html", "layouts/single.html", "layouts/list.html", "layouts/taxonomy.html", "layouts/term.html", "layouts/home.html", "layouts/_partials/header.html"} {
		if _, err := os.Stat(filepath.Join(hugo, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestGenerateRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(dir, Options{Pages: 1}); err == nil {
		t.Fatal("Generate wrote into a non-empty folder")
	}
	if err := Generate(t.TempDir(), Options{Pages: -1}); err == nil {
		t.Fatal("Generate accepted -1 pages")
	}
}

func mustDefaults(t *testing.T, o Options) Options {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestHugoLayoutsMirrorTheme checks that every layout of the embedded campaign theme has
// its Hugo counterpart, so the benchmark's Hugo site keeps doing the same work.
func TestHugoLayoutsMirrorTheme(t *testing.T) {
	theme, ok := themes.Get("campaign")
	if !ok {
		t.Fatal("no embedded campaign theme")
	}
	err := fs.WalkDir(theme, "layouts", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "layouts/")
		hugo := strings.NewReplacer("_default/", "", "partials/", "_partials/").Replace(rel)
		if rel == "index.html" {
			hugo = "home.html"
		}
		if _, err := fs.Stat(hugoFiles, "hugo/layouts/"+hugo); err != nil {
			t.Errorf("theme layout %s has no Hugo counterpart hugo/layouts/%s", rel, hugo)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestShortcodesOnlyAddFigures checks that the Shortcodes option changes nothing but the
// added figure, so a benchmark of the two measures shortcodes alone, and that the site
// builds with them.
func TestShortcodesOnlyAddFigures(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := Generate(a, Options{Pages: 30, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if err := Generate(b, Options{Pages: 30, Seed: 3, Shortcodes: true}); err != nil {
		t.Fatal(err)
	}
	figure := regexp.MustCompile(`\n\{\{< figure [^\n]*>\}\}\n$`)
	n := 0
	err := filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(b, p)
		with, _ := os.ReadFile(p)
		without, err := os.ReadFile(filepath.Join(a, rel))
		if err != nil {
			return err
		}
		stripped := figure.ReplaceAll(with, nil)
		if !bytes.Equal(stripped, without) {
			t.Errorf("%s differs beyond its figure", rel)
		}
		if len(stripped) != len(with) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 30 {
		t.Errorf("%d pages have a figure, want 30", n)
	}
	ws, err := build.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(t.Context(), "gen", build.Options{NoWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for p, data := range res.Tree {
		if strings.HasSuffix(p, ".html") && bytes.Contains(data, []byte(`<figure><img src="/images/figure-`)) {
			found = true
			break
		}
	}
	if !found {
		t.Error("no page has the figure's output")
	}
}

// TestGenerateMany: n sites sharing a workspace copy of the theme, each with its own
// content, all building.
func TestGenerateMany(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateMany(dir, 3, Options{Pages: 5}); err != nil {
		t.Fatal(err)
	}
	ws, err := build.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sites, _ := ws.Sites()
	if !slices.Equal(sites, []string{"s001", "s002", "s003"}) {
		t.Fatalf("sites %v", sites)
	}
	if _, err := os.Stat(filepath.Join(dir, "themes", "campaign", "theme.yaml")); err != nil {
		t.Fatal("no workspace copy of the theme")
	}
	var firsts []string
	for _, r := range ws.BuildAll(context.Background(), sites, build.Options{NoWrite: true}) {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Site, r.Err)
		}
		firsts = append(firsts, r.Result.Manifest.Files[len(r.Result.Manifest.Files)/2].SHA256)
	}
	if firsts[0] == firsts[1] {
		t.Error("two sites have the same content")
	}
}
