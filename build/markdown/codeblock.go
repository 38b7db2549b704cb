package markdown

import (
	"html"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	highlighting "github.com/yuin/goldmark-highlighting/v2"
	"github.com/yuin/goldmark/util"
)

// classesOnlyStyle is the chroma style code blocks are rendered with. With
// CSS classes the HTML does not depend on the style (class names come from
// chroma.StandardTypes), but chroma computes the style's CSS for every
// block (goldmark-highlighting makes a new formatter per block): an empty
// style makes that nearly free. The configured style is used by
// Stylesheet only.
var classesOnlyStyle = chroma.MustNewStyle("stump-classes-only", chroma.StyleEntries{})

// highlightingOptions configure goldmark-highlighting: chroma with CSS
// classes (never inline styles), the language as a class on <code> in both
// the highlighted and the plain case, and a newline after every block.
func (r *Renderer) highlightingOptions() []highlighting.Option {
	return []highlighting.Option{
		highlighting.WithCustomStyle(classesOnlyStyle),
		highlighting.WithFormatOptions(r.chromaOptions()...),
		highlighting.WithCodeBlockOptions(codeBlockOptions),
		highlighting.WithWrapperRenderer(wrapCodeBlock),
	}
}

func (r *Renderer) chromaOptions() []chromahtml.Option {
	return []chromahtml.Option{
		chromahtml.WithClasses(true),
		chromahtml.WithLineNumbers(r.lineNums),
	}
}

// codeBlockOptions adds the language to chroma's <pre><code> wrapper.
func codeBlockOptions(ctx highlighting.CodeBlockContext) []chromahtml.Option {
	lang, ok := ctx.Language()
	if !ok || len(lang) == 0 {
		return nil
	}
	return []chromahtml.Option{chromahtml.WithPreWrapper(langPreWrapper(html.EscapeString(string(lang))))}
}

// langPreWrapper is chroma's default <pre><code> wrapper with
// class="language-X" data-lang="X" on <code> (X already HTML-escaped).
type langPreWrapper string

func (l langPreWrapper) Start(code bool, styleAttr string) string {
	if code {
		return `<pre` + styleAttr + `><code class="language-` + string(l) + `" data-lang="` + string(l) + `">`
	}
	return `<pre` + styleAttr + `>`
}

func (l langPreWrapper) End(code bool) string {
	if code {
		return `</code></pre>`
	}
	return `</pre>`
}

// wrapCodeBlock ends a highlighted block with a newline (chroma writes
// none) and writes the wrapper of a block chroma does not highlight
// (no or unknown language): <pre><code class="language-X">, escaped code.
func wrapCodeBlock(w util.BufWriter, ctx highlighting.CodeBlockContext, entering bool) {
	if ctx.Highlighted() {
		if !entering {
			_ = w.WriteByte('\n')
		}
		return
	}
	if !entering {
		_, _ = w.WriteString("</code></pre>\n")
		return
	}
	_, _ = w.WriteString("<pre><code")
	if lang, ok := ctx.Language(); ok && len(lang) > 0 {
		_, _ = w.WriteString(` class="language-`)
		_, _ = w.WriteString(html.EscapeString(string(lang)))
		_ = w.WriteByte('"')
	}
	_ = w.WriteByte('>')
}
