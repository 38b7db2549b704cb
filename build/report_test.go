package build

import (
	"context"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestCompatReport builds the compat golden workspace and checks what its report says:
// the expired page counted, one warning for the missing layout naming its page, and the
// headless bundle's page and files not published.
func TestCompatReport(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/render/compat.txtar")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range ar.Files {
		if !strings.HasPrefix(f.Name, "want/") {
			files[f.Name] = string(f.Data)
		}
	}
	files["sites/c/content/posts/draft.md"] = "---\ntitle: D\ndraft: true\n---\n"
	files["sites/c/content/posts/later.md"] = "---\ntitle: L\ndate: 2099-01-01\n---\n"
	files["sites/c/content/posts/other-post.md"] = "---\ntitle: O\nlayout: post\ndate: 2010-01-01\n---\n<b>raw</b>\n"
	dir := t.TempDir()
	writeFiles(t, dir, files)
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(context.Background(), "c", Options{NoWrite: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	if r.Drafts != 1 || r.Future != 1 || r.Expired != 1 || r.RawHTML != 1 {
		t.Errorf("counts = drafts %d future %d expired %d raw %d, want 1 1 1 1", r.Drafts, r.Future, r.Expired, r.RawHTML)
	}
	// The layout fallback, and the link check (on by default, as warnings): about links
	// to the headless page shared, which is not written (and so does the list that
	// shows about's summary).
	layout, link := false, false
	for _, w := range r.Warnings {
		layout = layout || strings.HasPrefix(w, `sites/c/content/posts/dated.md:7:9: layout "post" does not exist; 2 pages use`)
		link = link || w == "sites/c/content/pages/about.md: links to /shared/, but no page or file is built there"
		if !strings.Contains(w, "layout") && !strings.Contains(w, "links to /shared/") {
			t.Errorf("unexpected warning %q", w)
		}
	}
	if !layout || !link {
		t.Errorf("warnings = %q", r.Warnings)
	}
	for p := range res.Tree {
		if strings.HasPrefix(p, "shared/") || strings.Contains(p, "hidden") {
			t.Errorf("%s published; headless and render: never pages write nothing", p)
		}
	}
	if !strings.Contains(string(res.Tree["pages/about.html"]), `href="/shared/"`) {
		t.Errorf("relref to the headless bundle did not resolve")
	}
}

// TestHygiene checks that files of other generators under content/ are skipped and
// reported, HTML with front matter becomes a page, resources are copied, and template
// syntax left in a page is a warning naming its line (an error with Strict).
func TestHygiene(t *testing.T) {
	files := goodSite()
	files["sites/x/content/news/feed.liquid"] = "{% for p in site.posts %}{% endfor %}\n"
	files["sites/x/content/news/list.njk"] = "---\ntitle: L\n---\n{{ x }}\n"
	files["sites/x/content/news/news.11tydata.js"] = "module.exports = {};\n"
	files["sites/x/content/news/page.html"] = "---\ntitle: HTML page\n---\n<div class=\"raw\">kept</div>\n"
	files["sites/x/content/verify.html"] = "google-site-verification: x\n"
	files["sites/x/content/news/photo.jpg"] = "jpeg"
	files["sites/x/content/news/leak.md"] = "---\ntitle: Leak\n---\nFine `{{ code }}` here.\n\n```\n{% raw %}\n```\n\nLink to {{ site.baseurl }}/x.\n"
	dir := t.TempDir()
	writeFiles(t, dir, files)
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(context.Background(), "x", Options{NoWrite: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, s := range res.Report.Skipped {
		skipped = append(skipped, s.File+": "+s.Reason)
	}
	want := []string{
		"sites/x/content/news/feed.liquid: a Liquid template",
		"sites/x/content/news/list.njk: a Nunjucks template",
		"sites/x/content/news/news.11tydata.js: an Eleventy data or template file",
	}
	if strings.Join(skipped, "\n") != strings.Join(want, "\n") {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(skipped, "\n"), strings.Join(want, "\n"))
	}
	for p := range res.Tree {
		if strings.Contains(p, "liquid") || strings.Contains(p, "njk") || strings.Contains(p, "11tydata") {
			t.Errorf("%s published", p)
		}
	}
	if !strings.Contains(string(res.Tree["news/page/index.html"]), `<div class="raw">kept</div>`) {
		t.Errorf("HTML content page not rendered with its body")
	}
	if res.Tree["verify.html"] == nil || res.Tree["news/photo.jpg"] == nil {
		t.Errorf("resources not copied")
	}
	if len(res.Report.Warnings) != 1 || res.Report.Warnings[0] != "sites/x/content/news/leak.md:10: template syntax ({{ or {%) reaches the page outside code" {
		t.Errorf("warnings = %q", res.Report.Warnings)
	}
	_, err = ws.Build(context.Background(), "x", Options{NoWrite: true, Now: now, Strict: true})
	if err == nil || !strings.HasPrefix(err.Error(), "sites/x/content/news/leak.md:10:9: template syntax") {
		t.Errorf("strict build: %v", err)
	}
}
