package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAndMerge(t *testing.T) {
	ws := &Workspace{Defaults: Site{Theme: "t1", Paginate: 7, LanguageCode: "fr"}, Params: map[string]any{"a": 1, "nested": map[string]any{"x": 1, "y": 1}}}
	l, err := ReadSite(ws, "s", write(t, "title: S\npaginate: 3\nparams:\n  b: 2\n  nested: {y: 2}\n"), "sites/s/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if l.Theme != "t1" || l.Paginate != 3 || l.LanguageCode != "fr" || l.Feeds != "rss" || l.FeedLimit != 20 {
		t.Errorf("merged config wrong: %+v", l.Site)
	}
	if l.Params["a"] != 1 || l.Params["b"] != 2 {
		t.Errorf("params %v", l.Params)
	}
	if n := l.Params["nested"].(map[string]any); n["x"] != 1 || n["y"] != 2 {
		t.Errorf("nested params not merged: %v", n)
	}
	if l.Base.Path != "/" || len(l.TaxonomyOrder) != 2 || l.Singular["tags"] != "tag" {
		t.Errorf("base %v taxonomies %v", l.Base, l.TaxonomyOrder)
	}
}

func TestSiteErrors(t *testing.T) {
	cases := []struct{ body, want string }{
		{"title: X\ntitel: Y\n", `sites/s/site.yaml:2:1: unknown key "titel"`},
		{"paginate: many\n", "sites/s/site.yaml:1:11: wrong type"},
		{"paginate: -1\n", "sites/s/site.yaml:1:11: paginate must be a positive number"},
		{"feeds: json\n", `sites/s/site.yaml:1:8: feeds must be rss, atom or none, not "json"`},
		{"baseURL: ftp://x/\n", `sites/s/site.yaml:1:10: baseURL "ftp://x/" is not an http(s) URL`},
		{"timeZone: Mars/Olympus\n", `sites/s/site.yaml:1:11: timeZone "Mars/Olympus" is not a known IANA time zone`},
		{"theme: ../evil\n", `sites/s/site.yaml:1:8: theme "../evil" is not a valid theme name`},
		{"menus:\n  main:\n    - {name: A}\n", `sites/s/site.yaml:3:7: menu "main" entry 1 needs both name and url`},
		{"redirects:\n  - {from: /a/, to: /b/, status: 200}\n", "sites/s/site.yaml:2:34: redirect status must be 301, 302, 307 or 308"},
		{"title: [\n", "sites/s/site.yaml:1:"},
		{"source:\n  wordpress:\n    url: ftp://cms/\n", `sites/s/site.yaml:3:10: source.wordpress.url must be the WordPress site's http(s) URL`},
		{"source:\n  wordpress:\n    url: https://u:p@cms/\n", "sites/s/site.yaml:3:10: source.wordpress.url must not hold credentials"},
		{"source:\n  wordpress:\n    url: https://cms/\n    section: ../x\n", "sites/s/site.yaml:4:14: source.wordpress.section must be a content folder"},
		{"source:\n  wordpress:\n    url: https://cms/\n    types: [posts, ../x]\n", "sites/s/site.yaml:4:20: source.wordpress.types"},
		{"source:\n  wordpress:\n    url: https://cms/\n    usr: x\n", `sites/s/site.yaml:4:5: unknown key "usr"`},
	}
	for _, c := range cases {
		_, err := ReadSite(&Workspace{}, "s", write(t, c.body), "sites/s/site.yaml")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: got %v, want prefix %q", c.body, err, c.want)
		}
	}
}

func TestWorkspace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stump.yaml")
	os.WriteFile(p, []byte("# only a comment\n"), 0o644)
	w, err := ReadWorkspace(p, "stump.yaml")
	if err != nil || w.Output != "public" {
		t.Fatalf("got %+v, %v", w, err)
	}
	os.WriteFile(p, []byte("output: ../elsewhere\n"), 0o644)
	if _, err := ReadWorkspace(p, "stump.yaml"); err == nil || !strings.Contains(err.Error(), "must be a folder inside the workspace") {
		t.Errorf("output outside the workspace accepted: %v", err)
	}
	os.WriteFile(p, []byte("outptu: x\n"), 0o644)
	if _, err := ReadWorkspace(p, "stump.yaml"); err == nil || !strings.HasPrefix(err.Error(), `stump.yaml:1:1: unknown key "outptu"`) {
		t.Errorf("unknown key: %v", err)
	}
}
