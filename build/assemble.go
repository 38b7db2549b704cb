package build

import (
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/markdown"
)

// assemble links loaded pages into the site: home, sections, taxonomies, menus, lists,
// neighbours, pagers and feeds. It checks that no two outputs share a URL.
func (st *siteState) assemble() error {
	s := st.site
	s.byPath = map[string]*Page{}
	st.refIdx = &refIndex{}
	s.Sections, s.RegularPages = nil, nil
	sections := map[string]*Page{} // by content dir ("" is home)
	var regular, local []*Page
	// Work on copies of the loaded pages: assemble links them to each other.
	st.pages = make([]*Page, 0, len(st.loaded)+64)
	for _, lp := range st.loaded {
		cp := *lp
		cp.Terms = map[string][]*Term{}
		cp.Pages, cp.RegularPages, cp.Parent, cp.Prev, cp.Next = nil, nil, nil, nil, nil
		cp.pager, cp.pagers, cp.paginated = nil, nil, nil
		st.pages = append(st.pages, &cp)
	}
	for _, p := range st.pages {
		p.Site = s
		switch p.Kind {
		case KindHome:
			sections[""] = p
			s.byPath[""] = p
		case KindSection:
			sections[p.dir] = p
			s.byPath[p.dir] = p
		default:
			key := trimContentExt(p.File)
			key = strings.TrimSuffix(key, "/index")
			s.byPath[key] = p
			switch {
			case p.noList:
				// Found by GetPage and ref, in no list.
			case p.listLocal:
				local = append(local, p)
			default:
				regular = append(regular, p)
			}
		}
	}
	if sections[""] == nil {
		h := &Page{Kind: KindHome, Title: s.Title, urlPath: "/", Params: map[string]any{}, Terms: map[string][]*Term{}, Site: s}
		sections[""] = h
		s.byPath[""] = h
		st.pages = append(st.pages, h)
	}
	home := sections[""]
	if home.Title == "" {
		home.Title = s.Title
	}
	s.Home = home
	// Every folder holding pages is a section, with or without _index.md.
	var ensure func(dir string) *Page
	ensure = func(dir string) *Page {
		if sec, ok := sections[dir]; ok {
			return sec
		}
		base := path.Base(dir)
		sec := &Page{
			Kind: KindSection, Title: humanize(base), dir: dir, urlPath: "/" + lowerPath(dir) + "/",
			Section: strings.SplitN(dir, "/", 2)[0], Params: map[string]any{}, Terms: map[string][]*Term{}, Site: s,
		}
		sec.Type = sec.Section
		sections[dir] = sec
		s.byPath[dir] = sec
		st.pages = append(st.pages, sec)
		return sec
	}
	for _, p := range append(regular, local...) {
		if p.dir != "" {
			ensure(p.dir)
		}
	}
	// Parents of sections (nested sections need their parents too).
	dirs := make([]string, 0, len(sections))
	for d := range sections {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		for x := path.Dir(d); d != "" && x != "."; x = path.Dir(x) {
			ensure(x)
		}
	}
	for d, sec := range sections {
		if sec.Title == "" {
			sec.Title = humanize(path.Base(d))
		}
		if d == "" {
			continue
		}
		parentDir := path.Dir(d)
		if parentDir == "." {
			parentDir = ""
		}
		sec.Parent = sections[parentDir]
		sec.Parent.Pages = append(sec.Parent.Pages, sec)
		if parentDir == "" {
			s.Sections = append(s.Sections, sec)
		}
	}
	for _, p := range append(regular, local...) {
		p.Parent = sections[p.dir]
		if p.dir != "" {
			p.Parent.Pages = append(p.Parent.Pages, p)
			p.Parent.RegularPages = append(p.Parent.RegularPages, p)
		}
	}
	sortPages(regular)
	s.RegularPages = regular
	st.regular = regular
	for _, sec := range sections {
		sortPages(sec.Pages)
		sortPages(sec.RegularPages)
		// Neighbours among the section's regular pages.
		for i, p := range sec.RegularPages {
			if i > 0 {
				p.Prev = sec.RegularPages[i-1]
			}
			if i+1 < len(sec.RegularPages) {
				p.Next = sec.RegularPages[i+1]
			}
		}
	}
	// Home lists every regular page.
	home.Pages = regular
	home.RegularPages = regular
	sortPages(s.Sections)
	st.assembleTaxonomies()
	st.assembleMenus()
	// Permalinks, pagers, feeds.
	feedFile := "index.xml"
	if st.cfg.Feeds == "atom" {
		feedFile = "atom.xml"
	}
	for _, p := range st.pages {
		if p.IsNode() && p.Lastmod.IsZero() {
			// A list changes when its newest page does.
			for _, x := range listPages(p) {
				if x.Lastmod.After(p.Lastmod) {
					p.Lastmod = x.Lastmod
				}
			}
		}
		p.RelPermalink = s.relURL(p.urlPath)
		p.Permalink = s.absURL(p.urlPath)
		p.outPath = outPathFor(p.urlPath)
		if p.IsNode() {
			if st.cfg.Feeds != "none" && p.Kind != KindTaxonomy {
				p.OutputFeed = s.relURL(p.urlPath + feedFile)
			}
			if p.Kind != KindTaxonomy {
				st.paginate(p)
			}
		}
		if p.Kind != KindPage {
			if p.Params == nil {
				p.Params = map[string]any{}
			}
		}
	}
	s.Feed = home.OutputFeed
	for _, ts := range s.Taxonomies {
		for _, t := range ts {
			t.RelPermalink = t.page.RelPermalink
			t.Permalink = t.page.Permalink
		}
	}
	for _, m := range s.Menus {
		for _, e := range m {
			if e.Page != nil {
				e.URL = e.Page.RelPermalink
			} else if strings.HasPrefix(e.URL, "/") {
				e.URL = s.relURL(e.URL)
			}
		}
	}
	// Pages that are not rendered keep their URL (lists and ref may name it) but write
	// nothing.
	kept := st.pages[:0]
	for _, p := range st.pages {
		if !p.noRender {
			kept = append(kept, p)
		}
	}
	st.pages = kept
	return st.checkCollisions()
}

// assembleTaxonomies builds terms and their pages from the pages' raw term names.
func (st *siteState) assembleTaxonomies() {
	s := st.site
	s.Taxonomies = map[string][]*Term{}
	s.TaxonomyNames = st.cfg.TaxonomyOrder
	for _, plural := range st.cfg.TaxonomyOrder {
		bySlug := map[string]*Term{}
		for _, p := range st.regular {
			seen := map[string]bool{}
			for _, name := range p.rawTerms[plural] {
				slug := markdown.Slugify(name)
				if slug == "" || seen[slug] {
					continue
				}
				seen[slug] = true
				t := bySlug[slug]
				if t == nil {
					t = &Term{Name: name, Slug: slug, Plural: plural}
					bySlug[slug] = t
				} else if name < t.Name {
					t.Name = name
				}
				t.Pages = append(t.Pages, p)
				p.Terms[plural] = append(p.Terms[plural], t)
			}
		}
		if len(bySlug) == 0 {
			continue
		}
		terms := make([]*Term, 0, len(bySlug))
		for _, t := range bySlug {
			terms = append(terms, t)
		}
		sort.Slice(terms, func(i, j int) bool { return terms[i].Slug < terms[j].Slug })
		tax := &Page{
			Kind: KindTaxonomy, Title: humanize(plural), urlPath: "/" + plural + "/", plural: plural,
			Params: map[string]any{}, Terms: map[string][]*Term{}, Site: s, Type: plural,
		}
		st.pages = append(st.pages, tax)
		for _, t := range terms {
			sortPages(t.Pages)
			u := "/" + plural + "/" + t.Slug + "/"
			if pat := st.cfg.Permalinks[plural]; pat != "" {
				u = expandPermalink(pat, permalinkVars{slug: t.Slug, title: t.Name, section: plural, dir: plural, filename: t.Slug, stripped: t.Slug})
			}
			tp := &Page{
				Kind: KindTerm, Title: t.Name, urlPath: u, plural: plural, term: t,
				Pages: t.Pages, RegularPages: t.Pages, Parent: tax, Params: map[string]any{}, Terms: map[string][]*Term{}, Site: s, Type: plural,
			}
			t.page = tp
			st.pages = append(st.pages, tp)
		}
		s.Taxonomies[plural] = terms
	}
	for _, p := range st.regular {
		for _, ts := range p.Terms {
			sort.Slice(ts, func(i, j int) bool { return ts[i].Slug < ts[j].Slug })
		}
	}
}

// assembleMenus merges site.yaml menus with the pages that add themselves to a menu.
func (st *siteState) assembleMenus() {
	s := st.site
	s.Menus = map[string][]*MenuEntry{}
	for name, entries := range st.cfg.Menus {
		for _, e := range entries {
			s.Menus[name] = append(s.Menus[name], &MenuEntry{Name: e.Name, URL: e.URL, Weight: e.Weight, Identifier: e.Identifier})
		}
	}
	for _, p := range st.pages {
		for _, pm := range p.menus {
			e := &MenuEntry{Name: pm.entry.Name, Weight: pm.entry.Weight, Identifier: pm.entry.Identifier, Page: p}
			if e.Name == "" {
				e.Name = p.Title
			}
			if e.Weight == 0 {
				e.Weight = p.Weight
			}
			s.Menus[pm.menu] = append(s.Menus[pm.menu], e)
		}
	}
	for _, m := range s.Menus {
		// As Hugo: by weight, entries without a weight (0) after those with one, then
		// by name; so a page added with `menu: main` does not jump ahead of Home.
		sort.SliceStable(m, func(i, j int) bool {
			wi, wj := m[i].Weight, m[j].Weight
			if (wi == 0) != (wj == 0) {
				return wj == 0
			}
			if wi != wj {
				return wi < wj
			}
			return m[i].Name < m[j].Name
		})
	}
}

// paginate splits a list page's pages into pagers of cfg.Paginate.
func (st *siteState) paginate(p *Page) {
	size := st.cfg.Paginate
	items := p.Pages
	if p.Kind == KindHome {
		items = p.RegularPages
	}
	n := max(1, (len(items)+size-1)/size)
	pagers := make([]*Pager, n)
	for i := range pagers {
		lo, hi := i*size, min(len(items), (i+1)*size)
		u := p.urlPath
		if i > 0 {
			u = p.urlPath + "page/" + strconv.Itoa(i+1) + "/"
		}
		pagers[i] = &Pager{Pages: items[lo:hi], PageNumber: i + 1, TotalPages: n, TotalItems: len(items), URL: st.site.relURL(u)}
	}
	for i, pg := range pagers {
		if i > 0 {
			pg.Prev = pagers[i-1]
		}
		if i+1 < n {
			pg.Next = pagers[i+1]
		}
		pg.First, pg.Last, pg.all = pagers[0], pagers[n-1], pagers
	}
	p.pagers = pagers
	p.pager = pagers[0]
	p.paginated = new(atomic.Bool)
}

// checkCollisions fails when two pages would write the same file.
func (st *siteState) checkCollisions() error {
	seen := map[string]*Page{}
	sort.SliceStable(st.pages, func(i, j int) bool { return st.pages[i].outPath < st.pages[j].outPath })
	for _, p := range st.pages {
		if q, ok := seen[p.outPath]; ok {
			a, b := describe(q), describe(p)
			return diag.New(b, 0, 0, "writes /%s, which %s also writes; give one of them another url or slug", p.outPath, a)
		}
		seen[p.outPath] = p
	}
	return nil
}

func describe(p *Page) string {
	if p.shown != "" {
		return p.shown
	}
	return "the generated " + p.Kind + " page " + p.urlPath
}

// humanize turns a folder or taxonomy name into a title: "press-releases" → "Press releases".
func humanize(s string) string {
	s = strings.NewReplacer("-", " ", "_", " ").Replace(s)
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = []rune(strings.ToUpper(string(r[0])))[0]
	return string(r)
}
