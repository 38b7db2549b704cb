package build

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template/parse"

	"github.com/stump-dev/stump/build/diag"
)

// layoutSrc is one layout file: its text and the path shown in messages.
type layoutSrc struct {
	shown string
	text  string
}

// layouts resolves and compiles a site's layouts (the site's layouts/ over its theme's).
// Compiled templates are cached; Execute on them is safe from many goroutines.
type layouts struct {
	files    map[string]layoutSrc // name under layouts/ → source
	funcs    template.FuncMap
	partials *template.Template
	byName   map[string]string // partial name → template name (its shown path)
	report   *reportState

	// compiled caches parsed layouts by "name|baseof": looked up on every render from
	// many goroutines, so without a lock; each is parsed once.
	compiled sync.Map
}

type compiled struct {
	once  sync.Once
	t     *template.Template
	entry string
	err   error
}

// loadLayouts reads layouts from the theme and the site; a site file replaces the theme
// file of the same name.
func (st *siteState) loadLayouts(funcs template.FuncMap) (*layouts, error) {
	ls := &layouts{files: map[string]layoutSrc{}, funcs: funcs, byName: map[string]string{}, report: st.report}
	addBuiltinShortcodes(ls.files)
	for _, t := range []*tree{st.theme, st.src} {
		files, err := t.walk("layouts", nil)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := f.read()
			if err != nil {
				return nil, err
			}
			ls.files[f.Rel] = layoutSrc{shown: f.Shown, text: string(b)}
		}
	}
	ls.partials = template.New("partials").Funcs(funcs)
	for name, src := range ls.files {
		if !strings.HasPrefix(name, "partials/") {
			continue
		}
		if _, err := ls.partials.New(src.shown).Parse(src.text); err != nil {
			return nil, templateError(err, ls.sources())
		}
		ls.byName[strings.TrimPrefix(name, "partials/")] = src.shown
	}
	return ls, nil
}

// sources maps shown paths to layout text, for error positions.
func (ls *layouts) sources() map[string]string {
	m := make(map[string]string, len(ls.files))
	for _, f := range ls.files {
		m[f.shown] = f.text
	}
	return m
}

// has reports whether a layout exists.
func (ls *layouts) has(name string) bool {
	_, ok := ls.files[name]
	return ok
}

// first returns the first candidate that exists.
func (ls *layouts) first(cands []string) (string, bool) {
	for _, c := range cands {
		if ls.has(c) {
			return c, true
		}
	}
	return "", false
}

// candidates lists the layout names looked up for p, in order.
func candidates(p *Page) []string {
	typ := p.Type
	switch p.Kind {
	case KindHome:
		return []string{"index.html", "home.html", "_default/list.html"}
	case KindSection:
		return []string{typ + "/list.html", typ + "/section.html", "_default/section.html", "_default/list.html"}
	case KindTaxonomy:
		return []string{p.plural + "/taxonomy.html", p.plural + "/terms.html", "_default/taxonomy.html", "_default/terms.html", "_default/list.html"}
	case KindTerm:
		return []string{p.plural + "/term.html", "_default/term.html", "_default/list.html"}
	case Kind404:
		return []string{"404.html"}
	}
	var c []string
	if p.Layout != "" {
		if typ != "" {
			c = append(c, typ+"/"+p.Layout+".html")
		}
		return append(c, "_default/"+p.Layout+".html")
	}
	if typ != "" {
		c = append(c, typ+"/single.html")
	}
	return append(c, "_default/single.html")
}

// forPage returns the compiled template for p and the name to execute.
func (ls *layouts) forPage(p *Page) (*template.Template, string, error) {
	cands := candidates(p)
	name, ok := ls.first(cands)
	if !ok && p.Layout != "" {
		// Hugo's and Jekyll's themes differ: a layout the theme lacks falls back to the
		// section's, then the default single layout, with one warning for all such pages.
		q := *p
		q.Layout = ""
		if name, ok = ls.first(candidates(&q)); ok && ls.report != nil {
			ls.report.layoutMissing(p.Layout, fmt.Sprintf("%s:%d:%d", p.shown, p.layoutLine, p.layoutCol), name)
		}
	}
	if !ok {
		if p.Layout != "" {
			return nil, "", diag.New(p.shown, p.layoutLine, p.layoutCol, "layout %q does not exist (looked for layouts/%s in the site and its theme)", p.Layout, strings.Join(cands, ", layouts/"))
		}
		where := p.shown
		if where == "" {
			where = "the " + p.Kind + " page " + p.urlPath
		}
		return nil, "", diag.New(where, 0, 0, "no layout for this %s page (looked for layouts/%s in the site and its theme)", p.Kind, strings.Join(cands, ", layouts/"))
	}
	baseof, _ := ls.first([]string{p.Type + "/baseof.html", "_default/baseof.html", "baseof.html"})
	return ls.compile(name, baseof)
}

// compile parses a layout, through baseof when the layout only defines blocks.
func (ls *layouts) compile(name, baseof string) (*template.Template, string, error) {
	v, _ := ls.compiled.LoadOrStore(name+"|"+baseof, &compiled{})
	c := v.(*compiled)
	c.once.Do(func() { c.t, c.entry, c.err = ls.parse(name, baseof) })
	return c.t, c.entry, c.err
}

// parse parses layout name, and baseof around it when the layout only defines blocks.
func (ls *layouts) parse(name, baseof string) (*template.Template, string, error) {
	src := ls.files[name]
	t, err := template.New(src.shown).Funcs(ls.funcs).Parse(src.text)
	if err != nil {
		return nil, "", templateError(err, ls.sources())
	}
	if baseof == "" || !onlyDefines(t) {
		return t, src.shown, nil
	}
	b := ls.files[baseof]
	bt, err := template.New(b.shown).Funcs(ls.funcs).Parse(b.text)
	if err == nil {
		_, err = bt.New(src.shown).Parse(src.text)
	}
	if err != nil {
		return nil, "", templateError(err, ls.sources())
	}
	return bt, b.shown, nil
}

// onlyDefines reports whether t's body has nothing but blank text (its content is in
// {{ define }} blocks), so it should run through baseof.
func onlyDefines(t *template.Template) bool {
	if t.Tree == nil || t.Tree.Root == nil {
		return true
	}
	for _, n := range t.Tree.Root.Nodes {
		if tn, ok := n.(*parse.TextNode); ok && len(bytes.TrimSpace(tn.Text)) == 0 {
			continue
		}
		return false
	}
	return len(t.Templates()) > 1
}

// partial executes a partial by name.
func (ls *layouts) partial(name string, ctx any) (template.HTML, error) {
	shown, ok := ls.byName[name]
	if !ok {
		shown, ok = ls.byName[name+".html"]
	}
	if !ok {
		return "", fmt.Errorf("partial %q does not exist in layouts/partials/ of the site or its theme", name)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := ls.partials.ExecuteTemplate(buf, shown, ctx); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

var tmplErrRE = regexp.MustCompile(`^template: (.+?):(\d+)(?::(\d+))?: (?s:(.*))$`)

// templateError turns html/template's "template: file:line:col: msg" into a *diag.Error.
// Nested errors (a partial failing inside a layout) report the innermost position.
func templateError(err error, sources map[string]string) error {
	var d *diag.Error
	if errors.As(err, &d) {
		return err
	}
	msg := err.Error()
	// The innermost template position is the last "template: " in the chain.
	if i := strings.LastIndex(msg, "template: "); i > 0 {
		msg = msg[i:]
	}
	m := tmplErrRE.FindStringSubmatch(msg)
	if m == nil {
		return &diag.Error{Msg: "template: " + strings.TrimPrefix(msg, "template: "), Err: err}
	}
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	text := m[4]
	// "executing "x" at <.Foo>: can't evaluate field Foo in type *build.Page" → plainer.
	if j := strings.Index(text, ">: "); strings.HasPrefix(text, "executing ") && j > 0 {
		at := text[:j+1]
		if k := strings.Index(at, " at <"); k > 0 {
			at = at[k+4:]
		}
		text = text[j+3:] + " (at " + at + ")"
	}
	if col > 0 {
		col++ // html/template counts columns from 0
	} else if src, ok := sources[m[1]]; ok {
		col = guessColumn(src, line, text)
	}
	text = strings.ReplaceAll(text, "*build.Page", "page")
	text = strings.ReplaceAll(text, "*build.Site", "site")
	return &diag.Error{File: m[1], Line: line, Col: col, Msg: text, Err: err}
}

var quotedRE = regexp.MustCompile(`"([^"]+)"|for (\w+)|in (\w+)|unexpected "?([^"\s]+)`)

// guessColumn finds the column of a parse error, which html/template reports by line
// only: the action on that line naming the word the message names, else its first action.
func guessColumn(src string, line int, msg string) int {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	l := lines[line-1]
	if m := quotedRE.FindStringSubmatch(msg); m != nil {
		for _, w := range m[1:] {
			if w == "" {
				continue
			}
			for i := 0; i < len(l); {
				j := strings.Index(l[i:], "{{")
				if j < 0 {
					break
				}
				start := i + j
				end := strings.Index(l[start:], "}}")
				if end < 0 {
					end = len(l) - start
				}
				if strings.Contains(l[start:start+end], w) {
					return start + 1
				}
				i = start + 2
			}
		}
	}
	if j := strings.Index(l, "{{"); j >= 0 {
		return j + 1
	}
	return 0
}
