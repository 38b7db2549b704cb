package diag

import (
	"errors"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    *Error
		want string
	}{
		{New("a.md", 3, 7, "date %q is not a date", "x"), `a.md:3:7: date "x" is not a date`},
		{New("a.md", 3, 0, "bad"), "a.md:3: bad"},
		{New("a.md", 0, 0, "bad"), "a.md: bad"},
		{New("", 0, 0, "bad"), "bad"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestShift(t *testing.T) {
	e := &Error{File: "a.md", Line: 2, Col: 1, Msg: `mapping key "title" already defined at 1:1`}
	got := Shift(e, 1).Error()
	if got != `a.md:3:1: mapping key "title" already defined at 2:1` {
		t.Errorf("got %q", got)
	}
	plain := errors.New("x")
	if Shift(plain, 1) != plain {
		t.Error("a plain error changed")
	}
}

func TestFromYAML(t *testing.T) {
	var v struct {
		N int `yaml:"n"`
	}
	err := yaml.UnmarshalWithOptions([]byte("n: many\n"), &v, yaml.DisallowUnknownField())
	d := FromYAML("s.yaml", err)
	if d.Line != 1 || d.Col != 4 || d.Msg != `wrong type: n must be a whole number, not "many"` {
		t.Errorf("got %+v", d)
	}
	err = yaml.UnmarshalWithOptions([]byte("m: 1\n"), &v, yaml.DisallowUnknownField())
	if d := FromYAML("s.yaml", err); d.Line != 1 || d.Col != 1 || d.Msg[:11] != "unknown key" {
		t.Errorf("got %+v", d)
	}
	if !errors.Is(FromYAML("s.yaml", err), err) {
		t.Error("the cause is not wrapped")
	}
}
