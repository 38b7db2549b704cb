package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes every page's layout in parallel and adds the results, the feeds, the
// sitemap, robots.txt, the 404 page, aliases, redirects, bundle files and static files to
// st.out.
func (st *siteState) render(ctx context.Context, ls *layouts) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	errs := make([]error, len(st.pages))
	for i, p := range st.pages {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			errs[i] = st.renderPage(ls, p)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := joinErrors(errs); err != nil {
		return err
	}
	return st.renderExtras(ls)
}

// renderPage renders p (and, for lists whose template asked for .Paginator, its further
// pagers) and its feed and aliases.
func (st *siteState) renderPage(ls *layouts, p *Page) error {
	if p.redirectTo != "" {
		to := p.redirectTo
		if strings.HasPrefix(to, "/") {
			to = st.site.relURL(to)
		}
		if err := st.out.add(&outFile{path: p.outPath, data: redirectHTML(to, to), class: classPage,
			redirect: to, from: describe(p) + " (redirect_to)", owner: p.owner()}); err != nil {
			return err
		}
		for _, a := range p.Aliases {
			if err := st.alias(cleanURL(a), p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := st.renderPager(ls, p, 0); err != nil {
		return err
	}
	if p.paginated != nil && p.paginated.Load() && len(p.pagers) > 1 {
		for i := 1; i < len(p.pagers); i++ {
			if err := st.renderPager(ls, p, i); err != nil {
				return err
			}
		}
		if err := st.alias(p.urlPath+"page/1/", p); err != nil {
			return err
		}
	}
	if err := st.renderFeed(p); err != nil {
		return err
	}
	for _, a := range p.Aliases {
		if err := st.alias(cleanURL(a), p); err != nil {
			return err
		}
	}
	return nil
}

// renderPager renders pager i of list p (0 is p itself at its own URL; regular pages
// have only 0).
func (st *siteState) renderPager(ls *layouts, p *Page, i int) error {
	t, entry, err := ls.forPage(p)
	if err != nil {
		return err
	}
	pg, out := p, p.outPath
	if i > 0 {
		cp := *p
		cp.pager = p.pagers[i]
		pg, out = &cp, pagerPath(p, i)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	lent := false
	defer func() {
		if !lent {
			bufPool.Put(buf)
		}
	}()
	if err := t.ExecuteTemplate(buf, entry, pg); err != nil {
		e := templateError(err, nil)
		var d *diag.Error
		if errors.As(e, &d) && p.shown != "" {
			d.Msg += " (while rendering " + p.shown + ")"
		}
		return e
	}
	f := &outFile{path: out, class: classPage, from: describe(p), page: p, owner: p.owner()}
	switch {
	case st.cfg.Minify:
		f.data = buf.Bytes()
		if m, err := st.minifier.Bytes("text/html", f.data); err == nil {
			f.data = m
		} else {
			f.data = bytes.Clone(f.data)
		}
	case st.out.lend:
		// The writer returns the buffer to the pool once the page is on disk.
		f.data, f.buf, lent = buf.Bytes(), buf, true
	default:
		f.data = bytes.Clone(buf.Bytes())
	}
	return st.out.add(f)
}

// pagerPath is where pager i (from 1) of list p is written.
func pagerPath(p *Page, i int) string {
	return outPathFor(p.urlPath + "page/" + strconv.Itoa(i+1) + "/")
}

// renderFeed writes the feed of a list page (nothing for other pages).
func (st *siteState) renderFeed(p *Page) error {
	if p.OutputFeed == "" {
		return nil
	}
	var feed []byte
	var err error
	self := st.site.absURL(strings.TrimPrefix(p.OutputFeed, strings.TrimSuffix(st.site.base.Path, "/")))
	name := "index.xml"
	if st.cfg.Feeds == "atom" {
		feed, err = st.atom(p, self)
		name = "atom.xml"
	} else {
		feed, err = st.rss(p, self)
	}
	if err != nil {
		return err
	}
	return st.out.add(&outFile{path: strings.TrimPrefix(p.urlPath, "/") + name, data: feed, class: classPage, from: describe(p), page: p, owner: p.owner()})
}

// alias writes a redirect page at urlPath pointing to p.
func (st *siteState) alias(urlPath string, p *Page) error {
	return st.out.add(&outFile{
		path: outPathFor(urlPath), data: redirectHTML(p.RelPermalink, p.Permalink), class: classPage,
		redirect: p.RelPermalink, from: describe(p) + " (alias " + urlPath + ")", owner: p.owner(),
	})
}

// renderExtras adds what is not a content page.
func (st *siteState) renderExtras(ls *layouts) error {
	// 404 page.
	nf := &Page{Kind: Kind404, Title: "Page not found", urlPath: "/404.html", outPath: "404.html", Site: st.site, Params: map[string]any{}, Terms: map[string][]*Term{}}
	nf.RelPermalink = st.site.relURL("404.html")
	nf.Permalink = st.site.absURL("404.html")
	if ls.has("404.html") {
		if err := st.renderPage(ls, nf); err != nil {
			return err
		}
	} else if err := st.out.add(&outFile{path: "404.html", data: []byte(default404), class: classPage}); err != nil {
		return err
	}
	for _, r := range st.cfg.Redirects {
		target := r.To
		if strings.HasPrefix(target, "/") {
			target = st.site.relURL(target)
		}
		if err := st.out.add(&outFile{path: outPathFor(cleanURL(r.From)), data: redirectHTML(target, target), class: classPage, redirect: target, from: st.cfg.File + " (redirect " + r.From + ")"}); err != nil {
			return err
		}
	}
	for _, c := range st.bundled {
		src := c.src
		if err := st.out.add(&outFile{path: c.out, src: &src, class: classStatic, from: c.src.Shown}); err != nil {
			return err
		}
	}
	for rel, f := range st.staticByRel {
		f := f
		if st.out.has(rel) && (rel == "robots.txt" || rel == "sitemap.xml" || rel == "404.html") {
			continue
		}
		if err := st.out.add(&outFile{path: rel, src: &f, class: classStatic, from: f.Shown}); err != nil {
			return err
		}
	}
	sitemapOn := st.cfg.Sitemap == nil || *st.cfg.Sitemap
	if sitemapOn && !st.out.has("sitemap.xml") {
		b, err := st.sitemap()
		if err != nil {
			return err
		}
		if err := st.out.add(&outFile{path: "sitemap.xml", data: b, class: classPage}); err != nil {
			return err
		}
	}
	if (st.cfg.Robots == nil || *st.cfg.Robots) && !st.out.has("robots.txt") {
		if err := st.out.add(&outFile{path: "robots.txt", data: st.robots(sitemapOn), class: classPage}); err != nil {
			return err
		}
	}
	if st.cfg.CheckLinks != config.LinksOff {
		return st.checkLinks(st.cfg.CheckLinks == config.LinksError || st.opts.Strict)
	}
	return nil
}

const default404 = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Page not found</title></head><body><h1>Page not found</h1><p><a href="/">Go to the home page</a></p></body></html>
`

// linkMissing reports whether link is under the site's base and names nothing the
// build writes.
func (st *siteState) linkMissing(link, base string) bool {
	if !strings.HasPrefix(link, base) || strings.HasPrefix(link, "//") {
		return false
	}
	rel := strings.TrimPrefix(link, base)
	if u, err := url.PathUnescape(rel); err == nil {
		rel = u // /tags/saint-%C3%A9loi/ is written as tags/saint-éloi/
	}
	switch {
	case rel == "" || strings.HasSuffix(rel, "/"):
		rel += "index.html"
	case path.Ext(rel) == "":
		rel += "/index.html"
	}
	return !st.out.has(rel)
}

// checkLinks reports root-relative links in pages to paths the build does not write:
// as errors (fail) or as warnings in the build's report. A link that is not in the
// page's own source (a menu entry, a param) is blamed once on site.yaml.
func (st *siteState) checkLinks(fail bool) error {
	base := st.site.base.Path
	var errs []error
	report := func(e error) {
		if fail {
			errs = append(errs, e)
		} else {
			st.report.warn("%s", e.Error())
		}
	}
	fromConfig := map[string]bool{}
	var cfgSrc []byte
	// Each distinct target is resolved once: fine (elsewhere, or built) or missing.
	// No page is added after rendering, so the table is read without its lock.
	links := st.out.links.list
	const unknown, fine, missing = 0, 1, 2
	state := make([]int8, len(links))
	for _, f := range st.out.sorted() {
		// Rendered pages only: a bundle's own .html files are copied from the source,
		// and the writer may be reading them in at this moment.
		if f.page == nil || f.class != classPage || f.src != nil || f.redirect != "" || !strings.HasSuffix(f.path, ".html") {
			continue
		}
		for _, id := range f.links {
			link := links[id]
			if state[id] == unknown {
				state[id] = fine
				if st.linkMissing(link, base) {
					state[id] = missing
				}
			}
			if state[id] == fine {
				continue
			}
			p := f.page
			i := bytes.Index(p.srcBody, []byte(link))
			if i < 0 && st.cfg.File != "" {
				// Not written in this page: from the site's config (a menu, a param)?
				if cfgSrc == nil {
					cfgSrc, _ = os.ReadFile(filepath.Join(st.ws.Root, filepath.FromSlash(st.cfg.File)))
				}
				if j := bytes.Index(cfgSrc, []byte(link)); j >= 0 {
					if !fromConfig[link] {
						fromConfig[link] = true
						line, col := lineCol(cfgSrc, j)
						report(diag.New(st.cfg.File, line, col, "links to %s (in every page that shows it), but no page or file is built there", link))
					}
					continue
				}
			}
			line, col := 0, 0
			if i >= 0 {
				line, col = lineCol(p.srcBody, i)
				line += p.bodyLine - 1
			}
			where := p.shown
			if where == "" {
				where = "/" + f.path
			}
			report(diag.New(where, line, col, "links to %s, but no page or file is built there", link))
		}
	}
	if err := joinErrors(errs); err != nil {
		return fmt.Errorf("link check: %w", err)
	}
	return nil
}
