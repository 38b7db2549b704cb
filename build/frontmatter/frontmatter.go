// Package frontmatter splits a content file into its front matter and body and parses
// the front matter (YAML between "---" lines, or TOML between "+++" lines) into a map,
// keeping the position of every top-level key so callers can report a bad value at its
// line and column in the original file.
package frontmatter

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/pelletier/go-toml/v2"

	"github.com/stump-dev/stump/build/diag"
)

// Format is the syntax of a front matter block.
type Format int

// Front matter formats.
const (
	None Format = iota
	YAML
	TOML
)

// Pos is a 1-based line and column in the content file.
type Pos struct{ Line, Col int }

// Doc is a parsed content file.
type Doc struct {
	Format Format
	// Fields are the top-level keys as written (case kept) with their decoded values.
	Fields map[string]any
	// Keys maps each top-level key to the position of its value in the file.
	Keys map[string]Pos
	// Body is the content after the front matter.
	Body []byte
	// BodyLine is the line of the file where Body starts.
	BodyLine int
}

// Pos returns the position of key's value, or the start of the front matter when the
// key is absent.
func (d *Doc) Pos(key string) Pos {
	if p, ok := d.Keys[key]; ok {
		return p
	}
	return Pos{Line: 1, Col: 1}
}

// Parse splits and parses src. file is the path shown in errors. A file without front
// matter is all body. An opened but unterminated block, invalid YAML/TOML, or a block that
// is not a mapping is a positioned *diag.Error.
func Parse(file string, src []byte) (*Doc, error) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	delim, format := "", None
	switch {
	case hasDelimLine(src, "---"):
		delim, format = "---", YAML
	case hasDelimLine(src, "+++"):
		delim, format = "+++", TOML
	default:
		return &Doc{Body: src, BodyLine: 1, Fields: map[string]any{}, Keys: map[string]Pos{}}, nil
	}
	// The block starts on line 2.
	rest := src[firstLineLen(src):]
	end, endLen := findClose(rest, delim, format)
	if end < 0 {
		return nil, diag.New(file, 1, 1, "front matter opened with %q is never closed (add a %q line after it)", delim, delim)
	}
	block := rest[:end]
	body := rest[end+endLen:]
	d := &Doc{Format: format, Body: body, BodyLine: 2 + bytes.Count(block, []byte("\n")) + 1}
	var err error
	switch format {
	case YAML:
		err = d.parseYAML(file, block)
	case TOML:
		err = d.parseTOML(file, block)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func hasDelimLine(src []byte, delim string) bool {
	line := src[:firstLineLen(src)]
	return string(bytes.TrimRight(line, " \t\r\n")) == delim
}

func firstLineLen(src []byte) int {
	if i := bytes.IndexByte(src, '\n'); i >= 0 {
		return i + 1
	}
	return len(src)
}

// findClose returns the offset of the closing delimiter line in rest and its length
// (newline included), or -1.
func findClose(rest []byte, delim string, format Format) (int, int) {
	off := 0
	for off <= len(rest) {
		n := firstLineLen(rest[off:])
		line := strings.TrimRight(string(rest[off:off+n]), " \t\r\n")
		if line == delim || (format == YAML && line == "...") {
			return off, n
		}
		if n == 0 {
			break
		}
		off += n
	}
	return -1, 0
}

func (d *Doc) parseYAML(file string, block []byte) error {
	if fields, keys, ok := fastYAML(block); ok {
		d.Fields, d.Keys = fields, keys
		return nil
	}
	return d.parseYAMLLibrary(file, block)
}

// parseYAMLLibrary parses a YAML block with the YAML library (any YAML, positioned
// errors).
func (d *Doc) parseYAMLLibrary(file string, block []byte) error {
	d.Fields = map[string]any{}
	d.Keys = map[string]Pos{}
	if len(bytes.TrimSpace(block)) == 0 {
		return nil
	}
	f, err := parser.ParseBytes(block, 0)
	if err != nil {
		return diag.Shift(diag.FromYAML(file, err), 1)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil
	}
	body := f.Docs[0].Body
	var values []*ast.MappingValueNode
	switch m := body.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	case *ast.CommentNode:
		return nil
	default:
		tk := body.GetToken()
		return diag.New(file, tk.Position.Line+1, tk.Position.Column, "front matter must be a list of `key: value` lines")
	}
	for _, mv := range values {
		key := mv.Key.String()
		var v any
		if err := yaml.NodeToValue(mv.Value, &v); err != nil {
			return diag.Shift(diag.FromYAML(file, err), 1)
		}
		d.Fields[key] = normalize(v)
		tk := mv.Value.GetToken()
		if tk == nil || tk.Position == nil {
			tk = mv.Key.GetToken()
		}
		d.Keys[key] = Pos{Line: tk.Position.Line + 1, Col: tk.Position.Column}
	}
	return nil
}

var tomlKey = regexp.MustCompile(`^\s*("[^"]+"|'[^']+'|[A-Za-z0-9_-]+)\s*=\s*`)

func (d *Doc) parseTOML(file string, block []byte) error {
	d.Fields = map[string]any{}
	d.Keys = map[string]Pos{}
	if err := toml.Unmarshal(block, &d.Fields); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return &diag.Error{File: file, Line: row + 1, Col: col, Msg: "TOML front matter: " + firstLine(de.Error()), Err: err}
		}
		return &diag.Error{File: file, Line: 2, Col: 1, Msg: "TOML front matter: " + err.Error(), Err: err}
	}
	for k, v := range d.Fields {
		d.Fields[k] = normalize(v)
	}
	// Positions of top-level keys: lines before the first [table].
	for i, line := range strings.Split(string(block), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			break
		}
		if m := tomlKey.FindStringSubmatchIndex(line); m != nil {
			key := strings.Trim(line[m[2]:m[3]], `"'`)
			d.Keys[key] = Pos{Line: i + 2, Col: m[1] + 1}
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Normalize turns values decoded from YAML, TOML or JSON into the plain Go values
// templates compare easily: maps become map[string]any, whole numbers int.
func Normalize(v any) any { return normalize(v) }

func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	case uint64:
		if t <= 1<<62 {
			return int(t)
		}
	case int64:
		return int(t)
	}
	return v
}
