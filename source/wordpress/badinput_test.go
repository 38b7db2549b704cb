package wordpress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPullBadInput: WordPress down, a wrong password, a 500 in the middle of the
// pagination, a malformed JSON page. Each fails the pull with a message that says what
// went wrong, and leaves the content exactly as the last good pull wrote it.
func TestPullBadInput(t *testing.T) {
	wp := seededWordPress(t)
	// 120 more posts: with 50 a page, the posts come in three pages.
	wp.PHP(t, `for ($i = 0; $i < 120; $i++) { wp_insert_post(['post_title' => "Filler $i", 'post_status' => 'publish', 'post_content' => "<p>filler $i</p>"]); }`)
	site := filepath.Join(t.TempDir(), "sites", "campaign")
	good := pullOptions(wp, site)
	good.PageSize = 50
	ctx := context.Background()
	if _, err := Pull(ctx, good); err != nil {
		t.Fatal(err)
	}
	// A change waits in WordPress, so a pull that went through would write.
	wp.PHP(t, `wp_update_post(['ID' => 5, 'post_title' => 'Changed meanwhile']);`)
	before := readTree(t, site)

	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()

	var calls atomic.Int64
	pageFault := func(page string, answer func(http.ResponseWriter)) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			q := r.URL.Query()
			if strings.HasSuffix(r.URL.Path, "/wp/v2/posts") && q.Get("page") == page && q.Get("_fields") != "id" {
				calls.Add(1)
				answer(w)
				return true
			}
			return false
		}
	}
	cases := []struct {
		name  string
		opts  func(o *Options)
		want  []string
		calls int64 // requests the fault answered (retries included), 0: not checked
	}{
		{
			name: "WordPress down",
			opts: func(o *Options) { o.Config.URL = closed },
			want: []string{"WordPress at " + closed + " did not answer", "connection refused"},
		},
		{
			name: "wrong password",
			opts: func(o *Options) { o.Password = "wrong wrong wrong wrong" },
			want: []string{`WordPress refused the application password of user "stump"`, "HTTP 401"},
		},
		{
			name: "500 in the middle of the pagination",
			opts: func(o *Options) {
				o.Full = true
				o.Config.URL = faultProxy(t, wp.URL, pageFault("2", func(w http.ResponseWriter) {
					http.Error(w, `{"code":"internal_server_error","message":"database went away"}`, http.StatusInternalServerError)
				}), false)
			},
			want:  []string{"posts: page 2 of 3:", "HTTP 500 internal_server_error: database went away", "gave up after 4 tries"},
			calls: 4,
		},
		{
			name: "malformed JSON page",
			opts: func(o *Options) {
				o.Full = true
				o.Config.URL = faultProxy(t, wp.URL, pageFault("3", func(w http.ResponseWriter) {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(`[{"id": 1, "title": {"rendered": "trunc`))
				}), false)
			},
			want:  []string{"posts: page 3 of 3:", "malformed JSON (39 bytes, application/json)"},
			calls: 4,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls.Store(0)
			o := good
			c.opts(&o)
			rep, err := Pull(ctx, o)
			if err == nil {
				t.Fatalf("the pull succeeded: %+v", rep)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if (c.name == "wrong password") != errors.Is(err, ErrAuth) {
				t.Errorf("errors.Is(%v, ErrAuth) = %v", err, errors.Is(err, ErrAuth))
			}
			if strings.Contains(err.Error(), wp.Password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if c.calls > 0 && calls.Load() != c.calls {
				t.Errorf("the fault was hit %d times, want %d (1 + 3 retries)", calls.Load(), c.calls)
			}
			if after := readTree(t, site); !equalTrees(before, after) {
				t.Errorf("a failed pull changed the content")
			}
		})
	}
	// And the change goes through once WordPress behaves.
	rep, err := Pull(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Written, ",") != "content/news/rally-downtown/index.md" {
		t.Errorf("the good pull after the faults wrote %v", rep.Written)
	}
}
