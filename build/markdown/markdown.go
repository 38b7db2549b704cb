// Package markdown is the Markdown renderer of the stump build.
//
// It wraps goldmark with a fixed set of extensions (GFM, footnotes,
// definition lists, typographer, heading IDs, chroma highlighting with CSS
// classes, the <!--more--> summary divider, and with Options.Shortcodes
// Hugo-style shortcodes, recorded as calls with placeholders in the HTML for
// the build to run) and returns, besides the HTML, what the build needs about
// a page: its summary, table of contents, headings, shortcodes and word count.
//
// A Renderer is built once and shared: every per-document state (heading
// IDs, buffers) lives in the Render call.
//
// The output depends only on the document and the Options, never on timing:
// the same document renders to the same bytes however many goroutines render
// at once and however loaded the machine is (see disableMatchTimeouts).
package markdown

import (
	"bytes"
	"strings"
	"sync"

	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/styles"
	"github.com/yuin/goldmark"
	highlighting "github.com/yuin/goldmark-highlighting/v2"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
)

// DefaultHighlightStyle is the chroma style used when Options.HighlightStyle
// is empty or names no registered chroma style.
const DefaultHighlightStyle = "github"

// Default heading levels listed in the table of contents.
const (
	DefaultTOCStartLevel = 2
	DefaultTOCEndLevel   = 4
)

// Options configure a Renderer. The zero value is safe (raw HTML omitted).
type Options struct {
	// Unsafe passes raw HTML (blocks and inline tags) through. By default
	// (false) raw HTML is omitted and replaced by goldmark's
	// "<!-- raw HTML omitted -->", and dangerous link URLs are dropped.
	Unsafe bool

	// NoTypographer turns the typographer off. By default (false) it is on:
	// "quotes" and 'quotes' become curly, -- and --- become en and em
	// dashes, ... becomes an ellipsis, << and >> become guillemets.
	NoTypographer bool

	// HighlightStyle is the chroma style name used only by Stylesheet: code
	// blocks are always rendered with CSS classes, never inline styles, so
	// the style does not change Render's output. Matched exactly, then
	// lower-cased; empty or unknown → "github".
	HighlightStyle string

	// LineNumbers renders highlighted code blocks with line numbers (chroma
	// <span class="ln"> inside each line). Code blocks without a known
	// language are plain <pre><code> and never get line numbers.
	LineNumbers bool

	// TOCStartLevel and TOCEndLevel bound the heading levels listed in
	// Result.TOC. Zero means the default: 2 and 4 (h2–h4).
	TOCStartLevel, TOCEndLevel int

	// Shortcodes turns Hugo-style shortcodes on ({{< name args >}}, {{% name %}}):
	// Render records them in Result.Shortcodes and leaves placeholders in the HTML.
	// Nil: shortcode syntax is plain text.
	Shortcodes ShortcodeLookup
}

// Renderer renders Markdown documents. It is safe for concurrent use by
// many goroutines; build one with New and reuse it.
type Renderer struct {
	md       goldmark.Markdown
	style    string
	lineNums bool
	tocStart int
	tocEnd   int

	shortcodes ShortcodeLookup

	cssOnce sync.Once
	css     []byte
}

// Result of rendering one document.
//
// Summary is a sub-slice of Content (capacity-limited, so appending to it
// does not write into Content).
type Result struct {
	// Content is the HTML body. A <!--more--> divider is not part of it.
	Content []byte

	// Summary is the HTML of the content before a "<!--more-->" line (the
	// manual summary) if the document has one, else the first top-level
	// paragraph's HTML ("<p>…</p>\n"). Nil when neither exists or the part
	// before the divider is empty.
	Summary []byte

	// Truncated reports that the summary is shorter than the content: the
	// content holds more than the summary (ignoring white space).
	Truncated bool

	// TOC is `<nav id="TableOfContents"><ul>…</ul></nav>`, nested by heading
	// level (h2–h4 unless Options say otherwise); nil when no heading falls
	// in those levels.
	TOC []byte

	// Headings are all headings (any level) in document order.
	Headings []Heading

	// Shortcodes are the shortcodes of the document; Placeholder(i) stands for the
	// output of Shortcodes[i] in Content and Summary.
	Shortcodes []Call

	// RawHTMLOmitted reports that raw HTML was left out (Options.Unsafe is off).
	RawHTMLOmitted bool

	// WordCount counts the white-space separated words of the plain text:
	// the text of paragraphs, headings, lists, tables, code and so on, not
	// raw HTML.
	WordCount int
}

// Heading is one heading of a document.
type Heading struct {
	Level int    // 1–6
	ID    string // the id attribute, automatic or from {#custom-id}
	Text  string // plain text, entities and escapes resolved, not HTML-escaped
}

// New builds a Renderer. Building it is the costly part; Render reuses it.
func New(opts Options) *Renderer {
	r := &Renderer{
		style:    opts.HighlightStyle,
		lineNums: opts.LineNumbers,
		tocStart: opts.TOCStartLevel,
		tocEnd:   opts.TOCEndLevel,

		shortcodes: opts.Shortcodes,
	}
	if _, ok := styles.Registry[r.style]; !ok {
		r.style = strings.ToLower(r.style) // "Monokai" → "monokai"
		if _, ok := styles.Registry[r.style]; !ok {
			r.style = DefaultHighlightStyle
		}
	}
	if r.tocStart <= 0 {
		r.tocStart = DefaultTOCStartLevel
	}
	if r.tocEnd <= 0 {
		r.tocEnd = DefaultTOCEndLevel
	}

	exts := []goldmark.Extender{
		// GFM (extension.GFM, with table alignment as align attributes:
		// like code highlighting, no inline style attribute that a
		// Content-Security-Policy would block).
		extension.NewTable(extension.WithTableCellAlignMethod(extension.TableCellAlignAttribute)),
		extension.Strikethrough,
		extension.Linkify,
		extension.TaskList,
		extension.Footnote,
		extension.DefinitionList,
		headingIDs{},
		summaryDivider{},
		highlighting.NewHighlighting(r.highlightingOptions()...),
	}
	if opts.Shortcodes != nil {
		exts = append(exts, shortcodes{})
	}
	if !opts.NoTypographer {
		exts = append(exts, extension.Typographer)
	}
	var rendererOpts []renderer.Option
	if opts.Unsafe {
		rendererOpts = append(rendererOpts, html.WithUnsafe())
	}
	r.md = goldmark.New(
		goldmark.WithExtensions(exts...),
		goldmark.WithRendererOptions(rendererOpts...),
	)
	return r
}

// parse parses src with a fresh per-document context (heading IDs).
func (r *Renderer) parse(src []byte) ast.Node {
	pc := parser.NewContext(parser.WithIDs(newIDs()))
	return r.md.Parser().Parse(text.NewReader(src), parser.WithContext(pc))
}

// Render renders one document. The source is not retained. A shortcode that cannot be
// parsed is a *ShortcodeError.
func (r *Renderer) Render(src []byte) (Result, error) {
	var calls []Call
	var scErr *ShortcodeError
	pc := parser.NewContext(parser.WithIDs(newIDs()))
	if r.shortcodes != nil && bytes.Contains(src, []byte("{{")) {
		pc.Set(collectorKey, &collector{r: r, root: src, calls: &calls, err: &scErr, parent: -1})
	}
	doc := r.md.Parser().Parse(text.NewReader(src), parser.WithContext(pc))
	if scErr != nil {
		return Result{}, scErr
	}

	buf := getBuffer()
	defer putBuffer(buf)

	// Render the top-level blocks one by one into the same buffer (the
	// document node itself renders nothing) so that the summary is a byte
	// range of the output: no second rendering.
	divider, pStart, pEnd := -1, -1, -1
	rend := r.md.Renderer()
	for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
		switch c.Kind() {
		case kindSummaryDivider:
			if divider < 0 {
				divider = buf.Len()
			}
			continue
		case ast.KindParagraph:
			if pStart < 0 {
				pStart = buf.Len()
				if err := rend.Render(buf, src, c); err != nil {
					return Result{}, err
				}
				pEnd = buf.Len()
				continue
			}
		}
		if err := rend.Render(buf, src, c); err != nil {
			return Result{}, err
		}
	}

	var res Result
	res.Content = bytes.Clone(buf.Bytes())
	content := res.Content
	switch {
	case divider >= 0:
		res.Summary = content[:divider:divider]
		res.Truncated = hasText(content[divider:])
	case pStart >= 0:
		res.Summary = content[pStart:pEnd:pEnd]
		res.Truncated = hasText(content[:pStart]) || hasText(content[pEnd:])
	default:
		res.Truncated = hasText(content)
	}
	if len(res.Summary) == 0 {
		res.Summary = nil
	}

	if len(calls) > 0 {
		ordinals(calls)
		res.Shortcodes = calls
	}
	res.RawHTMLOmitted = bytes.Contains(content, []byte("<!-- raw HTML omitted -->"))
	res.Headings, res.WordCount = inspect(doc, src)
	res.TOC = buildTOC(res.Headings, r.tocStart, r.tocEnd)
	return res, nil
}

// Inline renders a short Markdown string to HTML without the wrapping <p>
// when it is a single paragraph (for the template func markdownify). Other
// documents (several blocks, a heading, a list…) are rendered whole.
func (r *Renderer) Inline(src []byte) ([]byte, error) {
	doc := r.parse(src)
	buf := getBuffer()
	defer putBuffer(buf)

	rend := r.md.Renderer()
	if p := doc.FirstChild(); p != nil && p.NextSibling() == nil && p.Kind() == ast.KindParagraph {
		for c := p.FirstChild(); c != nil; c = c.NextSibling() {
			if err := rend.Render(buf, src, c); err != nil {
				return nil, err
			}
		}
	} else if err := rend.Render(buf, src, doc); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

// Stylesheet returns the CSS for chroma's classes in the configured style
// (so themes can ship it). The result is a fresh copy.
func (r *Renderer) Stylesheet() []byte {
	r.cssOnce.Do(func() {
		var b bytes.Buffer
		f := chromahtml.New(r.chromaOptions()...)
		// WriteCSS only fails when the writer does; bytes.Buffer does not.
		_ = f.WriteCSS(&b, styles.Get(r.style))
		r.css = b.Bytes()
	})
	return bytes.Clone(r.css)
}

// hasText reports whether b holds anything but white space.
func hasText(b []byte) bool {
	return len(bytes.TrimSpace(b)) > 0
}

// buffer is a bytes.Buffer that satisfies goldmark's util.BufWriter without
// a bufio layer: goldmark writes straight into it, and Len is always the
// exact output offset.
type buffer struct{ bytes.Buffer }

func (b *buffer) Buffered() int { return 0 }
func (b *buffer) Flush() error  { return nil }

var bufferPool = sync.Pool{New: func() any { return new(buffer) }}

// maxPooledBuffer keeps one huge document from pinning its buffer forever.
const maxPooledBuffer = 1 << 20

func getBuffer() *buffer { return bufferPool.Get().(*buffer) }

func putBuffer(b *buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}
