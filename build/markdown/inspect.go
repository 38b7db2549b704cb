package markdown

import (
	"bytes"
	"html"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/util"
)

// inspect walks the AST once for the headings and the word count.
func inspect(doc ast.Node, src []byte) (headings []Heading, words int) {
	var wc wordCounter
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if n.Type() == ast.TypeBlock {
			wc.brk()
		}
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			headings = append(headings, Heading{
				Level: n.Level,
				ID:    attrString(n, "id"),
				Text:  plainText(n, src),
			})
		case *ast.Text:
			wc.feed(n.Value(src))
			if n.SoftLineBreak() || n.HardLineBreak() {
				wc.brk()
			}
		case *ast.String:
			wc.feed(n.Value)
		case *ast.AutoLink:
			wc.feed(n.Label(src))
		case *ast.RawHTML, *ast.HTMLBlock:
			return ast.WalkSkipChildren, nil
		case *ast.CodeBlock, *ast.FencedCodeBlock:
			lines := n.Lines()
			for i := 0; i < lines.Len(); i++ {
				seg := lines.At(i)
				wc.feed(seg.Value(src))
			}
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return headings, wc.n
}

// wordCounter counts runs of non-space characters across text pieces: a
// word may span several inline nodes ("foo**bar**" is one word).
type wordCounter struct {
	n      int
	inWord bool
}

func (w *wordCounter) brk() { w.inWord = false }

func (w *wordCounter) feed(b []byte) {
	for i := 0; i < len(b); {
		c := b[i]
		var space bool
		if c < utf8.RuneSelf {
			i++
			space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
		} else {
			r, size := utf8.DecodeRune(b[i:])
			i += size
			space = unicode.IsSpace(r)
		}
		if space {
			w.inWord = false
		} else if !w.inWord {
			w.inWord = true
			w.n++
		}
	}
}

func attrString(n ast.Node, name string) string {
	v, ok := n.AttributeString(name)
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return ""
}

// plainText returns the text of an inline container as it reads: escapes
// and entities resolved, markup and raw HTML dropped.
func plainText(n ast.Node, src []byte) string {
	var b []byte
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			if c.IsRaw() {
				b = append(b, c.Value(src)...)
			} else {
				b = append(b, unescape(c.Value(src))...)
			}
			if c.SoftLineBreak() || c.HardLineBreak() {
				b = append(b, ' ')
			}
		case *ast.String:
			switch {
			case c.IsCode(): // HTML such as the typographer's "&ldquo;"
				b = append(b, html.UnescapeString(string(c.Value))...)
			case c.IsRaw():
				b = append(b, c.Value...)
			default:
				b = append(b, unescape(c.Value)...)
			}
		case *ast.AutoLink:
			b = append(b, c.Label(src)...)
		case *ast.RawHTML:
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return string(bytes.TrimSpace(b))
}

// unescape resolves backslash escapes and entity references the way
// goldmark's HTML writer does for text.
func unescape(v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 && bytes.IndexByte(v, '&') < 0 {
		return v
	}
	v = util.UnescapePunctuations(v)
	v = util.ResolveNumericReferences(v)
	return util.ResolveEntityNames(v)
}

// buildTOC lists the headings with start <= level <= end as nested <ul>s.
// Nesting is relative to the shallowest listed level; a jump of more than
// one level opens intermediate <li>s without a link. Nil when no heading
// is listed.
func buildTOC(hs []Heading, start, end int) []byte {
	base := 0
	for _, h := range hs {
		if h.Level >= start && h.Level <= end && (base == 0 || h.Level < base) {
			base = h.Level
		}
	}
	if base == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("<nav id=\"TableOfContents\">\n<ul>\n<li>")
	cur, first := base, true
	for _, h := range hs {
		if h.Level < start || h.Level > end {
			continue
		}
		switch {
		case first || h.Level > cur:
			for ; cur < h.Level; cur++ {
				b.WriteString("\n<ul>\n<li>")
			}
		default:
			b.WriteString("</li>\n")
			for ; cur > h.Level; cur-- {
				b.WriteString("</ul>\n</li>\n")
			}
			b.WriteString("<li>")
		}
		b.WriteString(`<a href="#`)
		b.WriteString(html.EscapeString(h.ID))
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(h.Text))
		b.WriteString("</a>")
		first = false
	}
	b.WriteString("</li>\n")
	for ; cur > base; cur-- {
		b.WriteString("</ul>\n</li>\n")
	}
	b.WriteString("</ul>\n</nav>")
	return b.Bytes()
}
