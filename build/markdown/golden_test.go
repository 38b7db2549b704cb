package markdown

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/diff"
)

// Golden cases live in testdata/*.txt, in the format of goldmark's
// extension/_test/*.txt:
//
//	3:a name
//	OPTIONS: {"unsafe": true, "output": "summary"}
//	//- - - - - - - - -//
//	markdown
//	//- - - - - - - - -//
//	expected HTML
//	//= = = = = = = = = = = = = = = = = = = = = = = =//
//
// The OPTIONS line is optional. Its fields: unsafe, noTypographer,
// lineNumbers (the Options fields) and output: what is compared, one of
// "content" (default), "summary", "toc", "inline", "shortcodes" (shortcodes on, with
// the test lookup goldenShortcodes: the content, then one line per call, or the error).
//
// Each case is the subtest TestGolden/<file>/<number>: run one with
// go test -run 'TestGolden/tables/^3$' (the ^$ matter once a file has 13
// cases or more). go test -update rewrites the expected outputs from the
// current renderer; review the diff before committing it.

var update = flag.Bool("update", false, "rewrite the expected output of the golden cases in testdata/*.txt")

const (
	goldenSep     = "//- - - - - - - - -//"
	goldenCaseSep = "//= = = = = = = = = = = = = = = = = = = = = = = =//"
)

type goldenOptions struct {
	Unsafe        bool   `json:"unsafe,omitempty"`
	NoTypographer bool   `json:"noTypographer,omitempty"`
	LineNumbers   bool   `json:"lineNumbers,omitempty"`
	Output        string `json:"output,omitempty"`
}

type goldenCase struct {
	No       int
	Name     string
	Line     int    // line of the header, for messages
	Options  string // raw OPTIONS line ("" when absent)
	Opts     goldenOptions
	Markdown string
	Expected string
}

func readGolden(path string) ([]goldenCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var (
		cases []goldenCase
		sc    = bufio.NewScanner(f)
		line  = 0
	)
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	seen := map[int]bool{}
	for {
		header, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(header) == "" {
			continue
		}
		c := goldenCase{Line: line}
		num, name, _ := strings.Cut(header, ":")
		if c.No, err = strconv.Atoi(strings.TrimSpace(num)); err != nil {
			return nil, errf("invalid case header %q, want N or N:name", header)
		}
		if seen[c.No] {
			return nil, errf("duplicate case number %d", c.No)
		}
		seen[c.No] = true
		c.Name = strings.TrimSpace(name)

		l, ok := next()
		if t := strings.TrimSpace(l); ok && strings.HasPrefix(strings.ToUpper(t), "OPTIONS:") {
			c.Options = l
			dec := json.NewDecoder(strings.NewReader(t[len("OPTIONS:"):]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c.Opts); err != nil {
				return nil, errf("invalid OPTIONS: %v", err)
			}
			switch c.Opts.Output {
			case "", "content", "summary", "toc", "inline", "shortcodes":
			default:
				return nil, errf("unknown output %q", c.Opts.Output)
			}
			l, ok = next()
		}
		if !ok || l != goldenSep {
			return nil, errf("want %q after the case header", goldenSep)
		}
		var md []string
		for {
			l, ok = next()
			if !ok {
				return nil, errf("unterminated Markdown of case %d", c.No)
			}
			if l == goldenSep {
				break
			}
			md = append(md, l)
		}
		c.Markdown = strings.Join(md, "\n")
		var exp []string
		for {
			l, ok = next()
			if !ok {
				return nil, errf("unterminated expected output of case %d", c.No)
			}
			if l == goldenCaseSep {
				break
			}
			exp = append(exp, l)
		}
		c.Expected = strings.Join(exp, "\n")
		cases = append(cases, c)
	}
	return cases, sc.Err()
}

func writeGolden(path string, cases []goldenCase) error {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n\n\n")
		}
		b.WriteString(strconv.Itoa(c.No))
		if c.Name != "" {
			b.WriteString(":" + c.Name)
		}
		b.WriteByte('\n')
		if c.Options != "" {
			b.WriteString(c.Options + "\n")
		}
		b.WriteString(goldenSep + "\n")
		b.WriteString(c.Markdown + "\n")
		b.WriteString(goldenSep + "\n")
		if c.Expected != "" {
			b.WriteString(c.Expected + "\n")
		}
		b.WriteString(goldenCaseSep + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var (
	goldenRenderersMu sync.Mutex
	goldenRenderers   = map[goldenOptions]*Renderer{}
)

// goldenShortcodes is the lookup of the "shortcodes" output: "pair" and "md" take inner
// content, "one" and "figure" do not; any other name is unknown.
func goldenShortcodes(name string) (bool, bool) {
	switch name {
	case "pair", "md":
		return true, true
	case "one", "figure":
		return true, false
	}
	return false, false
}

func goldenRenderer(o goldenOptions) *Renderer {
	opts := Options{Unsafe: o.Unsafe, NoTypographer: o.NoTypographer, LineNumbers: o.LineNumbers}
	key := o
	if o.Output != "shortcodes" {
		key.Output = ""
	} else {
		opts.Shortcodes = goldenShortcodes
	}
	goldenRenderersMu.Lock()
	defer goldenRenderersMu.Unlock()
	r, ok := goldenRenderers[key]
	if !ok {
		r = New(opts)
		goldenRenderers[key] = r
	}
	return r
}

// goldenOutput renders a case and returns what it compares, without one
// trailing newline (the file format cannot tell it).
func goldenOutput(c goldenCase) (string, error) {
	r := goldenRenderer(c.Opts)
	src := []byte(c.Markdown)
	var out []byte
	if c.Opts.Output == "inline" {
		var err error
		if out, err = r.Inline(src); err != nil {
			return "", err
		}
	} else {
		res, err := r.Render(src)
		if c.Opts.Output == "shortcodes" {
			if err != nil {
				return "error: " + err.Error(), nil
			}
			var b strings.Builder
			b.WriteString(strings.ReplaceAll(string(res.Content), "\x00", "|"))
			for i, call := range res.Shortcodes {
				fmt.Fprintf(&b, "call %d: %s at %d:%d markdown=%v parent=%d ordinal=%d pos=%q named=%v inner(%v)=%q\n",
					i, call.Name, call.Line, call.Col, call.Markdown, call.Parent, call.Ordinal, call.Positional, call.Named, call.HasInner, strings.ReplaceAll(call.Inner, "\x00", "|"))
			}
			out = []byte(b.String())
		}
		if err != nil {
			return "", err
		}
		switch c.Opts.Output {
		case "", "content":
			out = res.Content
		case "summary":
			out = res.Summary
		case "toc":
			out = res.TOC
		}
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	for _, file := range files {
		cases, err := readGolden(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) == 0 {
			t.Fatalf("%s: no cases", file)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		changed := false
		t.Run(name, func(t *testing.T) {
			for i := range cases {
				c := &cases[i]
				t.Run(strconv.Itoa(c.No), func(t *testing.T) {
					got, err := goldenOutput(*c)
					if err != nil {
						t.Fatalf("%s:%d: case %d %q: %v", file, c.Line, c.No, c.Name, err)
					}
					if got == c.Expected {
						return
					}
					if *update {
						c.Expected = got
						changed = true
						t.Logf("%s:%d: case %d %q: expected output updated", file, c.Line, c.No, c.Name)
						return
					}
					t.Errorf("%s:%d: case %d %q: output differs\nMarkdown:\n%s\n\n%s",
						file, c.Line, c.No, c.Name, c.Markdown,
						diff.Diff("expected", []byte(c.Expected+"\n"), "got", []byte(got+"\n")))
				})
			}
		})
		if changed {
			if err := writeGolden(file, cases); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestGoldenReader checks that the reader rejects malformed files and
// round-trips through writeGolden, so a broken file cannot pass silently.
func TestReadGolden(t *testing.T) {
	dir := t.TempDir()
	good := "1:one\n" + goldenSep + "\n*a*\n" + goldenSep + "\n<p><em>a</em></p>\n" + goldenCaseSep + "\n\n\n\n" +
		"2:two: with colon\nOPTIONS: {\"unsafe\": true, \"output\": \"summary\"}\n" + goldenSep + "\nx\n\ny\n" + goldenSep + "\n" + goldenCaseSep + "\n"
	p := filepath.Join(dir, "good.txt")
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cases, err := readGolden(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 {
		t.Fatalf("got %d cases, want 2", len(cases))
	}
	if c := cases[0]; c.No != 1 || c.Name != "one" || c.Markdown != "*a*" || c.Expected != "<p><em>a</em></p>" {
		t.Errorf("case 1 = %+v", c)
	}
	if c := cases[1]; c.No != 2 || c.Name != "two: with colon" || !c.Opts.Unsafe || c.Opts.Output != "summary" || c.Markdown != "x\n\ny" || c.Expected != "" {
		t.Errorf("case 2 = %+v", c)
	}
	if err := writeGolden(p, cases); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte(good)) {
		t.Errorf("round trip changed the file:\n%s", diff.Diff("before", []byte(good), "after", b))
	}

	for name, bad := range map[string]string{
		"no number":       "x\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
		"no separator":    "1\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
		"unterminated":    "1\n" + goldenSep + "\na\n" + goldenSep + "\nb\n",
		"bad options":     "1\nOPTIONS: {\"unsafe\": 1}\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
		"unknown option":  "1\nOPTIONS: {\"unsaf\": true}\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
		"unknown output":  "1\nOPTIONS: {\"output\": \"x\"}\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
		"duplicate cases": "1\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n1\n" + goldenSep + "\na\n" + goldenSep + "\nb\n" + goldenCaseSep + "\n",
	} {
		p := filepath.Join(dir, "bad.txt")
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readGolden(p); err == nil {
			t.Errorf("%s: readGolden accepted a malformed file", name)
		}
	}
}
