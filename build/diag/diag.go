// Package diag carries positioned errors: every error about user input (config, content,
// templates) names the file, line and column it is about and says what is wrong in one
// plain sentence, formatted as "file:line:col: message".
package diag

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Error is an error at a position in a file. Line and Col are 1-based; zero means unknown
// (then they are left out of the message).
type Error struct {
	File string // path as shown to the user (relative to the workspace where possible)
	Line int
	Col  int
	Msg  string // one plain sentence, no trailing period needed
	Err  error  // the underlying error, if any (for errors.Is/As); not printed
}

// Error formats "file:line:col: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// New returns a positioned error.
func New(file string, line, col int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Shift returns a copy of err with its line moved down by lines (for a document embedded
// in a file, such as front matter after its opening delimiter). A non-*Error is returned
// unchanged.
func Shift(err error, lines int) error {
	var d *Error
	if !errors.As(err, &d) {
		return err
	}
	c := *d
	if c.Line > 0 {
		c.Line += lines
	}
	// Messages that name another position ("already defined at [1:1]") move too.
	c.Msg = shiftPos.ReplaceAllStringFunc(c.Msg, func(m string) string {
		sub := shiftPos.FindStringSubmatch(m)
		l, _ := strconv.Atoi(sub[1])
		return fmt.Sprintf("at %d:%s", l+lines, sub[2])
	})
	return &c
}

// FromYAML turns an error from goccy/go-yaml into a positioned *Error for file. Errors
// without a position keep their text.
func FromYAML(file string, err error) *Error {
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && te.Token != nil && te.Token.Position != nil {
		return &Error{File: file, Line: te.Token.Position.Line, Col: te.Token.Position.Column, Msg: typeMessage(te), Err: err}
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := plainYAMLMessage(ye.GetMessage())
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return &Error{File: file, Line: tk.Position.Line, Col: tk.Position.Column, Msg: msg, Err: err}
		}
		return &Error{File: file, Msg: msg, Err: err}
	}
	return &Error{File: file, Msg: err.Error(), Err: err}
}

// typeMessage says which key has a value of the wrong type, in YAML words.
func typeMessage(te *yaml.TypeError) string {
	key := ""
	// The token before the value is ':', and before that the key.
	if tk := te.Token.Prev; tk != nil && tk.Value == ":" && tk.Prev != nil {
		key = tk.Prev.Value
	} else if tk != nil && tk.Prev != nil && tk.Type.String() == "MappingValue" {
		key = tk.Prev.Value
	}
	want := yamlKind(te.DstType)
	got := fmt.Sprintf("%q", te.Token.Value)
	if key != "" {
		return fmt.Sprintf("wrong type: %s must be %s, not %s", key, want, got)
	}
	return fmt.Sprintf("wrong type: expected %s, not %s", want, got)
}

func yamlKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map of key: value"
	case reflect.Pointer:
		return yamlKind(t.Elem())
	}
	return t.String()
}

var shiftPos = regexp.MustCompile(`at (\d+):(\d+)\b`)

var innerPos = regexp.MustCompile(`at \[(\d+):(\d+)\]`)

// plainYAMLMessage rewords the library's messages into plain sentences.
func plainYAMLMessage(m string) string {
	m = strings.TrimSpace(m)
	switch {
	case strings.HasPrefix(m, "unknown field"):
		return strings.Replace(m, "unknown field", "unknown key", 1) + " (check the spelling; see docs/config.md)"
	case strings.HasPrefix(m, "cannot unmarshal"):
		return "wrong type: " + m
	}
	return innerPos.ReplaceAllString(m, "at $1:$2")
}
