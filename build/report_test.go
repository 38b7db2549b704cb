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
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], `sites/c/content/posts/dated.md:7:9: layout "post" does not exist; 2 pages use`) {
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
