package wordpress

import (
	"context"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestImportWXR exports the seeded WordPress with its own exporter (export_wp) and
// imports the file: the same pages at the same URLs as a pull, the raw content's
// shortcodes rendered ([caption] became a figure), paragraphs made from blank lines, the
// image downloaded, the draft and the hostile markup left out.
func TestImportWXR(t *testing.T) {
	wp := seededWordPress(t)
	xml := wp.PHP(t, `require_once ABSPATH . 'wp-admin/includes/export.php'; export_wp(['content' => 'all']);`)
	if !strings.Contains(xml, "<wp:wxr_version>") {
		t.Fatalf("export_wp wrote no WXR:\n%.500s", xml)
	}
	ctx := context.Background()
	pulled := filepath.Join(t.TempDir(), "sites", "pulled")
	if _, err := Pull(ctx, pullOptions(wp, pulled)); err != nil {
		t.Fatal(err)
	}
	imported := filepath.Join(t.TempDir(), "sites", "imported")
	o := pullOptions(wp, imported)
	rep, err := ImportWXR(ctx, strings.NewReader(xml), o)
	if err != nil {
		t.Fatal(err)
	}
	urls := func(tree map[string]string) []string {
		var out []string
		re := regexp.MustCompile(`(?m)^url: (.*)$`)
		for k, v := range tree {
			if strings.HasSuffix(k, "index.md") {
				out = append(out, k+" "+re.FindStringSubmatch(v)[1])
			}
		}
		sort.Strings(out)
		return out
	}
	a, b := readTree(t, pulled), readTree(t, imported)
	if got, want := strings.Join(urls(b), "\n"), strings.Join(urls(a), "\n"); got != want {
		t.Errorf("imported pages:\n%s\nwant (as pulled):\n%s", got, want)
	}
	rally := b["content/news/rally-downtown/index.md"]
	mustContain(t, "imported rally", rally, `<figure class="wp-caption alignleft" id="attachment_4">`,
		`<figcaption class="wp-caption-text">The crowd</figcaption>`, "<p>Thousands came.</p>", "- Rallies", "- economy", "featured_image:")
	// The images: the same files as pulled (the WXR names the full size; the smaller
	// size comes only with the REST API's srcset).
	for k, v := range b {
		if strings.HasSuffix(k, ".png") && a[k] != v {
			t.Errorf("%s was not imported as pulled", k)
		}
	}
	if firstPNG(b) == "" {
		t.Errorf("no image imported")
	}
	mustNotContain(t, "imported hostile", b["content/news/hostile/index.md"], "<script", "onclick", "javascript:", "evil.example")
	mustContain(t, "warnings", warningsText(rep), "unknown shortcode [unknown_thing]", `"Hostile": sanitizer removed`)
}
