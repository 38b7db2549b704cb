package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/manifest"
)

// writeFiles writes a map of slash paths to contents under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goodSite is a minimal workspace that builds with the built-in theme.
func goodSite() map[string]string {
	return map[string]string{
		"stump.yaml":                           "output: public\n",
		"sites/x/site.yaml":                    "title: X\nbaseURL: https://x.example.org/\n",
		"sites/x/content/_index.md":            "---\ntitle: Home\n---\nHello.\n",
		"sites/x/content/news/a.md":            "---\ntitle: A\ndate: 2026-01-02\ntags: [one]\n---\nBody of A.\n",
		"sites/x/layouts/_default/single.html": `{{ define "main" }}<h1>{{ .Title }}</h1>{{ .Content }}{{ end }}`,
	}
}

var now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// TestBadInput checks that each kind of bad input fails with a positioned message and
// leaves the previous output exactly as it was.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string // written over the good site
		setup func(t *testing.T, dir string)
		want  string // regexp the error must match
	}{
		{"broken front matter", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\ntags: [one\n---\nx\n"},
			nil, `^sites/x/content/news/a\.md:3:\d+: `},
		{"unterminated front matter", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n"},
			nil, `^sites/x/content/news/a\.md:1:1: front matter opened with "---" is never closed`},
		{"bad date", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\ndate: 2026-13-45\n---\nx\n"},
			nil, `^sites/x/content/news/a\.md:3:7: date "2026-13-45" is not a date`},
		{"bad TOML date type", map[string]string{"sites/x/content/news/a.md": "+++\ntitle = \"A\"\ndate = [1]\n+++\nx\n"},
			nil, `^sites/x/content/news/a\.md:3:8: date must be a date`},
		{"template exec error", map[string]string{"sites/x/layouts/_default/single.html": "{{ define \"main\" }}\n<p>{{ .Nope }}</p>{{ end }}"},
			nil, `^sites/x/layouts/_default/single\.html:2:7: can't evaluate field Nope`},
		{"template parse error", map[string]string{"sites/x/layouts/_default/single.html": "{{ define \"main\" }}\n\n{{ if }}{{ end }}"},
			nil, `^sites/x/layouts/_default/single\.html:3:1: missing value for if`},
		{"missing theme", map[string]string{"sites/x/site.yaml": "title: X\ntheme: nope\n"},
			nil, `^sites/x/site\.yaml:2:8: theme "nope" does not exist`},
		{"unknown config key", map[string]string{"sites/x/site.yaml": "title: X\ntitel: Y\n"},
			nil, `^sites/x/site\.yaml:2:1: unknown key "titel"`},
		{"wrong config type", map[string]string{"sites/x/site.yaml": "title: X\npaginate: many\n"},
			nil, `^sites/x/site\.yaml:2:11: wrong type`},
		{"url leaves output", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\nurl: ../../etc/passwd\n---\nx\n"},
			nil, `^sites/x/content/news/a\.md:3:6: url "\.\./\.\./etc/passwd" tries to leave the site's output folder`},
		{"slug with slash", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\nslug: a/b\n---\nx\n"},
			nil, `^sites/x/content/news/a\.md:3:7: slug "a/b" must be one path segment`},
		{"symlink escapes", nil, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "secret.md"), []byte("---\ntitle: S\n---\nsecret\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../../../secret.md", filepath.Join(dir, "sites/x/content/news/leak.md")); err != nil {
				t.Fatal(err)
			}
		}, `^sites/x/content/news/leak\.md: is a symlink that points outside the site folder`},
		{"two pages one url", map[string]string{"sites/x/content/news/b.md": "---\ntitle: B\nurl: /news/a/\n---\nx\n"},
			nil, `writes /news/a/index\.html, which .* also writes`},
		{"bad data file", map[string]string{"sites/x/data/people.json": "{\n  \"a\": ,\n}"},
			nil, `^sites/x/data/people\.json:2:\d+: JSON: `},
		{"unknown permalink token", map[string]string{"sites/x/site.yaml": "title: X\npermalinks:\n  news: /:yaer/:slug/\n"},
			nil, `^sites/x/site\.yaml:3:9: permalink pattern "/:yaer/:slug/" for news: unknown token :yaer`},
		{"unknown shortcode", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n---\nText.\n\n{{< nosuch 1 >}}\n"},
			nil, `^sites/x/content/news/a\.md:6:1: shortcode "nosuch": unknown shortcode`},
		{"unclosed shortcode", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n---\n{{< details summary=\"x\" >}}\nbody\n"},
			nil, `^sites/x/content/news/a\.md:4:1: shortcode "details": never closed`},
		{"bad shortcode argument", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n---\nSee {{< figure src=\"a.jpg >}}\n"},
			nil, `^sites/x/content/news/a\.md:4:20: shortcode "figure": a quoted argument is never closed`},
		{"shortcode missing argument", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n---\nx\n\n  {{< youtube >}}\n"},
			nil, `^sites/x/content/news/a\.md:6:3: shortcode "youtube": youtube needs a video id`},
		{"ref to a missing page", map[string]string{"sites/x/content/news/a.md": "---\ntitle: A\n---\nSee [b]({{< ref \"news/nope\" >}}).\n"},
			nil, `^sites/x/content/news/a\.md:4:9: shortcode "ref": ref "news/nope": no such page`},
		{"shortcode template error", map[string]string{"sites/x/layouts/shortcodes/box.html": "<div>\n{{ .Nope }}</div>", "sites/x/content/news/a.md": "---\ntitle: A\n---\n{{< box >}}\n"},
			nil, `^sites/x/content/news/a\.md:4:1: shortcode "box": can't evaluate field Nope .*\(in sites/x/layouts/shortcodes/box\.html:2\)`},
		{"missing asset", map[string]string{"sites/x/layouts/_default/single.html": "{{ define \"main\" }}{{ (asset \"css/none.css\").RelPermalink }}{{ end }}"},
			nil, `asset "css/none\.css" not found`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, goodSite())
			ws, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ws.Build(context.Background(), "x", Options{Now: now})
			if err != nil {
				t.Fatalf("good build: %v", err)
			}
			before, err := os.ReadFile(filepath.Join(res.Dir, manifest.FileName))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := os.ReadFile(filepath.Join(res.Dir, "news/a/index.html"))
			writeFiles(t, dir, c.files)
			if c.setup != nil {
				c.setup(t, dir)
			}
			ws, err = Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ws.Build(context.Background(), "x", Options{Now: now})
			if err == nil {
				t.Fatal("bad input built without error")
			}
			if !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Errorf("error\n  %v\ndoes not match\n  %s", err, c.want)
			}
			var d *diag.Error
			if !errors.As(err, &d) {
				t.Errorf("error %T is not a *diag.Error", err)
			}
			after, err := os.ReadFile(filepath.Join(res.Dir, manifest.FileName))
			if err != nil || string(after) != string(before) {
				t.Errorf("manifest changed after a failed build")
			}
			page2, _ := os.ReadFile(filepath.Join(res.Dir, "news/a/index.html"))
			if string(page2) != string(page) {
				t.Errorf("page changed after a failed build")
			}
			left, _ := filepath.Glob(filepath.Join(dir, "public", ".stump-tmp-*"))
			if len(left) > 0 {
				t.Errorf("temporary folders left behind: %v", left)
			}
		})
	}
}

func TestMissingSite(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, goodSite())
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ws.Build(context.Background(), "ghost", Options{Now: now})
	if err == nil || !regexp.MustCompile(`^sites/ghost: site "ghost" does not exist; sites here: x$`).MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "public")); !os.IsNotExist(err) {
		t.Errorf("a failed build created output: %v", err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
