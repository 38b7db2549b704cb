package importer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTest(t *testing.T, dir string, files map[string]string) {
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

// TestDestination checks that import refuses a folder it did not make and a destination
// inside the source, and replaces its own earlier import.
func TestDestination(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTest(t, src, map[string]string{"_config.yml": "title: T\n", "_posts/2020-01-02-a.md": "---\ntitle: A\n---\nA.\n"})
	ctx := context.Background()
	other := filepath.Join(dir, "mine")
	writeTest(t, other, map[string]string{"site.yaml": "title: mine\n"})
	if _, err := Import(ctx, Jekyll, src, other); err == nil || !strings.Contains(err.Error(), "was not made by stump import") {
		t.Errorf("import over a hand-made site: %v", err)
	}
	if _, err := Import(ctx, Jekyll, src, filepath.Join(src, "out")); err == nil || !strings.Contains(err.Error(), "inside the source") {
		t.Errorf("import into the source: %v", err)
	}
	dst := filepath.Join(dir, "site")
	if _, err := Import(ctx, Jekyll, src, dst); err != nil {
		t.Fatal(err)
	}
	writeTest(t, dst, map[string]string{"content/stale.md": "x"})
	if _, err := Import(ctx, Jekyll, src, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "content/stale.md")); !os.IsNotExist(err) {
		t.Errorf("a second import kept a file the source does not make: %v", err)
	}
	if _, err := Import(ctx, "wordpress", src, dst); err == nil {
		t.Errorf("unknown kind accepted")
	}
}

// TestLiquid checks the rewrites of template expressions, and that code is left alone.
func TestLiquid(t *testing.T) {
	s := newSite()
	l := &liquid{s: s, file: "p.md", basePath: "/blog", siteURL: "https://x.example",
		vars:    map[string]string{"site.title": "X", "site.baseurl": "/blog"},
		link:    func(p string) (string, bool) { return "/blog/about/", p == "about.md" },
		postURL: func(n string) (string, bool) { return "/blog/2020/a/", n == "2020-01-02-a" },
		include: func(name string, args []arg, _ string, _ int) string { return "{{< " + name + " >}}" }}
	in := strings.Join([]string{
		`A {{ "/x/" | relative_url }} B {{ '/y/' | absolute_url }} C {{ site.baseurl }}/z {{ site.title }}`,
		`{% link about.md %} {% post_url 2020-01-02-a %} {% include note.html %}`,
		"`{{ kept }}` {% comment %}gone{% endcomment %}x {% youtube \"abc\" %}",
		"```",
		`{% raw %}{{ kept }}{% endraw %}`,
		"```",
		`{% if x %}y{% endif %} {{ page.unknown }}`,
	}, "\n")
	want := strings.Join([]string{
		`A /blog/x/ B https://x.example/blog/y/ C /blog/z X`,
		`/blog/about/ /blog/2020/a/ {{< note.html >}}`,
		"`{{ kept }}` x {{< youtube \"abc\" >}}",
		"```",
		`{{ kept }}`,
		"```",
		`y `,
	}, "\n")
	if got := l.rewrite(in, 5); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	var notes []string
	for _, n := range s.notes {
		notes = append(notes, n.String())
	}
	if len(notes) != 3 || !strings.HasPrefix(notes[0], "p.md:11: template tag {% if x %}") || !strings.HasPrefix(notes[2], "p.md:11: template expression {{ page.unknown }}") {
		t.Errorf("notes = %q", notes)
	}
}
