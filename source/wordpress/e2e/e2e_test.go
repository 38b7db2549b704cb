// Package e2e runs `stump wordpress listen` and `stump publish` against a real
// WordPress (with the must-use plugin integrations/wordpress/stump-webhook.php calling
// the listener) and a real S3 server (versitygw) serving the published site.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/source/wordpress"
)

// live is how long a change in WordPress may take to be live on the S3 website: the
// listener's debounce (300 ms here), a pull, a build and a publish. A bound on the wait,
// not a measurement: the test fails only when the change never shows.
const live = 60 * time.Second

const secret = "test-secret-0123456789abcdef0123456789"

type env struct {
	t      *testing.T
	wp     *testenv.WP
	s3     testenv.S3Env
	bucket string
	ws     string
	bin    string
	env    []string
	listen string // http://127.0.0.1:PORT of the listener
	web    *http.Client
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	e.wp = testenv.WordPress(t)
	e.s3 = testenv.S3(t)
	e.bucket = testenv.NewBucket(t, e.s3)
	testenv.EnableWebsite(t, e.s3, e.bucket, "")
	e.web = e.s3.WebsiteClient()
	dir := t.TempDir()
	e.bin = filepath.Join(dir, "stump")
	if err := testenv.BuildStump(context.Background(), e.bin); err != nil {
		t.Fatal(err)
	}
	e.ws = filepath.Join(dir, "ws")
	if err := os.MkdirAll(e.ws, 0o755); err != nil {
		t.Fatal(err)
	}
	e.env = testenv.CLIEnv(e.s3, "wp-e2e", "STUMP_WP_PASSWORD="+e.wp.Password, "STUMP_WP_WEBHOOK_SECRET="+secret)
	e.must("new", "site", "c")
	target := fmt.Sprintf("s3://%s?endpoint=%s&path_style=true&region=us-east-1", e.bucket, e.s3.Endpoint)
	yaml := fmt.Sprintf("target: %q\nsource:\n  wordpress:\n    url: %s\n    user: %s\n    section: news\n", target, e.wp.URL, e.wp.User)
	f, err := os.OpenFile(filepath.Join(e.ws, "sites", "c", "site.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(yaml)
	f.Close()
	return e
}

func (e *env) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir, cmd.Env = e.ws, e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errb, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("stump %s: %v\n%s\n%s", strings.Join(args, " "), err, out, errb)
	}
	return out + errb
}

// get fetches a path of the live site: status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := e.web.Get(e.s3.WebsiteURL(e.bucket, path))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls the live site until ok says the page is as wanted, or fails after live.
func (e *env) waitFor(what, path string, ok func(code int, body string) bool) {
	e.t.Helper()
	deadline := time.Now().Add(live)
	for {
		code, body := e.get(path)
		if ok(code, body) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %s is still HTTP %d after %s; listener status:\n%s", what, path, code, live, e.status())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) status() string {
	resp, err := http.Get(e.listen + "/status")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (e *env) state() wordpress.Status {
	var st wordpress.Status
	if err := json.Unmarshal([]byte(e.status()), &st); err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// waitRuns waits until the listener has finished n runs.
func (e *env) waitRuns(n int) wordpress.Status {
	e.t.Helper()
	deadline := time.Now().Add(live)
	for {
		st := e.state()
		if st.Runs >= n && !st.Running {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the listener did not finish %d runs: %s", n, e.status())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestListenPublishesWhatWordPressPublishes: the must-use plugin calls the listener on
// each change; the listener pulls, builds and publishes. A new post goes live, an edit
// uploads only its page and the lists that show it, a trashed post disappears, a draft
// never shows, a hostile body comes out clean, and a forged webhook changes nothing.
func TestListenPublishesWhatWordPressPublishes(t *testing.T) {
	e := setup(t)
	month := time.Now().UTC().Format("2006/01")
	e.wp.PHP(t, `
wp_insert_post(['post_title' => 'Other news', 'post_name' => 'other-news', 'post_status' => 'publish', 'post_content' => '<p>Unrelated.</p>', 'tags_input' => ['other']]);
kses_remove_filters();
wp_insert_post(['post_title' => 'Hostile', 'post_name' => 'hostile', 'post_status' => 'publish',
  'post_content' => '<p onclick="steal()">Hi<script>alert(1)</script></p><a href="javascript:alert(2)">click</a><iframe src="https://evil.example/x"></iframe>']);
wp_insert_post(['post_title' => 'Secret draft', 'post_name' => 'secret-draft', 'post_status' => 'draft', 'post_content' => '<p>Not yet.</p>']);
`)
	addr := freeAddr(t)
	e.listen = "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, e.bin, "wordpress", "listen", "--site", "c", "--addr", addr, "--debounce", "300ms", "-m", "from WordPress")
	cmd.Dir, cmd.Env = e.ws, e.env
	var lout, lerr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lout, &lerr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("listener stdout:\n%s\nstderr:\n%s", lout.String(), lerr.String())
		}
	})
	// The first run catches up with what WordPress has.
	for deadline := time.Now().Add(live); ; {
		if resp, err := http.Get(e.listen + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener did not start: %s", lerr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := e.waitRuns(1)
	if st.Last == nil || !st.Last.OK {
		t.Fatalf("the first run failed: %s", e.status())
	}
	code, body := e.get("/" + month + "/hostile/")
	if code != 200 {
		t.Fatalf("the hostile post is not live: HTTP %d", code)
	}
	for _, bad := range []string{"<script", "alert(1)", "onclick", "javascript:", "evil.example"} {
		if strings.Contains(body, bad) {
			t.Errorf("the live hostile page holds %q", bad)
		}
	}

	// The plugin sends the webhook from WordPress itself.
	e.wp.PHP(t, `update_option('stump_webhook_url', '`+e.listen+`/hook'); update_option('stump_webhook_secret', '`+secret+`');`)

	t.Run("create", func(t *testing.T) {
		e.wp.PHP(t, `wp_insert_post(['post_title' => 'Rally tonight', 'post_name' => 'rally-tonight', 'post_status' => 'publish', 'post_content' => '<p>Version one.</p>', 'tags_input' => ['rally']]);`)
		e.waitFor("a new post", "/"+month+"/rally-tonight/", func(code int, body string) bool {
			return code == 200 && strings.Contains(body, "Version one.")
		})
		if st := e.state(); st.Accepted == 0 {
			t.Errorf("no webhook accepted: %+v", st)
		}
	})

	t.Run("edit uploads only its page and the lists that show it", func(t *testing.T) {
		runs := e.state().Runs
		e.wp.PHP(t, `$p = get_page_by_path('rally-tonight', OBJECT, 'post'); wp_update_post(['ID' => $p->ID, 'post_content' => '<p>Version two.</p>']);`)
		e.waitFor("an edit", "/"+month+"/rally-tonight/", func(code int, body string) bool {
			return code == 200 && strings.Contains(body, "Version two.")
		})
		st := e.waitRuns(runs + 1)
		if st.Last == nil || !st.Last.OK {
			t.Fatalf("last run: %s", e.status())
		}
		if len(st.Last.Changed) == 0 {
			t.Fatalf("the edit changed nothing? %s", e.status())
		}
		for _, p := range st.Last.Changed {
			switch {
			case p == month+"/rally-tonight/index.html":
			case strings.HasPrefix(p, "tags/rally/"), strings.HasPrefix(p, "categories/uncategorized/"),
				strings.HasPrefix(p, "news/"), p == "index.html", p == "index.xml", p == "sitemap.xml",
				strings.HasPrefix(p, "page/"), strings.HasPrefix(p, "tags/index"), strings.HasPrefix(p, "categories/index"):
				// the lists that show the post (and their feeds), and the sitemap (lastmod)
			default:
				t.Errorf("the edit rewrote %s, which does not show the post", p)
			}
			if strings.Contains(p, "other-news") || strings.HasPrefix(p, "tags/other/") || strings.Contains(p, "hostile") {
				// pages that do not show the edited post
				t.Errorf("the edit rewrote %s", p)
			}
		}
	})

	t.Run("trash", func(t *testing.T) {
		e.wp.PHP(t, `$p = get_page_by_path('rally-tonight', OBJECT, 'post'); wp_trash_post($p->ID);`)
		e.waitFor("a trashed post", "/"+month+"/rally-tonight/", func(code int, _ string) bool { return code == 404 || code == 403 })
		if code, _ := e.get("/news/rally-tonight/"); code == 200 {
			t.Errorf("the alias of the trashed post is still live")
		}
	})

	t.Run("delete", func(t *testing.T) {
		accepted := e.state().Accepted
		e.wp.PHP(t, `$p = get_page_by_path('other-news', OBJECT, 'post'); wp_delete_post($p->ID, true);`)
		e.waitFor("a deleted post", "/"+month+"/other-news/", func(code int, _ string) bool { return code == 404 || code == 403 })
		if st := e.state(); st.Accepted <= accepted {
			t.Errorf("the plugin sent no event for the deletion: %+v", st)
		}
	})

	t.Run("draft", func(t *testing.T) {
		for _, p := range []string{"/news/secret-draft/", "/" + month + "/secret-draft/"} {
			if code, _ := e.get(p); code == 200 {
				t.Errorf("the draft is live at %s", p)
			}
		}
		for _, p := range []string{"/", "/news/", "/index.xml", "/sitemap.xml"} {
			if _, body := e.get(p); strings.Contains(body, "Secret draft") || strings.Contains(body, "secret-draft") {
				t.Errorf("%s names the draft", p)
			}
		}
	})

	t.Run("forged webhook", func(t *testing.T) {
		runs := e.state().Runs
		body := []byte(fmt.Sprintf(`{"id":"forged","time":%d,"event":"transition_post_status"}`, time.Now().Unix()))
		req, _ := http.NewRequest("POST", e.listen+"/hook", bytes.NewReader(body))
		req.Header.Set(wordpress.SignatureHeader, wordpress.Sign([]byte("not the secret, but long enough"), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged webhook: HTTP %d, want 401", resp.StatusCode)
		}
		if st := e.state(); st.Runs != runs || st.Pending || st.Running {
			t.Errorf("a forged webhook started a run: %+v", st)
		}
	})

	t.Run("WordPress down: publish fails and the live site stays", func(t *testing.T) {
		cancel() // the listener
		_, before := e.get("/" + month + "/hostile/")
		e.wp.Stop()
		out, errb, err := e.run("publish", "--site", "c")
		if err == nil {
			t.Fatalf("publish succeeded with WordPress down:\n%s\n%s", out, errb)
		}
		if !strings.Contains(errb, "pulling from WordPress (nothing was published)") || !strings.Contains(errb, "did not answer") {
			t.Errorf("publish with WordPress down said:\n%s", errb)
		}
		if strings.Contains(out+errb, e.wp.Password) {
			t.Errorf("the output shows the password")
		}
		if code, after := e.get("/" + month + "/hostile/"); code != 200 || after != before {
			t.Errorf("the live site changed: HTTP %d", code)
		}
	})
}
