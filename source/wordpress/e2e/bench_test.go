//go:build bench

package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchmark5000Posts measures a WordPress with 5,000 posts: seeding them through
// PHP, the first pull (time, requests), the first publish, a pull with one post edited
// (requests: a handful, not one per post) and the publish after it. Run it with
//
//	go test -tags bench -run TestBenchmark5000Posts -v ./source/wordpress/e2e/
//
// It prints the figures; it asserts only the request counts, which do not depend on
// the machine.
func TestBenchmark5000Posts(t *testing.T) {
	const n = 5000
	e := setup(t)
	start := time.Now()
	e.wp.PHP(t, `
wp_defer_term_counting(true);
$cats = [];
for ($c = 0; $c < 20; $c++) { $cats[] = wp_insert_term("Topic $c", 'category')['term_id']; }
for ($i = 0; $i < `+strconv.Itoa(n)+`; $i++) {
	wp_insert_post(['post_title' => "Post $i", 'post_name' => "post-$i", 'post_status' => 'publish',
		'post_category' => [$cats[$i % 20]], 'tags_input' => ["tag-" . ($i % 50)],
		'post_content' => str_repeat("<p>Paragraph of post $i with some words to make it a page of text.</p>\n\n", 8)]);
}
wp_defer_term_counting(false);
`)
	t.Logf("seeding %d posts through PHP: %s", n, time.Since(start).Round(time.Millisecond))

	type report struct {
		Requests int64    `json:"requests"`
		Fetched  int      `json:"fetched"`
		Written  []string `json:"written"`
	}
	pull := func(what string) report {
		start := time.Now()
		out := e.must("wordpress", "pull", "--site", "c", "--json")
		var r report
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Logf("%s: %s, %d requests, %d items fetched, %d files written", what, time.Since(start).Round(time.Millisecond), r.Requests, r.Fetched, len(r.Written))
		return r
	}
	publish := func(what string) {
		start := time.Now()
		out := e.must("publish", "--site", "c")
		t.Logf("%s: %s: %s", what, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	}
	first := pull("first pull")
	if first.Fetched < n {
		t.Errorf("the first pull fetched %d items, want %d", first.Fetched, n)
	}
	publish("first publish (pulls again: nothing changed)")
	e.wp.PHP(t, `$p = get_page_by_path('post-1234', OBJECT, 'post'); wp_update_post(['ID' => $p->ID, 'post_content' => '<p>Edited.</p>']);`)
	edit := pull("pull with one post edited")
	if len(edit.Written) != 1 || edit.Requests > 12 {
		t.Errorf("a pull with one post edited: %d requests, wrote %v; want a handful and one file", edit.Requests, edit.Written)
	}
	publish("publish after the edit")
}
