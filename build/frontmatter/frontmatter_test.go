package frontmatter

import (
	"strings"
	"testing"
	"time"
)

func TestParseYAML(t *testing.T) {
	src := "---\ntitle: Hello\ntags: [a, b]\ndate: 2026-10-01\nparams:\n  x: 1\n---\nBody\nline\n"
	d, err := Parse("a.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != YAML || d.Fields["title"] != "Hello" || string(d.Body) != "Body\nline\n" || d.BodyLine != 8 {
		t.Fatalf("got %+v body %q line %d", d.Fields, d.Body, d.BodyLine)
	}
	if p := d.Pos("date"); p.Line != 4 || p.Col != 7 {
		t.Errorf("date at %+v, want 4:7", p)
	}
	if tags, ok := d.Fields["tags"].([]any); !ok || len(tags) != 2 {
		t.Errorf("tags = %#v", d.Fields["tags"])
	}
	if m, ok := d.Fields["params"].(map[string]any); !ok || m["x"] != 1 {
		t.Errorf("params = %#v", d.Fields["params"])
	}
}

func TestParseTOML(t *testing.T) {
	src := "+++\ntitle = \"T\"\ndate = 2026-10-01\n  weight = 3\n[params]\nx = 1\n+++\nBody\n"
	d, err := Parse("a.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != TOML || d.Fields["title"] != "T" || d.Fields["weight"] != 3 || string(d.Body) != "Body\n" {
		t.Fatalf("got %#v %q", d.Fields, d.Body)
	}
	if p := d.Pos("weight"); p.Line != 4 || p.Col != 12 {
		t.Errorf("weight at %+v, want 4:12", p)
	}
	if _, ok := d.Fields["date"]; !ok {
		t.Error("date missing")
	}
}

func TestNoFrontMatter(t *testing.T) {
	d, err := Parse("a.md", []byte("# Just text\n"))
	if err != nil || d.Format != None || string(d.Body) != "# Just text\n" || d.BodyLine != 1 {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func TestEmptyFrontMatterAndBOM(t *testing.T) {
	d, err := Parse("a.md", []byte("\xef\xbb\xbf---\n---\nx\n"))
	if err != nil || d.Format != YAML || len(d.Fields) != 0 || string(d.Body) != "x\n" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"---\ntitle: A\n", "a.md:1:1: front matter opened with \"---\" is never closed"},
		{"---\ntitle: [a\n---\n", "a.md:2:"},
		{"---\n- a\n- b\n---\n", "a.md:2:1: front matter must be a list of `key: value` lines"},
		{"+++\ntitle = \n+++\n", "a.md:2:"},
		{"---\ntitle: a\ntitle: b\n---\n", "a.md:3:"},
	}
	for _, c := range cases {
		_, err := Parse("a.md", []byte(c.src))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want prefix %q", c.src, err, c.want)
		}
	}
}

func TestTOMLDateKeepsType(t *testing.T) {
	d, err := Parse("a.md", []byte("+++\ndate = 2026-10-01T10:00:00Z\n+++\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Fields["date"].(time.Time); !ok {
		t.Errorf("date is %T", d.Fields["date"])
	}
}
