package markdown

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yuin/goldmark/ast"

	"github.com/stump-dev/stump/internal/codecorpus"
)

func render(t *testing.T, r *Renderer, src string) Result {
	t.Helper()
	res, err := r.Render([]byte(src))
	if err != nil {
		t.Fatalf("Render(%q): %v", src, err)
	}
	return res
}

func TestSummaryDivider(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsafe=%v", unsafe), func(t *testing.T) {
			r := New(Options{Unsafe: unsafe})
			for _, tc := range []struct {
				name, src, summary string
				truncated          bool
			}{
				{"middle", "One.\n\n<!--more-->\n\nTwo.\n", "<p>One.</p>\n", true},
				{"several blocks before", "# T\n\nOne.\n\n- a\n\n<!--more-->\nTwo.\n", "<h1 id=\"t\">T</h1>\n<p>One.</p>\n<ul>\n<li>a</li>\n</ul>\n", true},
				{"last line, no newline", "One.\n\nTwo.\n\n<!--more-->", "<p>One.</p>\n<p>Two.</p>\n", false},
				{"first line", "<!--more-->\n\nOne.\n", "", true},
				{"crlf", "One.\r\n\r\n<!--more-->\r\n\r\nTwo.\r\n", "<p>One.</p>\n", true},
				{"interrupts a paragraph", "One\n<!--more-->\nTwo\n", "<p>One</p>\n", true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					res := render(t, r, tc.src)
					if string(res.Summary) != tc.summary {
						t.Errorf("Summary = %q, want %q", res.Summary, tc.summary)
					}
					if tc.summary == "" && res.Summary != nil {
						t.Errorf("empty Summary is %#v, want nil", res.Summary)
					}
					if res.Truncated != tc.truncated {
						t.Errorf("Truncated = %v, want %v", res.Truncated, tc.truncated)
					}
					if bytes.Contains(res.Content, []byte("more")) || bytes.Contains(res.Content, []byte("omitted")) {
						t.Errorf("Content keeps the divider: %q", res.Content)
					}
					if !bytes.HasPrefix(res.Content, res.Summary) {
						t.Errorf("Summary %q is not a prefix of Content %q", res.Summary, res.Content)
					}
				})
			}
		})
	}
}

func TestSummaryFirstParagraph(t *testing.T) {
	r := New(Options{})
	for _, tc := range []struct {
		name, src, summary string
		truncated          bool
	}{
		{"only paragraph", "Just *one* paragraph.\n", "<p>Just <em>one</em> paragraph.</p>\n", false},
		{"only paragraph, trailing blank lines", "Just one.\n\n\n", "<p>Just one.</p>\n", false},
		{"first of two", "First.\n\nSecond.\n", "<p>First.</p>\n", true},
		{"heading before", "# Title\n\nFirst.\n", "<p>First.</p>\n", true},
		{"list item paragraph is not top-level", "- item\n\nAfter.\n", "<p>After.</p>\n", true},
		{"blockquote paragraph is not top-level", "> quote\n\nAfter.\n", "<p>After.</p>\n", true},
		{"no paragraph", "# Title\n\n- a\n- b\n", "", true},
		{"empty document", "", "", false},
		{"footnote ref in summary, list after", "Text[^1].\n\n[^1]: Note.\n", "<p>Text<sup id=\"fnref:1\"><a href=\"#fn:1\" class=\"footnote-ref\" role=\"doc-noteref\">1</a></sup>.</p>\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := render(t, r, tc.src)
			if string(res.Summary) != tc.summary {
				t.Errorf("Summary = %q, want %q", res.Summary, tc.summary)
			}
			if tc.summary == "" && res.Summary != nil {
				t.Errorf("empty Summary is %#v, want nil", res.Summary)
			}
			if res.Truncated != tc.truncated {
				t.Errorf("Truncated = %v, want %v (content %q)", res.Truncated, tc.truncated, res.Content)
			}
			if !bytes.Contains(res.Content, res.Summary) {
				t.Errorf("Summary %q not in Content %q", res.Summary, res.Content)
			}
		})
	}
}

func TestSummaryAppendDoesNotClobberContent(t *testing.T) {
	res := render(t, New(Options{}), "First.\n\nSecond.\n")
	before := string(res.Content)
	_ = append(res.Summary, "XXXXXXXX"...)
	if string(res.Content) != before {
		t.Fatalf("appending to Summary changed Content: %q", res.Content)
	}
}

func TestContentNoDividerMatchesPlainRender(t *testing.T) {
	// The divider only removes itself: content with it equals content of
	// the source without it.
	r := New(Options{})
	a := render(t, r, "# T\n\nOne [ref].\n\n<!--more-->\n\nTwo[^1].\n\n[ref]: /x\n[^1]: n\n")
	b := render(t, r, "# T\n\nOne [ref].\n\nTwo[^1].\n\n[ref]: /x\n[^1]: n\n")
	if !bytes.Equal(a.Content, b.Content) {
		t.Fatalf("content differs:\n%s\n---\n%s", a.Content, b.Content)
	}
	if want := "<h1 id=\"t\">T</h1>\n<p>One <a href=\"/x\">ref</a>.</p>\n"; string(a.Summary) != want {
		t.Errorf("Summary = %q, want %q (a reference defined after the divider resolves)", a.Summary, want)
	}
}

func TestHeadings(t *testing.T) {
	r := New(Options{})
	src := "# Top\n\n## Élection à Zürich\n\n### The *best* `code` [link](/x) &amp; \"more\"\n\n" +
		"## Élection à Zürich\n\n#### Custom {#mine}\n\n> ## Quoted\n\n###### Six\n\nSetext\n------\n"
	res := render(t, r, src)
	want := []Heading{
		{1, "top", "Top"},
		{2, "élection-à-zürich", "Élection à Zürich"},
		{3, "the-best-code-link-more", "The best code link & “more”"},
		{2, "élection-à-zürich-1", "Élection à Zürich"},
		{4, "mine", "Custom"},
		{2, "quoted", "Quoted"},
		{6, "six", "Six"},
		{2, "setext", "Setext"},
	}
	if !reflect.DeepEqual(res.Headings, want) {
		t.Errorf("Headings =\n%#v\nwant\n%#v", res.Headings, want)
	}
	for _, h := range want {
		if !bytes.Contains(res.Content, []byte(`id="`+h.ID+`"`)) {
			t.Errorf("Content lacks id=%q", h.ID)
		}
	}
	if res := render(t, r, "No headings.\n"); res.Headings != nil {
		t.Errorf("Headings = %#v, want nil", res.Headings)
	}
}

func TestHeadingIDsArePerDocument(t *testing.T) {
	r := New(Options{})
	for i := 0; i < 3; i++ {
		res := render(t, r, "## Intro\n")
		if got := res.Headings[0].ID; got != "intro" {
			t.Fatalf("render %d: ID = %q, want intro (IDs leaked between documents)", i, got)
		}
	}
}

func TestIDs(t *testing.T) {
	s := newIDs()
	s.Put([]byte("taken"))
	for _, tc := range []struct{ in, want string }{
		{"Taken", "taken-1"},
		{"Hello World", "hello-world"},
		{"hello world", "hello-world-1"},
		{"hello-world-2", "hello-world-2"},
		{"Hello, World!", "hello-world-3"},
		{"", "heading"},
		{"***", "heading-1"},
		{"[Go](https://go.dev) <b>rocks</b>", "go-rocks"},
		{"<https://x.org/a>", "https-x-org-a"},
		{`a \* b`, "a-b"},
		{"Tom &amp; Jerry &#169;", "tom-jerry"},
	} {
		if got := string(s.Generate([]byte(tc.in), ast.KindHeading)); got != tc.want {
			t.Errorf("Generate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTOC(t *testing.T) {
	r := New(Options{})
	res := render(t, r, "# T\n\n## A\n\n### A1\n\n## B\n")
	want := "<nav id=\"TableOfContents\">\n<ul>\n<li><a href=\"#a\">A</a>\n<ul>\n<li><a href=\"#a1\">A1</a></li>\n</ul>\n</li>\n<li><a href=\"#b\">B</a></li>\n</ul>\n</nav>"
	if string(res.TOC) != want {
		t.Errorf("TOC =\n%s\nwant\n%s", res.TOC, want)
	}
	for _, src := range []string{"", "text\n", "# Only h1\n", "##### h5\n\n###### h6\n"} {
		if res := render(t, r, src); res.TOC != nil {
			t.Errorf("TOC of %q = %q, want nil", src, res.TOC)
		}
	}

	r = New(Options{TOCStartLevel: 1, TOCEndLevel: 2})
	res = render(t, r, "# T\n\n## A\n\n### A1\n")
	want = "<nav id=\"TableOfContents\">\n<ul>\n<li><a href=\"#t\">T</a>\n<ul>\n<li><a href=\"#a\">A</a></li>\n</ul>\n</li>\n</ul>\n</nav>"
	if string(res.TOC) != want {
		t.Errorf("TOC h1–h2 =\n%s\nwant\n%s", res.TOC, want)
	}
}

// TestTOCWellFormed checks that every <ul>/<li> opened is closed, for
// arbitrary level sequences.
func TestTOCWellFormed(t *testing.T) {
	seqs := [][]int{{2}, {4, 2}, {2, 4, 3, 2}, {3, 2, 4, 4, 2, 3}, {4, 3, 2}, {2, 3, 4, 2, 4}}
	for _, seq := range seqs {
		var hs []Heading
		for i, l := range seq {
			hs = append(hs, Heading{Level: l, ID: fmt.Sprint("h", i), Text: "x"})
		}
		toc := string(buildTOC(hs, 2, 4))
		for _, tag := range []string{"ul", "li"} {
			if o, c := strings.Count(toc, "<"+tag+">"), strings.Count(toc, "</"+tag+">"); o != c {
				t.Errorf("levels %v: %d <%s> but %d </%s>:\n%s", seq, o, tag, c, tag, toc)
			}
		}
		if n := strings.Count(toc, "<a "); n != len(seq) {
			t.Errorf("levels %v: %d links, want %d", seq, n, len(seq))
		}
	}
}

func TestWordCount(t *testing.T) {
	r := New(Options{})
	for _, tc := range []struct {
		src  string
		want int
	}{
		{"", 0},
		{"one", 1},
		{"Hello *wor*ld, this is `code`.", 5},
		{"line one\nline two", 4},
		{"# Heading words\n\npara word", 4},
		{"- a\n- b\n\n| x | y |\n|---|---|\n| z | w |", 6},
		{"```go\nfunc main() {}\n```", 3},
		{"see https://example.org now", 3},
		{"raw <span>html</span> tags", 3},
		{"<div>\nblock html\n</div>\n\nword", 1},
		{"it's \"quoted\" -- ok", 4}, // the dash counts, like strings.Fields of the plain text
		{"Привет мир, 日本語", 3},
		{"a&nbsp;b", 1},
		{"Term\n: Definition here", 3},
		{"x[^1]\n\n[^1]: note words", 3}, // the generated number is not the author's text
	} {
		if got := render(t, r, tc.src).WordCount; got != tc.want {
			t.Errorf("WordCount(%q) = %d, want %d", tc.src, got, tc.want)
		}
	}
}

func TestInline(t *testing.T) {
	r := New(Options{})
	for _, tc := range []struct{ src, want string }{
		{"**bold** and *em*", "<strong>bold</strong> and <em>em</em>"},
		{"a\nb", "a\nb"},
		{"", ""},
		{"one\n\ntwo", "<p>one</p>\n<p>two</p>\n"},
		{"- item", "<ul>\n<li>item</li>\n</ul>\n"},
		{"\"smart\"", "&ldquo;smart&rdquo;"},
		{"x <b>y</b>", "x <!-- raw HTML omitted -->y<!-- raw HTML omitted -->"},
	} {
		got, err := r.Inline([]byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Inline(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
	got, _ := New(Options{Unsafe: true, NoTypographer: true}).Inline([]byte(`x <b>"y"</b>`))
	if want := `x <b>&quot;y&quot;</b>`; string(got) != want {
		t.Errorf("unsafe Inline = %q, want %q", got, want)
	}
}

func TestSlugify(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Hello World", "hello-world"},
		{"  --Hello--World--  ", "hello-world"},
		{"Élection à Zürich", "élection-à-zürich"},
		{"Straße", "straße"},
		{"ÄÖÜ", "äöü"},
		{"Привет, Мир!", "привет-мир"},
		{"日本語 テスト", "日本語-テスト"},
		{"Go 1.26 release", "go-1-26-release"},
		{"snake_case", "snake-case"},
		{"C++ & C#", "c-c"},
		{"a  --  b", "a-b"},
		{"e\u0301te\u0301", "e\u0301te\u0301"}, // combining marks stay
		{"١٢٣ arabic digits", "١٢٣-arabic-digits"},
		{"!!!", ""},
		{"", ""},
		{"emoji 🎉 party", "emoji-party"},
		{"bad \xff utf8", "bad-utf8"},
		{"ΑΒΓ", "αβγ"},
	} {
		if got := Slugify(tc.in); got != tc.want {
			t.Errorf("Slugify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNoInlineStyles(t *testing.T) {
	src := "| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n\n" +
		"```go {hl_lines=[1]}\npackage main\n```\n\n```go {linenos=table}\nx := 1\n```\n\n```nosuch\nz\n```\n"
	for _, o := range []Options{{}, {LineNumbers: true}, {HighlightStyle: "monokai"}} {
		res := render(t, New(o), src)
		if bytes.Contains(res.Content, []byte("style=")) {
			t.Errorf("%+v: inline style in output:\n%s", o, res.Content)
		}
		for _, class := range []string{`class="chroma"`, `class="kn"`, `class="line hl"`, `class="language-go"`} {
			if !bytes.Contains(res.Content, []byte(class)) {
				t.Errorf("%+v: output lacks %s:\n%s", o, class, res.Content)
			}
		}
	}
}

func TestStylesheet(t *testing.T) {
	gh := New(Options{}).Stylesheet()
	for _, want := range []string{".chroma {", ".chroma .kd {", ".chroma .hl {", ".chroma .ln {"} {
		if !bytes.Contains(gh, []byte(want)) {
			t.Errorf("github stylesheet lacks %q", want)
		}
	}
	mono := New(Options{HighlightStyle: "monokai"}).Stylesheet()
	if bytes.Equal(gh, mono) {
		t.Error("monokai stylesheet equals github's")
	}
	if upper := New(Options{HighlightStyle: "Monokai"}).Stylesheet(); !bytes.Equal(upper, mono) {
		t.Error(`"Monokai" is not monokai`)
	}
	if unknown := New(Options{HighlightStyle: "no-such-style"}).Stylesheet(); !bytes.Equal(unknown, gh) {
		t.Error("unknown style does not fall back to github")
	}
	r := New(Options{})
	a := r.Stylesheet()
	a[0] = '!'
	if b := r.Stylesheet(); b[0] == '!' {
		t.Error("Stylesheet returns shared memory")
	}
}

func TestTypographerOption(t *testing.T) {
	on := render(t, New(Options{}), `"a" -- b...`)
	off := render(t, New(Options{NoTypographer: true}), `"a" -- b...`)
	if !bytes.Contains(on.Content, []byte("&ldquo;a&rdquo; &ndash; b&hellip;")) {
		t.Errorf("typographer on: %q", on.Content)
	}
	if !bytes.Contains(off.Content, []byte("&quot;a&quot; -- b...")) {
		t.Errorf("typographer off: %q", off.Content)
	}
}

func TestZeroOptionsSafe(t *testing.T) {
	var o Options
	res := render(t, New(o), "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>\n")
	for _, bad := range []string{"<script", "javascript:", "<img"} {
		if bytes.Contains(res.Content, []byte(bad)) {
			t.Errorf("zero Options let %q through: %s", bad, res.Content)
		}
	}
}

// benchDoc is a realistic ~1 KB page: headings, a list, a table, code.
const benchDoc = `# Rally on the square

The campaign's **first rally** drew a crowd of about 2,000 people to the
old market square on Saturday -- more than the organisers had "hoped for".
See [the announcement](/news/announcement/) for the background.

## Speakers

- Maria Lopez, candidate for mayor
- Jonas Weber, *union representative*
- Élodie Martin, from the neighbourhood council

## Turnout by district

| District | People | Change |
|:---------|-------:|:------:|
| North    | 640    | +12%   |
| Centre   | 910    | +30%   |
| South    | 450    | -5%    |

### How we counted

Volunteers counted at the three entrances; the numbers were checked
against the ticket scanner log[^1]. Next week the team goes door to door
in the southern districts, where turnout was lowest.

<!--more-->

## Running the counter

` + "```go" + `
func count(entries []Entry) (total int) {
	for _, e := range entries {
		total += e.People
	}
	return total
}
` + "```" + `

[^1]: The scanner log is published in the data folder.
`

func TestBenchDoc(t *testing.T) {
	if n := len(benchDoc); n < 900 || n > 1300 {
		t.Errorf("benchDoc is %d bytes, want about 1 KB", n)
	}
	res := render(t, New(Options{}), benchDoc)
	if len(res.Headings) != 5 || res.TOC == nil || !res.Truncated || res.WordCount < 100 {
		t.Errorf("unexpected result: %d headings, toc %v, truncated %v, %d words", len(res.Headings), res.TOC != nil, res.Truncated, res.WordCount)
	}
}

func TestDeterministic(t *testing.T) {
	a := render(t, New(Options{}), benchDoc)
	r := New(Options{})
	for i := 0; i < 5; i++ {
		b := render(t, r, benchDoc)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("render %d differs from the first", i)
		}
	}
}

// TestConcurrentRender renders from many goroutines with one Renderer and checks every
// result against a serial render; run with -race.
//
// "parallel" uses a Renderer that has not rendered anything yet, so goldmark's and
// chroma's lazy initialisation (compiling a lexer's rules on its first use) happens
// under contention. "oversubscribed" runs many more goroutines than threads over code
// blocks in many languages, so that the scheduler parks goroutines for many time slices,
// often in the middle of one of chroma's regular-expression matches: chroma used to
// cut such a match off after 250ms of wall-clock time and take the next rule instead,
// which highlighted Ruby's puts as a plain name (class="n") rather than a builtin
// (class="nb"). See disableMatchTimeouts.
func TestConcurrentRender(t *testing.T) {
	t.Run("parallel", func(t *testing.T) {
		docs := []string{
			benchDoc,
			"## Intro\n\n## Intro\n\nText <!--more--> here.\n",
			// Lexers used by no other test, compiled lazily by chroma.
			"```haskell\nmain = putStrLn \"x\"\n```\n\n```ruby\nputs 'x'\n```\n",
			"| a |\n|---|\n| b |\n\nTerm\n: def\n\n- [x] t\n\n```ocaml\nlet x = 1\n```\n",
		}
		concurrentRender(t, New(Options{LineNumbers: true}), docs, 16, 20, 0)
	})
	t.Run("oversubscribed", func(t *testing.T) {
		var docs []string
		for i := range 13 {
			docs = append(docs, codecorpus.Page(i*2, 2))
		}
		// One thread for 48 goroutines that each render for at least a second: every
		// goroutine is preempted, mostly in the middle of a match, and then waits for
		// the 47 others' time slices of about 10ms each, over 250ms.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		concurrentRender(t, New(Options{}), docs, 48, 1, time.Second)
	})
}

// concurrentRender renders docs from the given number of goroutines, cycling through
// docs, each goroutine for at least minRounds rounds and at least minTime, together with
// Inline and Stylesheet calls, and checks every result against a serial render done
// afterwards.
func concurrentRender(t *testing.T, r *Renderer, docs []string, goroutines, minRounds int, minTime time.Duration) {
	t.Helper()
	got := make([][]Result, goroutines)
	gotInline := make([][][]byte, goroutines)
	errs := make([]error, goroutines)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; i < minRounds || time.Since(start) < minTime; i++ {
				res, err := r.Render([]byte(docs[(g+i)%len(docs)]))
				if err != nil {
					errs[g] = err
					return
				}
				got[g] = append(got[g], res)
				in, err := r.Inline([]byte("*x* `y`"))
				if err != nil {
					errs[g] = err
					return
				}
				gotInline[g] = append(gotInline[g], in)
				_ = r.Stylesheet()
			}
		})
	}
	wg.Wait()

	want := make([]Result, len(docs))
	for i, d := range docs {
		want[i] = render(t, r, d)
	}
	for g := range goroutines {
		if errs[g] != nil {
			t.Fatalf("goroutine %d: %v", g, errs[g])
		}
		for i, res := range got[g] {
			k := (g + i) % len(docs)
			if !reflect.DeepEqual(res, want[k]) {
				t.Errorf("goroutine %d, round %d: doc %d differs from the serial render:\n%s", g, i, k, firstDiff(res.Content, want[k].Content))
			}
			if in := gotInline[g][i]; string(in) != "<em>x</em> <code>y</code>" {
				t.Errorf("goroutine %d, round %d: Inline = %q", g, i, in)
			}
		}
	}
}

// firstDiff describes where a and b first differ: the line of each.
func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines (the content is equal; another field differs)", len(la), len(lb))
}

func BenchmarkRender(b *testing.B) {
	r := New(Options{})
	src := []byte(benchDoc)
	if _, err := r.Render(src); err != nil { // warm up lexers and init
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderParallel(b *testing.B) {
	r := New(Options{})
	src := []byte(benchDoc)
	if _, err := r.Render(src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Render(src); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRenderNoCode is BenchmarkRender without the code block: the
// difference is chroma's share.
func BenchmarkRenderNoCode(b *testing.B) {
	before, rest, ok := strings.Cut(benchDoc, "```go")
	_, after, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		b.Fatal("benchDoc has no Go code block")
	}
	r := New(Options{})
	src := []byte(before + after)
	if res, err := r.Render(src); err != nil || bytes.Contains(res.Content, []byte("chroma")) {
		b.Fatalf("err %v or code block left", err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(src); err != nil {
			b.Fatal(err)
		}
	}
}
