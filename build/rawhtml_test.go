package build

import (
	"context"
	"strings"
	"testing"
)

// TestRawHTMLFrontMatter checks the per-page opt-in to raw HTML: a page with
// rawHTML: true keeps its HTML (what `stump wordpress pull` writes, already sanitized),
// the same body without it loses the HTML as markdown.unsafe: false says, and a value
// that is not a boolean is an error at its line.
func TestRawHTMLFrontMatter(t *testing.T) {
	dir := t.TempDir()
	body := "<figure class=\"wp\"><img src=\"a.png\" alt=\"A\"><figcaption>Cap</figcaption></figure>\n"
	writeFiles(t, dir, map[string]string{
		"stump.yaml":                  "output: public\n",
		"sites/s/site.yaml":           "title: S\n",
		"sites/s/content/raw.md":      "---\ntitle: Raw\nrawHTML: true\n---\n" + body,
		"sites/s/content/plain.md":    "---\ntitle: Plain\n---\n" + body,
		"sites/bad/site.yaml":         "title: Bad\n",
		"sites/bad/content/bad.md":    "---\ntitle: Bad\nrawHTML: yes please\n---\nx\n",
		"sites/bad/content/_index.md": "---\ntitle: Home\n---\n",
		"sites/s/content/_index.md":   "---\ntitle: Home\n---\n",
	})
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(context.Background(), "s", Options{NoWrite: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	raw, plain := string(res.Tree["raw/index.html"]), string(res.Tree["plain/index.html"])
	if !strings.Contains(raw, `<figcaption>Cap</figcaption>`) {
		t.Errorf("rawHTML: true lost its HTML:\n%s", raw)
	}
	if strings.Contains(plain, `<figcaption>`) || !strings.Contains(plain, "raw HTML omitted") {
		t.Errorf("a page without rawHTML passed raw HTML through:\n%s", plain)
	}
	_, err = ws.Build(context.Background(), "bad", Options{NoWrite: true, Now: now})
	if err == nil || !strings.Contains(err.Error(), "bad.md:3:") || !strings.Contains(err.Error(), "rawHTML must be true or false") {
		t.Errorf("rawHTML: yes please: %v", err)
	}
}
