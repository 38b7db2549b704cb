package markdown

import (
	"bytes"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// moreDivider is the manual summary divider.
var moreDivider = []byte("<!--more-->")

// kindSummaryDivider is the node kind of the <!--more--> divider.
var kindSummaryDivider = ast.NewNodeKind("SummaryDivider")

// dividerNode marks where the summary ends. It renders nothing, so the
// divider is absent from the output whether raw HTML is allowed or not.
type dividerNode struct{ ast.BaseBlock }

func (n *dividerNode) Kind() ast.NodeKind { return kindSummaryDivider }

func (n *dividerNode) Dump(source []byte, level int) { ast.DumpHelper(n, source, level, nil, nil) }

// summaryDivider is the extension for the <!--more--> divider: a line of
// its own holding only "<!--more-->" (CommonMark parses it as an HTML
// block, which may interrupt a paragraph) at the top level of the document.
// The first such block becomes a dividerNode; Render cuts the summary
// there. A <!--more--> inside a code block, a list or a line of text is not
// a divider.
type summaryDivider struct{}

func (summaryDivider) Extend(m goldmark.Markdown) {
	m.Parser().AddOptions(parser.WithASTTransformers(util.Prioritized(dividerTransformer{}, 100)))
	m.Renderer().AddOptions(renderer.WithNodeRenderers(util.Prioritized(dividerRenderer{}, 100)))
}

type dividerTransformer struct{}

func (dividerTransformer) Transform(doc *ast.Document, reader text.Reader, _ parser.Context) {
	src := reader.Source()
	for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
		if hb, ok := c.(*ast.HTMLBlock); ok && isDivider(hb, src) {
			doc.ReplaceChild(doc, c, &dividerNode{})
			return
		}
	}
}

func isDivider(hb *ast.HTMLBlock, src []byte) bool {
	if hb.HTMLBlockType != ast.HTMLBlockType2 {
		return false
	}
	lines := hb.Lines()
	var seg text.Segment
	switch {
	case lines.Len() == 1 && !hb.HasClosure():
		seg = lines.At(0)
	case lines.Len() == 0 && hb.HasClosure():
		seg = hb.ClosureLine
	default:
		return false
	}
	v := seg.Value(src)
	return bytes.Equal(bytes.TrimSpace(v), moreDivider)
}

type dividerRenderer struct{}

func (dividerRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(kindSummaryDivider, func(util.BufWriter, []byte, ast.Node, bool) (ast.WalkStatus, error) {
		return ast.WalkSkipChildren, nil
	})
}
