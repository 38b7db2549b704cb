package markdown

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
)

// headingIDs is the extension that gives headings IDs: automatic ones and
// {#custom-id} attributes. The IDs themselves come from the parser
// context's parser.IDs, which Render sets to a fresh *ids per document.
type headingIDs struct{}

func (headingIDs) Extend(m goldmark.Markdown) {
	m.Parser().AddOptions(parser.WithAutoHeadingID(), parser.WithAttribute())
}

// ids implements parser.IDs for one document: IDs made with Slugify, unique
// within the document ("x", "x-1", "x-2"…), avoiding custom IDs already Put.
// It is not safe for concurrent use; each document gets its own.
type ids struct {
	used map[string]struct{}
	next map[string]int // last suffix used per base id
}

var _ parser.IDs = (*ids)(nil)

func newIDs() *ids {
	return &ids{used: make(map[string]struct{}), next: make(map[string]int)}
}

// Generate makes an ID from the raw Markdown of a heading line (goldmark
// passes the source, before inline parsing).
func (s *ids) Generate(value []byte, kind ast.NodeKind) []byte {
	base := Slugify(headingSourceText(value))
	if base == "" {
		if kind == ast.KindHeading {
			base = "heading"
		} else {
			base = "id"
		}
	}
	id := base
	if _, dup := s.used[id]; dup {
		n := s.next[base]
		for {
			n++
			id = base + "-" + strconv.Itoa(n)
			if _, dup := s.used[id]; !dup {
				break
			}
		}
		s.next[base] = n
	}
	s.used[id] = struct{}{}
	return []byte(id)
}

// Put records an ID set explicitly ({#custom-id}).
func (s *ids) Put(value []byte) {
	s.used[string(value)] = struct{}{}
}

// headingSourceText approximates the visible text of a raw Markdown heading
// line: link destinations and reference labels, HTML tags, and the
// emphasis/code markers *, ~ and ` are dropped; entities are resolved.
// Everything else is left to Slugify, which turns punctuation into '-'.
func headingSourceText(v []byte) string {
	if !strings.ContainsAny(string(v), "[]<&*~`\\") {
		return string(v)
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '\\':
			if i+1 < len(v) && isASCIIPunct(v[i+1]) {
				i++
				b.WriteByte(v[i])
			} else {
				b.WriteByte(c)
			}
		case '*', '~', '`':
			// emphasis, strikethrough, code span markers
		case ']':
			// [text](destination) or [text][label]: keep text, drop the rest.
			if i+1 < len(v) && (v[i+1] == '(' || v[i+1] == '[') {
				if end := matchingClose(v, i+1); end > 0 {
					i = end
					continue
				}
			}
			b.WriteByte(c)
		case '<':
			end := indexByteFrom(v, i+1, '>')
			if end < 0 || i+1 >= len(v) || !isTagStart(v[i+1]) {
				b.WriteByte(c)
				continue
			}
			inner := v[i+1 : end]
			if isAutolink(inner) {
				b.Write(inner)
			}
			i = end
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}
	return s
}

// matchingClose returns the index of the bracket closing the one at open
// ('(' or '['), or -1.
func matchingClose(v []byte, open int) int {
	o := v[open]
	cl := byte(')')
	if o == '[' {
		cl = ']'
	}
	depth := 0
	for j := open; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case o:
			depth++
		case cl:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func indexByteFrom(v []byte, from int, c byte) int {
	for j := from; j < len(v); j++ {
		if v[j] == c {
			return j
		}
	}
	return -1
}

func isTagStart(c byte) bool {
	return c == '/' || c == '!' || c == '?' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// isAutolink tells <https://…> and <me@example.org> apart from tags.
func isAutolink(inner []byte) bool {
	s := string(inner)
	return !strings.ContainsAny(s, " \t\"'") && (strings.Contains(s, ":") || strings.Contains(s, "@"))
}

func isASCIIPunct(c byte) bool {
	return ('!' <= c && c <= '/') || (':' <= c && c <= '@') || ('[' <= c && c <= '`') || ('{' <= c && c <= '~')
}

// Slugify makes a heading ID / URL slug: it lower-cases, keeps Unicode
// letters and digits (é, ü, ß, Cyrillic, CJK stay; combining marks stay
// with their letter), turns each run of other characters into a single '-',
// and trims '-' at both ends. "Élection à Zürich!" → "élection-à-zürich".
// The result is "" when s has no letter or digit. The build uses the same
// rule for taxonomy term slugs.
func Slugify(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				sep = true
				continue
			}
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteByte(c)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
