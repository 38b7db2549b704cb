package cli

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/stump-dev/stump/publish/store/file"
	"github.com/stump-dev/stump/publish/website"
)

// corpus is a site of another generator in testdata/import, with the URLs it serves
// listed from its own permalink rules: each must answer 200 after import, build and
// publish, or redirect to the URL given.
type corpus struct {
	name, kind string
	// urls maps an old URL to "" (200) or the URL it must redirect to.
	urls map[string]string
	// notes are substrings the import report must hold.
	notes []string
}

var corpora = []corpus{
	{
		name: "jekyll", kind: "jekyll",
		urls: map[string]string{
			// permalink: pretty is /:categories/:year/:month/:day/:title/
			"/events/volunteers/2014/03/20/spring-cleanup/": "",
			"/2015/03/17/trail-reopens/":                    "",
			"/trails/reopen.html":                           "/2015/03/17/trail-reopens/", // redirect_from
			"/hours/summer/":                                "",                           // a post's permalink
			"/2016/07/04/fireworks-moved/":                  "https://events.example.gov/fireworks/",
			"/about/":                                       "", // pages are pretty too
			"/schedule/":                                    "",
			"/contact/":                                     "",
			"/":                                             "",
			"/notes.md":                                     "", // no front matter: copied as is
			"/images/trail.png":                             "",
			"/css/extra.css":                                "",
			"/feed.xml":                                     "/index.xml", // jekyll-feed
			"/page2/":                                       "/posts/page/2/",
		},
		notes: []string{
			"_posts/2016-06-01-summer-hours.md:7: template tag {% for post in site.posts limit:3 %} has no stump equivalent; removed",
			"_posts/2016-06-01-summer-hours.md:8: template expression {{ post.title }} has no stump equivalent; removed",
			"_layouts/post.html: not carried over",
			"_config.yml: plugins: not carried over",
		},
	},
	{
		name: "hugo", kind: "hugo",
		urls: map[string]string{
			"/":                              "",
			"/posts/":                        "",
			"/posts/2023/05/first-light/":    "", // permalinks posts = "/posts/:year/:month/:slug/"
			"/posts/2023/06/night-sky/":      "", // a bundle, slug from its title
			"/posts/2023/06/night-sky/m.svg": "",
			"/old/night/":                    "/posts/2023/06/night-sky/", // aliases
			"/about/":                        "",
			"/gallery/":                      "",
			"/topics/astronomy/":             "", // permalinks tags = "/topics/:slug/"
			"/tags/":                         "",
			"/docs/install/":                 "",
			"/contact-us/":                   "", // url:
			"/favicon.ico":                   "",
		},
		notes: []string{
			`shortcode "warning" is neither built in`,
			"theme \"starry\": its layouts are not carried over",
		},
	},
	{
		name: "eleventy", kind: "eleventy",
		urls: map[string]string{
			"/":                                "",
			"/blog/2022-09-12-harvest-fair/":   "", // Eleventy keeps the date in the URL
			"/blog/2023-01-30-winter-market/":  "",
			"/news/2023/04/library-expansion/": "", // directory data permalink
			"/about/":                          "",
			"/about/team/":                     "",
			"/img/market.svg":                  "",
			"/feed.xml":                        "/index.xml",
			"/contact/":                        "", // permalink in front matter
		},
		notes: []string{
			"a Nunjucks",
			".eleventy.js: the Eleventy config is JavaScript",
		},
	},
}

// TestImportCorpora imports each corpus with `stump import`, builds it with --strict (no
// template syntax may reach a page), publishes it to the local store and serves it the
// way `stump serve` does; then every URL of the original site must answer, no page may
// hold {{ or {% outside code, and no internal link may be broken. The source folder must
// not change, and importing twice must give the same site.
func TestImportCorpora(t *testing.T) {
	t.Setenv("STUMP_USER", "tester")
	for _, c := range corpora {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			ar, err := txtar.ParseFile(filepath.Join("testdata", "import", c.name+".txtar"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range ar.Files {
				p := filepath.Join(src, filepath.FromSlash(f.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ws := filepath.Join(dir, "ws")
			if err := os.MkdirAll(ws, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ws, "stump.yaml"), []byte("output: public\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := treeSum(t, src)
			out := runOK(t, "-C", ws, "import", c.kind, src, "--site", c.name)
			for _, n := range c.notes {
				if !strings.Contains(out, n) {
					t.Errorf("import report lacks %q:\n%s", n, out)
				}
			}
			site := filepath.Join(ws, "sites", c.name)
			first := treeSum(t, site)
			runOK(t, "-C", ws, "import", c.kind, src, "--site", c.name)
			if treeSum(t, site) != first {
				t.Errorf("a second import gave a different site")
			}
			if treeSum(t, src) != before {
				t.Errorf("import changed the source folder")
			}
			runOK(t, "-C", ws, "build", "--site", c.name, "--strict")
			runOK(t, "-C", ws, "publish", "--site", c.name)
			st, err := file.Open(filepath.Join(ws, ".stump", "targets", c.name))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(&website.Handler{Store: st})
			defer srv.Close()
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(u string) (int, string) {
				resp, err := client.Get(srv.URL + u)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, strings.TrimPrefix(resp.Header.Get("Location"), srv.URL)
			}
			urls := make([]string, 0, len(c.urls))
			for u := range c.urls {
				urls = append(urls, u)
			}
			sort.Strings(urls)
			for _, u := range urls {
				want := c.urls[u]
				code, loc := get(u)
				switch {
				case want == "" && code != 200:
					t.Errorf("GET %s: %d %s, want 200", u, code, loc)
				case want != "" && (code < 300 || code > 399 || !sameURL(loc, want)):
					t.Errorf("GET %s: %d %q, want a redirect to %s", u, code, loc, want)
				case want != "" && strings.HasPrefix(want, "/"):
					if code, _ := get(want); code != 200 {
						t.Errorf("GET %s redirects to %s, which answers %d", u, want, code)
					}
				}
			}
			// Every page: no template syntax outside code, no broken internal link.
			pub := filepath.Join(ws, "public", c.name)
			checked := map[string]bool{}
			err = filepath.WalkDir(pub, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				relp, _ := filepath.Rel(pub, p)
				if leak := templateLeak(string(b)); leak != "" {
					t.Errorf("%s: template syntax outside code: %q", relp, leak)
				}
				for _, m := range linkRE.FindAllStringSubmatch(string(b), -1) {
					u := strings.SplitN(strings.SplitN(m[1], "#", 2)[0], "?", 2)[0]
					if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") || checked[u] {
						continue
					}
					checked[u] = true
					code, loc := get(u)
					if code == 301 || code == 302 {
						if strings.HasPrefix(loc, "/") {
							code, _ = get(loc)
						} else {
							code = 200 // an external redirect target
						}
					}
					if code != 200 {
						t.Errorf("%s links to %s, which answers %d", relp, u, code)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(checked) == 0 {
				t.Errorf("no internal links checked")
			}
		})
	}
}

func sameURL(got, want string) bool {
	return got == want || strings.HasSuffix(got, want)
}

var linkRE = regexp.MustCompile(`(?:href|src)="([^"]*)"`)

// templateLeak returns "{{" or "{%" with some context when it appears outside <code>,
// <pre>, <script> and <style> elements.
func templateLeak(html string) string {
	stripped := regexp.MustCompile(`(?s)<(code|pre|script|style)[\s>].*?</(code|pre|script|style)>`).ReplaceAllString(html, "")
	for _, tok := range []string{"{{", "{%"} {
		if i := strings.Index(stripped, tok); i >= 0 {
			return stripped[max(0, i-30):min(len(stripped), i+30)]
		}
	}
	return ""
}

// runOK runs stump in-process and fails the test on a non-zero exit.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(append([]string{"stump"}, args...), strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("stump %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

// treeSum hashes every file's path and bytes under dir.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
