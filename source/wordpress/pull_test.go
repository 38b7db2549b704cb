package wordpress

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/testenv"
)

// seedPHP creates the content of the main tests through WordPress's own API: a
// category, tags, an image attachment (a real PNG in uploads, with its sizes), a post
// using it (caption and featured image), a page with a child, a custom post type
// "event" (in REST), a scheduled post, a draft, and a hostile post.
const seedPHP = `
register_post_type('event', ['public' => true, 'show_in_rest' => true, 'rest_base' => 'events', 'label' => 'Events']);
$cat = wp_insert_term('Rallies', 'category')['term_id'];
// A 2x2 PNG: an image WordPress can make sizes of is not needed for srcset here.
$png = base64_decode('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==');
$up = wp_upload_bits('crowd.png', null, $png);
$att = wp_insert_attachment(['post_mime_type' => 'image/png', 'post_title' => 'Crowd', 'post_status' => 'inherit'], $up['file']);
update_post_meta($att, '_wp_attachment_image_alt', 'A crowd');
wp_update_attachment_metadata($att, ['width' => 2, 'height' => 2, 'file' => substr($up['file'], strlen(wp_upload_dir()['basedir']) + 1), 'sizes' => []]);
$img = wp_get_attachment_url($att);
$p1 = wp_insert_post(['post_title' => 'Rally downtown', 'post_name' => 'rally-downtown', 'post_status' => 'publish',
  'post_excerpt' => 'We met *downtown*.', 'post_category' => [$cat], 'tags_input' => ['economy', 'jobs'],
  'post_content' => "<p>Thousands came.</p>\n\n[caption id=\"attachment_$att\" align=\"alignleft\" width=\"2\"]<img src=\"$img\" alt=\"A crowd\" width=\"2\" height=\"2\" /> The crowd[/caption]\n\n<pre>line one\n\nline three</pre>\n\n[unknown_thing foo=\"bar\"]\n\n<p>Gone: <img src=\"" . content_url('/uploads/missing.png') . "\" alt=\"missing\"></p>"], true);
set_post_thumbnail($p1, $att);
$about = wp_insert_post(['post_title' => 'About', 'post_name' => 'about', 'post_type' => 'page', 'post_status' => 'publish', 'post_content' => '<p>About us.</p>'], true);
wp_insert_post(['post_title' => 'Team', 'post_name' => 'team', 'post_type' => 'page', 'post_parent' => $about, 'post_status' => 'publish', 'post_content' => '<p>The team.</p>'], true);
wp_insert_post(['post_title' => 'Town hall', 'post_name' => 'town-hall', 'post_type' => 'event', 'post_status' => 'publish', 'post_content' => '<p>Tuesday.</p>'], true);
$when = gmdate('Y-m-d H:i:s', time() + 7200);
wp_insert_post(['post_title' => 'Later', 'post_name' => 'later', 'post_status' => 'future', 'post_date_gmt' => $when, 'post_date' => $when, 'post_content' => '<p>Soon.</p>'], true);
wp_insert_post(['post_title' => 'Secret draft', 'post_name' => 'secret-draft', 'post_status' => 'draft', 'post_content' => '<p>Not yet.</p>'], true);
kses_remove_filters();
wp_insert_post(['post_title' => 'Hostile', 'post_name' => 'hostile', 'post_status' => 'publish',
  'post_content' => '<p onclick="steal()">Hi<script>alert(1)</script></p><a href="javascript:alert(2)">click</a><iframe src="https://evil.example/x"></iframe><iframe src="https://www.youtube.com/embed/abc"></iframe><img src="x" onerror="alert(3)">'], true);
wp_delete_post(1, true); // the Hello world post
echo "ok\n";
`

// eventsPlugin registers the custom post type in every request (a must-use plugin).
const eventsPlugin = `<?php
add_action('init', function () {
	register_post_type('event', ['public' => true, 'show_in_rest' => true, 'rest_base' => 'events', 'label' => 'Events']);
});
`

// seededWordPress starts a WordPress with the content of seedPHP.
func seededWordPress(t *testing.T) *testenv.WP {
	t.Helper()
	wp := testenv.WordPress(t)
	if err := os.WriteFile(filepath.Join(wp.Dir, "wp-content", "mu-plugins", "events.php"), []byte(eventsPlugin), 0o644); err != nil {
		t.Fatal(err)
	}
	wp.PHP(t, seedPHP)
	return wp
}

func pullOptions(wp *testenv.WP, siteDir string) Options {
	return Options{
		SiteDir: siteDir, BasePath: "/", Password: wp.Password, CacheDir: filepath.Join(siteDir, "..", "cache"),
		Config:    config.WordPress{URL: wp.URL, User: wp.User, Section: "news", Types: []string{"posts", "pages", "events"}},
		RetryWait: 10 * time.Millisecond,
	}
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func TestPullSmoke(t *testing.T) {
	wp := seededWordPress(t)
	site := filepath.Join(t.TempDir(), "site")
	rep, err := Pull(context.Background(), pullOptions(wp, site))
	if err != nil {
		t.Fatal(err)
	}
	tree := readTree(t, site)
	t.Logf("report: %+v", rep)
	for _, k := range keys(tree) {
		if strings.HasSuffix(k, ".md") {
			t.Logf("== %s\n%s", k, tree[k])
		} else {
			t.Logf("== %s (%d bytes)", k, len(tree[k]))
		}
	}
}
