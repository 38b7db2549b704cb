package wordpress

import (
	"bytes"
	"context"
	stdpng "image/png"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
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
// A smaller size, as WordPress's image editor would have made it (no GD here).
$small = wp_upload_bits('crowd-1x1.png', null, base64_decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC'));
wp_update_attachment_metadata($att, ['width' => 2, 'height' => 2, 'file' => substr($up['file'], strlen(wp_upload_dir()['basedir']) + 1),
  'sizes' => ['tiny' => ['file' => basename($small['file']), 'width' => 1, 'height' => 1, 'mime-type' => 'image/png']]]);
$img = wp_get_attachment_url($att);
$p1 = wp_insert_post(['post_title' => 'Rally downtown', 'post_name' => 'rally-downtown', 'post_status' => 'publish',
  'post_excerpt' => 'We met *downtown*.', 'post_category' => [$cat], 'tags_input' => ['economy', 'jobs'],
  'post_content' => "<p>Thousands came.</p>\n\n[caption id=\"attachment_$att\" align=\"alignleft\" width=\"2\"]<img class=\"wp-image-$att\" src=\"$img\" alt=\"A crowd\" width=\"2\" height=\"2\" /> The crowd[/caption]\n\n<pre>line one\n\nline three</pre>\n\n[unknown_thing foo=\"bar\"]\n\n<p>Gone: <img src=\"" . content_url('/uploads/missing.png') . "\" alt=\"missing\"></p>"], true);
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

// mustContain and mustNotContain check a file's text.
func mustContain(t *testing.T, name, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", name, w, text)
		}
	}
}

func mustNotContain(t *testing.T, name, text string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(strings.ToLower(text), strings.ToLower(b)) {
			t.Errorf("%s holds %q:\n%s", name, b, text)
		}
	}
}

func warningsText(rep *Report) string {
	var b strings.Builder
	for _, w := range rep.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

// buildSite builds the site of a workspace made around siteDir's content and returns
// the output tree.
func buildSite(t *testing.T, siteDir string) map[string][]byte {
	t.Helper()
	ws := filepath.Dir(filepath.Dir(siteDir))
	if err := os.WriteFile(filepath.Join(ws, "stump.yaml"), []byte("output: public\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(siteDir, "site.yaml"), []byte("title: Campaign\nbaseURL: https://example.org/\ntaxonomies: {tag: tags, category: categories}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := build.Open(ws)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.Build(context.Background(), filepath.Base(siteDir), build.Options{NoWrite: true})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return res.Tree
}

// TestPull pulls a seeded WordPress into a site, builds it, and then follows edits,
// trash, unpublishing and hand-written content through further pulls.
func TestPull(t *testing.T) {
	wp := seededWordPress(t)
	ws := t.TempDir()
	site := filepath.Join(ws, "sites", "campaign")
	opts := pullOptions(wp, site)
	opts.CacheDir = filepath.Join(ws, ".stump", "wordpress", "campaign")
	ctx := context.Background()
	rep, err := Pull(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	tree := readTree(t, site)
	month := time.Now().UTC().Format("2006/01")

	t.Run("mapping", func(t *testing.T) {
		rally := tree["content/news/rally-downtown/index.md"]
		mustContain(t, "rally", rally, "title: Rally downtown", "url: /"+month+"/rally-downtown/",
			"- /news/rally-downtown/", "- Rallies", "- economy", "- jobs", "author: admin",
			`summary: "We met \\*downtown\\*."`, "featured_image:", "alt: A crowd", "rawHTML: true",
			"type: posts", "<pre>line one\n<!-- -->\nline three</pre>", "wp-caption-text")
		var png string // the full size (2×2), not the smaller one
		for k := range tree {
			if strings.HasPrefix(k, "content/news/rally-downtown/") && strings.HasSuffix(k, ".png") {
				if cfg, err := stdpng.DecodeConfig(strings.NewReader(tree[k])); err == nil && cfg.Width == 2 {
					png = k
				}
			}
		}
		if png == "" {
			t.Fatalf("the image was not stored in the bundle: %v", keys(tree))
		}
		local := "/" + month + "/rally-downtown/" + filepath.Base(png)
		mustContain(t, "rally", rally, `src="`+local+`"`, "src: "+local)
		// srcset from WordPress's sizes, in the body and the featured image, local too.
		var pngs []string
		for k := range tree {
			if strings.HasPrefix(k, "content/news/rally-downtown/") && strings.HasSuffix(k, ".png") {
				pngs = append(pngs, "/"+month+"/rally-downtown/"+filepath.Base(k))
			}
		}
		if len(pngs) != 2 {
			t.Fatalf("want the image and its smaller size in the bundle, got %v", pngs)
		}
		m := regexp.MustCompile(`srcset="([^"]*)"`).FindStringSubmatch(rally)
		if m == nil || !strings.Contains(m[1], " 1w") || !strings.Contains(m[1], " 2w") || strings.Contains(m[1], "http") {
			t.Errorf("body srcset %v, want the local 1w and 2w files", m)
		}
		mustContain(t, "rally", rally, "srcset: ")
		mustNotContain(t, "rally", rally, wp.URL+"/wp-content")
		mustContain(t, "about", tree["content/about/index.md"], "url: /about/", "type: pages")
		mustContain(t, "team", tree["content/about-team/index.md"], "url: /about/team/", "title: Team")
		mustContain(t, "event", tree["content/events/town-hall/index.md"], "type: events", "title: Town hall")
		mustContain(t, "later", tree["content/news/later/index.md"], "status: future")
		for k, v := range tree {
			if strings.Contains(k, "secret-draft") || strings.Contains(v, "Secret draft") {
				t.Errorf("the draft was pulled: %s", k)
			}
		}
		if rep.NextScheduled.IsZero() {
			t.Errorf("no next scheduled time for the future post")
		}
	})

	t.Run("hostile", func(t *testing.T) {
		h := tree["content/news/hostile/index.md"]
		mustNotContain(t, "hostile", h, "<script", "alert(1)", "onclick", "onerror", "javascript:", "evil.example")
		mustContain(t, "hostile", h, `<iframe src="https://www.youtube.com/embed/abc"`)
		warn := warningsText(rep)
		mustContain(t, "warnings", warn, `post 11 "Hostile": sanitizer removed`, "script", "p[onclick]",
			"a[href] javascript:alert(2)", "iframe src=https://evil.example/x", "img[onerror]")
		mustNotContain(t, "hostile warning", warn, "iframe src=https://www.youtube.com")
	})

	t.Run("warnings", func(t *testing.T) {
		warn := warningsText(rep)
		mustContain(t, "warnings", warn, `post 5 "Rally downtown": unknown shortcode [unknown_thing]`,
			`post 5 "Rally downtown": media `+wp.URL+`/wp-content/uploads/missing.png could not be downloaded (HTTP 404)`)
	})

	t.Run("build", func(t *testing.T) {
		out := buildSite(t, site)
		page := string(out[month+"/rally-downtown/index.html"])
		mustContain(t, "rally page", page, "<pre>line one\n<!-- -->\nline three</pre>", "The crowd", `class="wp-content"`)
		if _, ok := out[strings.TrimPrefix(month, "")+"/rally-downtown/"+filepath.Base(firstPNG(tree))]; !ok {
			t.Errorf("the image is not in the build output")
		}
		if _, ok := out["news/rally-downtown/index.html"]; !ok {
			t.Errorf("no alias page at /news/rally-downtown/")
		}
		if _, ok := out["news/later/index.html"]; ok {
			t.Errorf("the scheduled post was built before its time")
		}
		mustNotContain(t, "hostile page", string(out[month+"/hostile/index.html"]), "<script", "onclick", "javascript:", "evil.example")
		if _, ok := out["about/team/index.html"]; !ok {
			t.Errorf("no /about/team/")
		}
	})

	stateBefore := readTree(t, site)[StateFile]
	t.Run("nothing changed", func(t *testing.T) {
		before := readTree(t, site)
		rep, err := Pull(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Changed() {
			t.Errorf("a pull with nothing changed wrote %v removed %v fetched %d", rep.Written, rep.Removed, rep.Fetched)
		}
		if after := readTree(t, site); !equalTrees(before, after) {
			t.Errorf("the tree changed")
		}
		// discovery (1), index, users/me, types, and per type the changes and the count
		if rep.Requests > 12 {
			t.Errorf("%d requests for a pull with nothing changed", rep.Requests)
		}
	})
	_ = stateBefore

	t.Run("edit", func(t *testing.T) {
		wp.PHP(t, `wp_update_post(['ID' => 8, 'post_content' => '<p>Wednesday now.</p>']);`)
		rep, err := Pull(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rep.Written, " ") != "content/events/town-hall/index.md" || len(rep.Removed) > 0 {
			t.Errorf("an edit wrote %v and removed %v", rep.Written, rep.Removed)
		}
		mustContain(t, "event", readTree(t, site)["content/events/town-hall/index.md"], "Wednesday now.")
	})

	t.Run("trash and unpublish", func(t *testing.T) {
		wp.PHP(t, `wp_trash_post(8); wp_update_post(['ID' => 7, 'post_status' => 'draft']);`)
		rep, err := Pull(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := readTree(t, site)
		for _, k := range []string{"content/events/town-hall/index.md", "content/about-team/index.md"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s is still there after trash/unpublish (removed: %v)", k, rep.Removed)
			}
		}
		if len(rep.Removed) != 2 {
			t.Errorf("removed %v, want the two pages", rep.Removed)
		}
	})

	t.Run("hand-written content is never touched", func(t *testing.T) {
		hand := filepath.Join(site, "content", "news", "mine", "index.md")
		if err := os.MkdirAll(filepath.Dir(hand), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hand, []byte("---\ntitle: Mine\n---\nby hand\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		wp.PHP(t, `wp_insert_post(['post_title' => 'Mine too', 'post_name' => 'mine', 'post_status' => 'publish', 'post_content' => 'x']);
			wp_update_post(['ID' => 5, 'post_title' => 'Rally downtown (updated)']);`)
		before := readTree(t, site)
		_, err := Pull(ctx, opts)
		if err == nil || !strings.Contains(err.Error(), "content/news/mine exists and was not written by a pull") {
			t.Fatalf("pull over hand-written content: %v", err)
		}
		if after := readTree(t, site); !equalTrees(before, after) {
			t.Errorf("a failed pull changed files")
		}
		os.RemoveAll(filepath.Dir(hand))
		if _, err := Pull(ctx, opts); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "rally", readTree(t, site)["content/news/rally-downtown/index.md"], "Rally downtown (updated)")
	})

	t.Run("full pull writes the same files", func(t *testing.T) {
		before := readTree(t, site)
		full := opts
		full.Full = true
		rep, err := Pull(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Changed() {
			t.Errorf("a full pull after an incremental one wrote %v removed %v", rep.Written, rep.Removed)
		}
		if after := readTree(t, site); !equalTrees(before, after) {
			t.Errorf("the tree changed")
		}
		// And from nothing (no state, no media cache): the same content files.
		fresh := filepath.Join(t.TempDir(), "sites", "campaign")
		o := opts
		o.SiteDir, o.CacheDir = fresh, ""
		if _, err := Pull(ctx, o); err != nil {
			t.Fatal(err)
		}
		a, b := readTree(t, site), readTree(t, fresh)
		// The state differs (the incremental one remembers the trashed type's last
		// modification); the content must not.
		delete(a, "site.yaml")
		delete(a, StateFile)
		delete(b, StateFile)
		if !equalTrees(a, b) {
			for _, k := range keys(a) {
				if a[k] != b[k] {
					t.Errorf("a fresh pull differs from the incremental one in %s:\n%s\n----\n%s", k, a[k], b[k])
				}
			}
		}
	})

	t.Run("a scheduled post goes live when its time comes", func(t *testing.T) {
		// What WordPress's cron does at the post's time: publish it, without touching its
		// modification time. The pull after that time fetches it again (its permalink
		// is a pretty one now).
		// A post scheduled by an edit has an ordinary modification time (a post created
		// as scheduled carries its future date there, and every pull fetches it until
		// then), so make it one: then only the due time tells the pull to fetch it.
		wp.PHP(t, `global $wpdb; $m = gmdate('Y-m-d H:i:s', time() - 3600);
			$wpdb->update($wpdb->posts, ['post_modified' => $m, 'post_modified_gmt' => $m], ['ID' => 9]); clean_post_cache(9);`)
		if _, err := Pull(ctx, opts); err != nil {
			t.Fatal(err)
		}
		wp.PHP(t, `wp_publish_post(9);`)
		later := opts
		later.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
		rep, err := Pull(ctx, later)
		if err != nil {
			t.Fatal(err)
		}
		got := readTree(t, site)["content/news/later/index.md"]
		mustContain(t, "later", got, "status: publish", "url: /"+month+"/later/", "- /news/later/")
		if !rep.NextScheduled.IsZero() {
			t.Errorf("still a scheduled post: %v", rep.NextScheduled)
		}
	})

	t.Run("the front page is left to content/_index.md", func(t *testing.T) {
		wp.PHP(t, `update_option('show_on_front', 'page'); update_option('page_on_front', 6);`)
		defer wp.PHP(t, `update_option('show_on_front', 'posts'); update_option('page_on_front', 0);`)
		full := opts
		full.Full = true
		rep, err := Pull(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := readTree(t, site)["content/about/index.md"]; ok {
			t.Errorf("the front page was pulled")
		}
		mustContain(t, "warnings", warningsText(rep), `page 6 "About": is WordPress's front page`)
	})

	t.Run("plain permalinks: ?rest_route= found without the Link header", func(t *testing.T) {
		wp.PHP(t, `update_option('permalink_structure', ''); flush_rewrite_rules();`)
		defer wp.PHP(t, `update_option('permalink_structure', '/%year%/%monthnum%/%postname%/'); flush_rewrite_rules();`)
		proxy := faultProxy(t, wp.URL, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasPrefix(r.URL.Path, "/wp-json") {
				http.NotFound(w, r)
				return true
			}
			return false
		}, true)
		o := opts
		o.Config.URL = proxy
		o.SiteDir, o.CacheDir = filepath.Join(t.TempDir(), "sites", "plain"), ""
		rep, err := Pull(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rep.API, "rest_route=") {
			t.Errorf("API root %s, want the ?rest_route= form", rep.API)
		}
		// Without pretty permalinks a post lives in its section.
		mustContain(t, "rally", readTree(t, o.SiteDir)["content/news/rally-downtown/index.md"], "url: /news/rally-downtown/")
	})
}

func firstPNG(tree map[string]string) string {
	for k := range tree {
		if strings.HasSuffix(k, ".png") {
			return k
		}
	}
	return ""
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// faultProxy is a reverse proxy to target on loopback whose fault hook may answer a
// request itself (returning true); with stripLink it drops Link headers, so discovery
// cannot use them. It rewrites the target's URL in bodies and headers to its own.
func faultProxy(t *testing.T, target string, fault func(http.ResponseWriter, *http.Request) bool, stripLink bool) string {
	t.Helper()
	u, _ := url.Parse(target)
	var self string
	rp := httputil.NewSingleHostReverseProxy(u)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		r.Host = u.Host // WordPress redirects any other host to its own
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if stripLink {
			resp.Header.Del("Link")
		}
		for _, h := range []string{"Link", "Location"} {
			if v := resp.Header.Get(h); v != "" {
				resp.Header.Set(h, strings.ReplaceAll(v, target, self))
			}
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(strings.ReplaceAll(target, "/", `\/`)), []byte(strings.ReplaceAll(self, "/", `\/`)))
		body = bytes.ReplaceAll(body, []byte(target), []byte(self))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault != nil && fault(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	self = "http://" + srv.Listener.Addr().String() // before the first request can read it
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}
