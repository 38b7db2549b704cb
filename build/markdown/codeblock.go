package markdown

import (
	"html"
	"math"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/dlclark/regexp2/v2"
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

// disableMatchTimeouts makes highlighting deterministic: the same code block always
// gives the same HTML, however loaded the machine is and however many goroutines
// render at once.
//
// chroma (v2.27.0, the newest) sets a 250ms MatchTimeout on the regular expression of
// every lexer rule, and when a match fails with an error, a timeout included, it goes on
// to the next rule as if the rule had not matched (chroma's matchRules). The timeout is
// wall-clock time, measured by regexp2's coarse clock (one goroutine updating a shared
// time every 100ms), so it counts the time the goroutine spends descheduled: with more
// render goroutines than threads, under -race, under a CPU quota or on a machine busy
// with other work, a match that takes microseconds of CPU is cut off, and the token
// gets another rule's type or becomes an error token (Ruby's puts highlighted as a name,
// class="n", instead of a builtin, class="nb"). Unchanged pages then get new bytes,
// are uploaded again and purged from the CDN.
//
// Neither chroma nor goldmark-highlighting lets a caller set the timeout. regexp2's
// public SetTimeoutCheckPeriod sets how often its clock advances, and a deadline is
// "clock + timeout + period": with a period of about 73 years the clock never advances
// in the life of the process, so no deadline is ever reached and no match is ever cut
// off. It must run before any match starts (the clock goroutine reads the period
// without synchronisation), hence init. It applies to every regexp2 user in the
// process; chroma is the only one in stump.
//
// The cost: a lexer rule that backtracks catastrophically on some input is no longer
// cut off after 250ms; it runs to the end, and highlighting takes as long as the match.
// That is the price of output that does not depend on timing.
func disableMatchTimeouts() {
	regexp2.SetTimeoutCheckPeriod(math.MaxInt64 / 4)
}

func init() { disableMatchTimeouts() }

// chroma's lexer rules must match with the regexp2 whose clock disableMatchTimeouts
// stops: this stops compiling if a chroma upgrade moves to another regexp2 module.
var _ *regexp2.Regexp = chroma.CompiledRule{}.Regexp
