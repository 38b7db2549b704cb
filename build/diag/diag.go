// Package diag carries positioned errors: every error about user input (config, content,
// templates) names the file, line and column it is about and says what is wrong in one
// plain sentence, formatted as "file:line:col: message".
package diag

import (
	"errors"
	"fmt"
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
	return &c
}

// FromYAML turns an error from goccy/go-yaml into a positioned *Error for file. Errors
// without a position keep their text.
func FromYAML(file string, err error) *Error {
	if err == nil {
		return nil
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

// plainYAMLMessage rewords the library's messages into plain sentences.
func plainYAMLMessage(m string) string {
	m = strings.TrimSpace(m)
	switch {
	case strings.HasPrefix(m, "unknown field"):
		return strings.Replace(m, "unknown field", "unknown key", 1) + " (check the spelling; see docs/config.md)"
	case strings.HasPrefix(m, "cannot unmarshal"):
		return "wrong type: " + m
	}
	return m
}
