package markdown

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// ShortcodeLookup tells the parser whether a shortcode exists and whether it takes inner
// content (its template uses .Inner): only those are searched for a closing tag.
type ShortcodeLookup func(name string) (exists, inner bool)

// Call is one shortcode found in a document by Render. The build executes it and puts
// its output where Placeholder(i) stands in Result.Content and Result.Summary.
type Call struct {
	Name string
	// Line and Col (1-based) are where "{{" of the opening tag is in the document.
	Line, Col int
	// Markdown is set for the {{% %}} form: Inner is then rendered HTML; otherwise Inner
	// is the raw text between the tags.
	Markdown bool
	// Inner holds placeholders for nested calls. HasInner reports a closing tag.
	Inner    string
	HasInner bool
	// Positional or Named arguments (a shortcode uses one form, never both).
	Positional []string
	Named      map[string]string
	// Parent is the index of the enclosing call, or -1. Ordinal counts the calls before
	// this one with the same parent.
	Parent  int
	Ordinal int
}

// ShortcodeError is a shortcode that cannot be parsed: unknown, unclosed, or with a bad
// argument. Line and Col are in the document.
type ShortcodeError struct {
	Line, Col int
	Name      string
	Msg       string
}

func (e *ShortcodeError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%d:%d: shortcode: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%d:%d: shortcode %q: %s", e.Line, e.Col, e.Name, e.Msg)
}

// Placeholder is what stands for call i in rendered HTML until the build replaces it.
// It holds NUL bytes, which never come out of rendered Markdown (goldmark replaces them).
func Placeholder(i int) string { return "\x00sc" + strconv.Itoa(i) + "\x00" }

// ReplacePlaceholders replaces every placeholder in s by out[i] (also in the URL-escaped
// form "%00scN%00" a link destination gets).
func ReplacePlaceholders(s string, out []string) string {
	if strings.Contains(s, "%00sc") {
		s = escapedPlaceholderRE.ReplaceAllStringFunc(s, func(m string) string {
			return Placeholder(atoi(m[5 : len(m)-3]))
		})
	}
	if !strings.Contains(s, "\x00sc") {
		return s
	}
	var b bytes.Buffer
	b.Grow(len(s))
	for {
		i := bytesIndex(s, "\x00sc")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + 3
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(s[i+3 : j])
		if err != nil || j >= len(s) || s[j] != 0 || n >= len(out) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(out[n])
		s = s[j+1:]
	}
}

func bytesIndex(s, sub string) int { return strings.Index(s, sub) }

var escapedPlaceholderRE = regexp.MustCompile(`%00sc[0-9]+%00`)

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// collector gathers the calls of one Render. Nested Markdown inner content is rendered
// with a view of the same collector whose base is the inner text's offset in root.
type collector struct {
	r      *Renderer
	root   []byte // the document, for line and column
	calls  *[]Call
	err    **ShortcodeError
	base   int // offset of the source being parsed within root
	parent int
}

var collectorKey = parser.NewContextKey()

func (c *collector) fail(off int, name, format string, args ...any) {
	if *c.err != nil {
		return
	}
	line, col := lineColAt(c.root, c.base+off)
	*c.err = &ShortcodeError{Line: line, Col: col, Name: name, Msg: fmt.Sprintf(format, args...)}
}

func lineColAt(src []byte, off int) (int, int) {
	off = min(off, len(src))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// tag is one parsed shortcode tag.
type tag struct {
	start, end int // the tag's bytes in src
	markdown   bool
	closing    bool
	selfClose  bool
	literal    string // for the comment form {{</* x */>}}: the text shown
	name       string
	positional []string
	named      map[string]string
}

// isShortcodeStart reports "{{<" or "{{%" at src[i:].
func isShortcodeStart(src []byte, i int) bool {
	return i+2 < len(src) && src[i] == '{' && src[i+1] == '{' && (src[i+2] == '<' || src[i+2] == '%')
}

type tagError struct {
	off  int
	name string
	msg  string
}

// scanTag parses the tag at src[i:], which starts with "{{<" or "{{%".
func scanTag(src []byte, i int) (tag, *tagError) {
	t := tag{start: i, markdown: src[i+2] == '%'}
	closer := ">}}"
	if t.markdown {
		closer = "%}}"
	}
	j := i + 3
	skip := func() {
		for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || src[j] == '\r') {
			j++
		}
	}
	skip()
	if bytes.HasPrefix(src[j:], []byte("/*")) {
		end := bytes.Index(src[j:], []byte("*/"+closer))
		if end < 0 {
			return t, &tagError{off: i, msg: "the comment form {{</* ... */>}} is never closed with */" + closer}
		}
		t.literal = string(src[i:i+3]) + string(src[j+2:j+end]) + closer
		t.end = j + end + 2 + len(closer)
		return t, nil
	}
	if j < len(src) && src[j] == '/' {
		t.closing = true
		j++
		skip()
	}
	n := j
	for j < len(src) && (isNameByte(src[j])) {
		j++
	}
	t.name = string(src[n:j])
	if t.name == "" {
		if bytes.HasPrefix(src[j:], []byte(closer)) || j >= len(src) {
			return t, &tagError{off: i, msg: "a shortcode tag needs a name, like {{< figure src=\"x.jpg\" >}}"}
		}
		return t, &tagError{off: i, msg: fmt.Sprintf("%q cannot start a shortcode name", src[j])}
	}
	for {
		skip()
		if j >= len(src) {
			return t, &tagError{off: i, name: t.name, msg: "the tag is never closed (add " + closer + ")"}
		}
		if bytes.HasPrefix(src[j:], []byte(closer)) {
			t.end = j + 3
			return t, nil
		}
		if src[j] == '/' && bytes.HasPrefix(src[j+1:], []byte(closer)) {
			t.selfClose = true
			t.end = j + 4
			return t, nil
		}
		if t.closing {
			return t, &tagError{off: j, name: t.name, msg: "a closing tag takes no arguments"}
		}
		if other := []byte("%}}"); t.markdown {
			other = []byte(">}}")
			if bytes.HasPrefix(src[j:], other) {
				return t, &tagError{off: j, name: t.name, msg: "opened with {{% but closed with >}}"}
			}
		} else if bytes.HasPrefix(src[j:], other) {
			return t, &tagError{off: j, name: t.name, msg: "opened with {{< but closed with %}}"}
		}
		at := j
		v, quoted, e := scanValue(src, &j, closer)
		if e != nil {
			e.name = t.name
			return t, e
		}
		if !quoted && j < len(src) && src[j] == '=' {
			j++
			if j >= len(src) || src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || bytes.HasPrefix(src[j:], []byte(closer)) {
				return t, &tagError{off: at, name: t.name, msg: fmt.Sprintf("argument %s= has no value (write %s=\"value\")", v, v)}
			}
			val, _, e := scanValue(src, &j, closer)
			if e != nil {
				e.name = t.name
				return t, e
			}
			if len(t.positional) > 0 {
				return t, &tagError{off: at, name: t.name, msg: "named and positional arguments cannot be mixed"}
			}
			if t.named == nil {
				t.named = map[string]string{}
			}
			t.named[v] = val
			continue
		}
		if t.named != nil {
			return t, &tagError{off: at, name: t.name, msg: "named and positional arguments cannot be mixed"}
		}
		t.positional = append(t.positional, v)
	}
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/'
}

// scanValue reads a "quoted" (with \ escapes), `raw` or bare argument at src[*j:].
func scanValue(src []byte, j *int, closer string) (string, bool, *tagError) {
	start := *j
	switch src[start] {
	case '"':
		var b []byte
		k := start + 1
		for ; k < len(src) && src[k] != '"'; k++ {
			if src[k] == '\\' && k+1 < len(src) {
				k++
			}
			if src[k] == '\n' {
				return "", false, &tagError{off: start, msg: "a quoted argument is not closed on its line (add \")"}
			}
			b = append(b, src[k])
		}
		if k >= len(src) {
			return "", false, &tagError{off: start, msg: "a quoted argument is never closed (add \")"}
		}
		*j = k + 1
		return string(b), true, nil
	case '`':
		k := bytes.IndexByte(src[start+1:], '`')
		if k < 0 {
			return "", false, &tagError{off: start, msg: "a `raw` argument is never closed (add `)"}
		}
		*j = start + 1 + k + 1
		return string(src[start+1 : start+1+k]), true, nil
	}
	k := start
	for k < len(src) && src[k] != ' ' && src[k] != '\t' && src[k] != '\n' && src[k] != '\r' && src[k] != '=' &&
		!bytes.HasPrefix(src[k:], []byte(closer)) && !(src[k] == '/' && bytes.HasPrefix(src[k+1:], []byte(closer))) {
		if src[k] == '"' {
			return "", false, &tagError{off: k, msg: "a quote inside an unquoted argument (quote the whole value)"}
		}
		k++
	}
	if k == start {
		return "", false, &tagError{off: start, msg: fmt.Sprintf("unexpected %q in the tag", src[start])}
	}
	*j = k
	return string(src[start:k]), false, nil
}

// span is one whole shortcode construct: its opening tag and, for paired shortcodes,
// the inner text and closing tag.
type span struct {
	open       tag
	innerStart int
	innerEnd   int
	end        int
	paired     bool
}

// measure finds the construct starting at src[i:] (no further than limit) without
// recording anything.
func (c *collector) measure(src []byte, i, limit int) (span, *tagError) {
	t, e := scanTag(src[:limit], i)
	if e != nil {
		return span{}, e
	}
	sp := span{open: t, end: t.end}
	if t.literal != "" {
		return sp, nil
	}
	if t.closing {
		return sp, &tagError{off: i, name: t.name, msg: "closing tag without an opening tag"}
	}
	exists, inner := c.r.shortcodes(t.name)
	if !exists {
		return sp, &tagError{off: i, name: t.name, msg: "unknown shortcode (no layouts/shortcodes/" + t.name + ".html in the site or its theme, and no built-in of that name)"}
	}
	if !inner || t.selfClose {
		return sp, nil
	}
	depth := 0
	for k := t.end; k < limit; k++ {
		if !isShortcodeStart(src, k) {
			continue
		}
		u, e := scanTag(src[:limit], k)
		if e != nil || u.literal != "" {
			continue
		}
		if u.name == t.name && u.closing {
			if depth == 0 {
				sp.paired, sp.innerStart, sp.innerEnd, sp.end = true, t.end, k, u.end
				return sp, nil
			}
			depth--
		} else if u.name == t.name && !u.selfClose {
			depth++
		}
		k = u.end - 1
	}
	return sp, &tagError{off: i, name: t.name, msg: "never closed (add {{< /" + t.name + " >}} after its content, or close the tag itself with />}})"}
}

// record adds the construct's call (and its nested calls) and returns what the output
// holds in its place.
func (c *collector) record(src []byte, sp span) string {
	t := sp.open
	if t.literal != "" {
		return html.EscapeString(t.literal)
	}
	line, col := lineColAt(c.root, c.base+t.start)
	idx := len(*c.calls)
	*c.calls = append(*c.calls, Call{Name: t.name, Line: line, Col: col, Markdown: t.markdown,
		Positional: t.positional, Named: t.named, Parent: c.parent, HasInner: sp.paired})
	if sp.paired {
		inner := src[sp.innerStart:sp.innerEnd]
		child := &collector{r: c.r, root: c.root, calls: c.calls, err: c.err, base: c.base + sp.innerStart, parent: idx}
		var s string
		if t.markdown {
			s = child.renderMarkdown(inner)
		} else {
			s = child.expandRaw(inner)
		}
		(*c.calls)[idx].Inner = s
	}
	return Placeholder(idx)
}

// renderMarkdown renders inner Markdown with this collector.
func (c *collector) renderMarkdown(src []byte) string {
	pc := parser.NewContext(parser.WithIDs(newIDs()))
	pc.Set(collectorKey, c)
	doc := c.r.md.Parser().Parse(text.NewReader(src), parser.WithContext(pc))
	var b bytes.Buffer
	if err := c.r.md.Renderer().Render(&b, src, doc); err != nil {
		c.fail(0, "", "%v", err)
	}
	return b.String()
}

// expandRaw replaces the shortcodes nested in raw inner text by placeholders.
func (c *collector) expandRaw(src []byte) string {
	if !bytes.Contains(src, []byte("{{")) {
		return string(src)
	}
	var b bytes.Buffer
	last := 0
	for k := 0; k < len(src); k++ {
		if !isShortcodeStart(src, k) {
			continue
		}
		sp, e := c.measure(src, k, len(src))
		if e != nil {
			c.fail(e.off, e.name, "%s", e.msg)
			return string(src)
		}
		b.Write(src[last:k])
		b.WriteString(c.record(src, sp))
		last = sp.end
		k = sp.end - 1
	}
	b.Write(src[last:])
	return b.String()
}

// Nodes.

var (
	kindShortcodeBlock  = ast.NewNodeKind("ShortcodeBlock")
	kindShortcodeInline = ast.NewNodeKind("ShortcodeInline")
)

type shortcodeBlock struct {
	ast.BaseBlock
	out string // placeholder or escaped literal
	end int    // offset in the source just after the construct
}

func (n *shortcodeBlock) Kind() ast.NodeKind          { return kindShortcodeBlock }
func (n *shortcodeBlock) Dump(src []byte, level int)  { ast.DumpHelper(n, src, level, nil, nil) }
func (n *shortcodeBlock) IsRaw() bool                 { return true }
func (n *shortcodeInline) Kind() ast.NodeKind         { return kindShortcodeInline }
func (n *shortcodeInline) Dump(src []byte, level int) { ast.DumpHelper(n, src, level, nil, nil) }

type shortcodeInline struct {
	ast.BaseInline
	out string
}

// shortcodes is the extension: a block parser for a shortcode that stands alone on its
// line(s), an inline parser for one inside text. Neither runs inside code spans or code
// blocks (their parsers own that text), and both consume the whole tag, so the
// typographer never sees its quotes. Without a collector in the parse context (Inline)
// both decline, and the text stays as written.
type shortcodes struct{}

func (shortcodes) Extend(m goldmark.Markdown) {
	m.Parser().AddOptions(
		parser.WithBlockParsers(util.Prioritized(scBlockParser{}, 50)),
		parser.WithInlineParsers(util.Prioritized(scInlineParser{}, 50)),
		parser.WithASTTransformers(util.Prioritized(scLinkTransformer{}, 50)),
	)
	m.Renderer().AddOptions(renderer.WithNodeRenderers(util.Prioritized(scRenderer{}, 100)))
}

type scBlockParser struct{}

func (scBlockParser) Trigger() []byte { return []byte{'{'} }

func (scBlockParser) Open(parent ast.Node, reader text.Reader, pc parser.Context) (ast.Node, parser.State) {
	c, _ := pc.Get(collectorKey).(*collector)
	if c == nil {
		return nil, parser.NoChildren
	}
	line, seg := reader.PeekLine()
	pos, _ := util.IndentWidth(line, reader.LineOffset())
	if pos >= 4 {
		return nil, parser.NoChildren
	}
	src := reader.Source()
	i := seg.Start + util.TrimLeftSpaceLength(line)
	if !isShortcodeStart(src, i) {
		return nil, parser.NoChildren
	}
	sp, e := c.measure(src, i, len(src))
	if e != nil {
		c.fail(e.off, e.name, "%s", e.msg)
		return nil, parser.NoChildren
	}
	// A block only when nothing follows the construct on its last line.
	k := sp.end
	for k < len(src) && (src[k] == ' ' || src[k] == '\t' || src[k] == '\r') {
		k++
	}
	if k < len(src) && src[k] != '\n' {
		return nil, parser.NoChildren
	}
	n := &shortcodeBlock{out: c.record(src, sp), end: sp.end}
	reader.AdvanceToEOL()
	return n, parser.NoChildren
}

func (scBlockParser) Continue(node ast.Node, reader text.Reader, pc parser.Context) parser.State {
	n := node.(*shortcodeBlock)
	line, seg := reader.PeekLine()
	if line == nil || seg.Start >= n.end {
		return parser.Close
	}
	reader.AdvanceToEOL()
	return parser.Continue | parser.NoChildren
}

func (scBlockParser) Close(ast.Node, text.Reader, parser.Context) {}
func (scBlockParser) CanInterruptParagraph() bool                 { return true }
func (scBlockParser) CanAcceptIndentedLine() bool                 { return false }

type scInlineParser struct{}

func (scInlineParser) Trigger() []byte { return []byte{'{'} }

func (scInlineParser) Parse(parent ast.Node, block text.Reader, pc parser.Context) ast.Node {
	c, _ := pc.Get(collectorKey).(*collector)
	if c == nil {
		return nil
	}
	_, seg := block.PeekLine()
	src := block.Source()
	i := seg.Start
	if !isShortcodeStart(src, i) {
		return nil
	}
	limit := seg.Stop
	if lines := parent.Lines(); lines != nil && lines.Len() > 0 {
		limit = max(limit, lines.At(lines.Len()-1).Stop)
	}
	sp, e := c.measure(src, i, limit)
	if e != nil {
		c.fail(e.off, e.name, "%s", e.msg)
		return nil
	}
	n := &shortcodeInline{out: c.record(src, sp)}
	for {
		line, s := block.PeekLine()
		if line == nil || sp.end <= s.Stop {
			block.Advance(sp.end - s.Start)
			break
		}
		block.AdvanceLine()
	}
	return n
}

// scLinkTransformer makes links of [text]({{< ref "x" >}}): a link destination with
// spaces is not a link to CommonMark, so the shortcode was parsed as inline text between
// "[text](" and ")". The link's destination is the placeholder (rendered URL-escaped,
// which ReplacePlaceholders also knows).
type scLinkTransformer struct{}

func (scLinkTransformer) Transform(doc *ast.Document, reader text.Reader, pc parser.Context) {
	if pc.Get(collectorKey) == nil {
		return
	}
	var found []*shortcodeInline
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if s, ok := n.(*shortcodeInline); ok && entering {
			found = append(found, s)
		}
		return ast.WalkContinue, nil
	})
	src := reader.Source()
	for _, sc := range found {
		linkShortcode(sc, src)
	}
}

func linkShortcode(sc *shortcodeInline, src []byte) {
	prev, ok1 := sc.PreviousSibling().(*ast.Text)
	next, ok2 := sc.NextSibling().(*ast.Text)
	if !ok1 || !ok2 || !bytes.HasSuffix(prev.Segment.Value(src), []byte("](")) || !bytes.HasPrefix(next.Segment.Value(src), []byte(")")) {
		return
	}
	parent := sc.Parent()
	// The opening "[": in prev before "](", or in a text node before it.
	var open *ast.Text
	at := -1
	if v := prev.Segment.Value(src); bytes.LastIndexByte(v[:len(v)-2], '[') >= 0 {
		open, at = prev, prev.Segment.Start+bytes.LastIndexByte(v[:len(v)-2], '[')
	} else {
		for n := prev.PreviousSibling(); n != nil; n = n.PreviousSibling() {
			if t, ok := n.(*ast.Text); ok {
				if i := bytes.LastIndexByte(t.Segment.Value(src), '['); i >= 0 {
					open, at = t, t.Segment.Start+i
					break
				}
			}
		}
	}
	if open == nil {
		return
	}
	image := at > open.Segment.Start && src[at-1] == '!'
	link := ast.NewLink()
	link.Destination = []byte(sc.out)
	var node ast.Node = link
	if image {
		node = ast.NewImage(link)
	}
	if open == prev {
		if label := text.NewSegment(at+1, prev.Segment.Stop-2); label.Len() > 0 {
			node.AppendChild(node, ast.NewTextSegment(label))
		}
	} else {
		if label := text.NewSegment(at+1, open.Segment.Stop); label.Len() > 0 {
			node.AppendChild(node, ast.NewTextSegment(label))
		}
		for n := open.NextSibling(); n != nil && n != ast.Node(prev); {
			nx := n.NextSibling()
			parent.RemoveChild(parent, n)
			node.AppendChild(node, n)
			n = nx
		}
		if label := text.NewSegment(prev.Segment.Start, prev.Segment.Stop-2); label.Len() > 0 {
			node.AppendChild(node, ast.NewTextSegment(label))
		}
		parent.RemoveChild(parent, prev)
	}
	stop := at
	if image {
		stop--
	}
	parent.InsertAfter(parent, open, node)
	if open == prev {
		open.Segment = text.NewSegment(open.Segment.Start, stop)
	} else {
		open.Segment = open.Segment.WithStop(stop)
	}
	parent.RemoveChild(parent, sc)
	next.Segment = next.Segment.WithStart(next.Segment.Start + 1)
}

type scRenderer struct{}

func (scRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(kindShortcodeBlock, func(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			_, _ = w.WriteString(n.(*shortcodeBlock).out)
			_ = w.WriteByte('\n')
		}
		return ast.WalkSkipChildren, nil
	})
	reg.Register(kindShortcodeInline, func(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			_, _ = w.WriteString(n.(*shortcodeInline).out)
		}
		return ast.WalkSkipChildren, nil
	})
}

// ordinals sets each call's Ordinal: its rank, in document order, among the calls with
// the same parent (blocks are parsed before the text inside them, so the index order is
// not the document order).
func ordinals(calls []Call) {
	order := make([]int, len(calls))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := calls[order[a]], calls[order[b]]
		if x.Line != y.Line {
			return x.Line < y.Line
		}
		return x.Col < y.Col
	})
	count := map[int]int{}
	for _, i := range order {
		calls[i].Ordinal = count[calls[i].Parent]
		count[calls[i].Parent]++
	}
}
