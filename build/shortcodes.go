package build

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/markdown"
)

// builtinShortcodes are the shortcodes every site has; a site's or theme's
// layouts/shortcodes/NAME.html of the same name replaces one (docs/content.md).
//
//go:embed shortcodes/*.html
var builtinShortcodes embed.FS

// ShortcodeContext is "." in a shortcode template (Hugo's names).
type ShortcodeContext struct {
	Name string
	Page *Page
	Site *Site
	// Inner is what stands between the opening and closing tags: raw text for
	// {{< >}}, rendered HTML for {{% %}} (IsMarkdown); nested shortcodes already run.
	Inner      template.HTML
	IsMarkdown bool
	// Ordinal is the rank of this call among its parent's (or the page's) shortcodes.
	Ordinal int
	Parent  *ShortcodeContext
	// Params is a map of named arguments or a list of positional ones.
	Params        any
	IsNamedParams bool
	call          *markdown.Call
	shown         string // the page's file as shown
	line          int    // the call's line in that file
}

// Position is "file:line:col" of the call.
func (c *ShortcodeContext) Position() string {
	return fmt.Sprintf("%s:%d:%d", c.shown, c.line, c.call.Col)
}

// Get returns a positional argument by index or a named one by name; "" when absent.
func (c *ShortcodeContext) Get(key any) any {
	switch k := key.(type) {
	case int:
		if k >= 0 && k < len(c.call.Positional) {
			return c.call.Positional[k]
		}
	case string:
		if v, ok := c.call.Named[k]; ok {
			return v
		}
	}
	return ""
}

// InnerDeindent is Inner (kept for Hugo templates that use it).
func (c *ShortcodeContext) InnerDeindent() template.HTML { return c.Inner }

// addBuiltinShortcodes seeds layouts with the built-in shortcodes (before the theme's and
// the site's layouts, which replace them).
func addBuiltinShortcodes(files map[string]layoutSrc) {
	ents, _ := fs.ReadDir(builtinShortcodes, "shortcodes")
	for _, e := range ents {
		b, _ := builtinShortcodes.ReadFile("shortcodes/" + e.Name())
		// Without the file's last newline, so an inline shortcode adds no line break.
		files["shortcodes/"+e.Name()] = layoutSrc{shown: "(built-in shortcode) " + e.Name(), text: strings.TrimRight(string(b), "\n")}
	}
}

// shortcodeInfo reports whether a shortcode exists and whether its template uses .Inner
// (then a closing tag is looked for).
func (ls *layouts) shortcodeInfo(name string) (exists, inner bool) {
	src, ok := ls.files["shortcodes/"+name+".html"]
	if !ok {
		return false, false
	}
	return true, strings.Contains(src.text, ".Inner")
}

// shortcode returns the compiled template of a shortcode.
func (ls *layouts) shortcode(name string) (*template.Template, error) {
	v, _ := ls.compiled.LoadOrStore("shortcode|"+name, &compiled{})
	c := v.(*compiled)
	c.once.Do(func() {
		src := ls.files["shortcodes/"+name+".html"]
		c.t, c.err = template.New(src.shown).Funcs(ls.funcs).Parse(src.text)
		if c.err != nil {
			c.err = templateError(c.err, ls.sources())
		}
	})
	return c.t, c.err
}

// expandShortcodes runs the shortcodes of pages and puts their output in place of the
// placeholders in Content and Summary. It runs on assembled pages (so .Page, .Site and
// ref see the whole site); the loaded pages keep their placeholders for the next assemble.
func (st *siteState) expandShortcodes(ctx context.Context, pages []*Page) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	errs := make([]error, len(pages))
	for i, p := range pages {
		if len(p.calls) == 0 {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			errs[i] = st.expandPage(p)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return joinErrors(errs)
}

// expandPage runs p's calls, innermost first (a call's nested calls have higher indexes).
func (st *siteState) expandPage(p *Page) error {
	calls := p.calls
	ctxs := make([]*ShortcodeContext, len(calls))
	for i := range calls {
		c := &calls[i]
		line := p.bodyLine + c.Line - 1
		sc := &ShortcodeContext{Name: c.Name, Page: p, Site: p.Site, IsMarkdown: c.Markdown, Ordinal: c.Ordinal,
			call: c, shown: p.shown, line: line}
		if c.Named != nil {
			sc.Params, sc.IsNamedParams = c.Named, true
		} else {
			sc.Params = c.Positional
		}
		if c.Parent >= 0 {
			sc.Parent = ctxs[c.Parent]
		}
		ctxs[i] = sc
	}
	base := pageBase(st.site, p.urlPath)
	out := make([]string, len(calls))
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	for i := len(calls) - 1; i >= 0; i-- {
		c := &calls[i]
		sc := ctxs[i]
		sc.Inner = template.HTML(markdown.ReplacePlaceholders(c.Inner, out))
		t, err := st.layouts.shortcode(c.Name)
		if err != nil {
			return err
		}
		buf.Reset()
		if err := t.Execute(buf, sc); err != nil {
			line := p.bodyLine + c.Line - 1
			return diag.New(p.shown, line, c.Col, "shortcode %q: %s", c.Name, shortcodeErrText(err))
		}
		out[i] = rebaseLinks(buf.String(), base)
	}
	p.Content = template.HTML(markdown.ReplacePlaceholders(string(p.Content), out))
	p.Summary = template.HTML(markdown.ReplacePlaceholders(string(p.Summary), out))
	return nil
}

// shortcodeErrText makes a template execution error short: the errorf text alone, or the
// message with the template position.
func shortcodeErrText(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "error calling "); i >= 0 {
		rest := msg[i+len("error calling "):]
		if j := strings.Index(rest, ": "); j >= 0 {
			return rest[j+2:]
		}
	}
	var d *diag.Error
	if e := templateError(err, nil); errors.As(e, &d) {
		return fmt.Sprintf("%s (in %s:%d)", d.Msg, d.File, d.Line)
	}
	return msg
}

// pageBase is the folder URL of a page, against which relative links resolve.
func pageBase(s *Site, urlPath string) string {
	b := s.relURL(urlPath)
	if !strings.HasSuffix(b, "/") {
		b = path.Dir(b) + "/"
	}
	return b
}

// refIndex finds pages for ref and relref by content path, by path relative to the
// calling page's folder, or by file name when it is unique in the site.
type refIndex struct {
	once   sync.Once
	byBase map[string][]*Page
}

// resolveRef finds the page that ref names from page from; ref may end in "#anchor".
func (st *siteState) resolveRef(from *Page, ref string) (*Page, string, error) {
	target, frag, _ := strings.Cut(strings.TrimSpace(ref), "#")
	if frag != "" {
		frag = "#" + frag
	}
	s := st.site
	if target == "" {
		if from == nil {
			return nil, "", fmt.Errorf("ref %q: an empty path needs a page", ref)
		}
		return from, frag, nil
	}
	if p := s.GetPage(target); p != nil {
		return p, frag, nil
	}
	if from != nil && !strings.HasPrefix(target, "/") {
		dir := path.Dir(from.File)
		if p := s.GetPage(path.Join(dir, target)); p != nil {
			return p, frag, nil
		}
	}
	idx := st.refs()
	if ps := idx.byBase[trimContentExt(path.Base(target))]; len(ps) == 1 {
		return ps[0], frag, nil
	} else if len(ps) > 1 {
		return nil, "", fmt.Errorf("ref %q is ambiguous: %d pages have that name (give the path from content/)", ref, len(ps))
	}
	return nil, "", fmt.Errorf("ref %q: no such page in content/", ref)
}

func (st *siteState) refs() *refIndex {
	idx := st.refIdx
	idx.once.Do(func() {
		idx.byBase = map[string][]*Page{}
		for _, p := range st.pages {
			if p.File == "" {
				continue
			}
			name := trimContentExt(path.Base(p.File))
			if name == "index" || name == "_index" {
				name = path.Base(path.Dir(p.File))
			}
			idx.byBase[name] = append(idx.byBase[name], p)
		}
	})
	return idx
}

// highlight renders code as a highlighted code block of lang (the highlight shortcode).
func (st *siteState) highlight(code any, lang any, _ ...any) (template.HTML, error) {
	s := strings.Trim(fmt.Sprint(code), "\n")
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	l := strings.TrimSpace(fmt.Sprint(lang))
	res, err := st.md.Render([]byte(fence + l + "\n" + s + "\n" + fence + "\n"))
	if err != nil {
		return "", err
	}
	return template.HTML(res.Content), nil
}

// CheckTemplate parses a layout or shortcode template with the template functions stump
// has, so that an importer can tell whether another generator's template will run here.
// It does not execute the template.
func CheckTemplate(name, text string) error {
	st := &siteState{}
	var ls *layouts
	_, err := template.New(name).Funcs(st.funcMap(&ls)).Parse(text)
	return err
}

// BuiltinShortcodes lists the names of the built-in shortcodes.
func BuiltinShortcodes() []string {
	ents, _ := fs.ReadDir(builtinShortcodes, "shortcodes")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".html"))
	}
	return out
}
