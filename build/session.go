package build

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/manifest"
)

// Session keeps one site built in memory for `stump watch`: a first full build, then
// incremental updates as files change. A content edit re-renders that page and the list
// pages, pagers and feeds it appears in; a template, config, data or static change
// rebuilds the whole site. A failed update keeps the last good tree, so a preview
// server goes on serving it. Methods are safe for concurrent use.
type Session struct {
	ws   *Workspace
	site string
	opts Options

	mu    sync.Mutex
	st    *siteState
	files map[string]*outFile
	// owned indexes files by their owner (outFile.owner), so an update that renders a
	// few pages whole finds the outputs they no longer produce without a sweep of
	// every file.
	owned map[string]map[string]bool
	// singleDeps: templates of regular pages read site-wide lists, so any structural
	// change re-renders every page.
	singleDeps bool
	// broken: the last full rebuild failed, so the tree's layouts or config are not the
	// files on disk; every update rebuilds in full until one succeeds.
	broken bool
}

// Update says what one rebuild did.
type Update struct {
	// Full is set when the whole site was rendered.
	Full bool
	// Rendered counts the pages (pagers included) rendered.
	Rendered int
	// Changed are output paths whose bytes are new or different; Removed are gone.
	Changed, Removed []string
	Duration         time.Duration
}

// OnlyCSS reports an update whose changed outputs are stylesheets plus pages and feeds
// (which name the new fingerprint). It does not prove the pages differ in nothing else:
// a caller that knows only stylesheets were edited may swap them without a reload.
func (u *Update) OnlyCSS() bool {
	css := false
	for _, p := range u.Changed {
		if strings.HasSuffix(p, ".css") {
			css = true
		} else if !strings.HasSuffix(p, ".html") && !strings.HasSuffix(p, ".xml") {
			return false
		}
	}
	return css
}

// NewSession prepares a session; call Build first. opts.NoWrite is implied.
func (w *Workspace) NewSession(site string, opts Options) *Session {
	opts.NoWrite = true
	return &Session{ws: w, site: site, opts: opts}
}

// Close releases the site's folders.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != nil {
		s.st.close()
		s.st = nil
	}
}

// Build builds the whole site. On error the previous tree stays.
func (s *Session) Build(ctx context.Context) (*Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full(ctx)
}

func (s *Session) full(ctx context.Context) (*Update, error) {
	start := time.Now()
	opts := s.opts
	opts.Now = time.Now()
	s.broken = true
	st, ls, err := s.ws.load(ctx, s.site, opts)
	if err != nil {
		return nil, err
	}
	if err := st.render(ctx, ls); err != nil {
		st.close()
		return nil, err
	}
	files, _, err := st.finish(ctx)
	if err != nil {
		st.close()
		return nil, err
	}
	s.broken = false
	next := make(map[string]*outFile, len(files))
	for _, f := range files {
		next[f.path] = f
	}
	u := &Update{Full: true, Rendered: countPages(files)}
	u.Changed, u.Removed = diffFiles(s.files, next)
	if s.st != nil {
		s.st.close()
	}
	s.st, s.files = st, next
	s.owned = map[string]map[string]bool{}
	for p, f := range next {
		s.own(p, f.owner)
	}
	s.singleDeps = ls.singleReadsSiteLists()
	u.Duration = time.Since(start)
	return u, nil
}

// own records that owner produced path p ("" owns nothing to index).
func (s *Session) own(p, owner string) {
	if owner == "" {
		return
	}
	m := s.owned[owner]
	if m == nil {
		m = map[string]bool{}
		s.owned[owner] = m
	}
	m[p] = true
}

// disown drops path p from owner's outputs.
func (s *Session) disown(p, owner string) {
	if m := s.owned[owner]; m != nil {
		delete(m, p)
		if len(m) == 0 {
			delete(s.owned, owner)
		}
	}
}

// diffFiles lists paths new or changed in next, and paths of prev not in next.
func diffFiles(prev, next map[string]*outFile) (changed, removed []string) {
	for p, f := range next {
		if o, ok := prev[p]; !ok || o.sum != f.sum {
			changed = append(changed, p)
		}
	}
	for p := range prev {
		if _, ok := next[p]; !ok {
			removed = append(removed, p)
		}
	}
	sort.Strings(changed)
	sort.Strings(removed)
	return changed, removed
}

// File returns a built file's bytes and content type.
func (s *Session) File(p string) ([]byte, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p]
	if !ok {
		return nil, "", false
	}
	return f.data, contentType(p), true
}

// Entry returns a built file's manifest entry (cache class, redirect).
func (s *Session) Entry(p string) (manifest.Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p]
	if !ok || s.st == nil {
		return manifest.Entry{}, false
	}
	return manifest.Entry{Path: f.path, Size: int64(len(f.data)), ContentType: contentType(f.path), Class: f.class, Redirect: f.redirect}, true
}

// Dirs are the folders a watcher should watch for this site: the site itself and, when
// the theme is a folder of the workspace, the theme (known after a successful build).
// stump.yaml, at the workspace root, is the caller's to watch.
func (s *Session) Dirs() []string {
	dirs := []string{s.ws.SiteDir(s.site)}
	s.mu.Lock()
	theme := ""
	if s.st != nil {
		theme = s.st.cfg.Theme
	}
	s.mu.Unlock()
	if theme != "" {
		if d := filepath.Join(s.ws.Root, "themes", theme); isDir(d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Apply rebuilds after files changed (absolute paths). Markdown edits under the site's
// content/ are incremental; anything else rebuilds the whole site.
func (s *Session) Apply(ctx context.Context, changed []string) (*Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil || s.broken {
		return s.full(ctx)
	}
	siteDir := s.ws.SiteDir(s.site)
	var content []string
	for _, p := range changed {
		rel, err := filepath.Rel(siteDir, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			return s.full(ctx) // theme, stump.yaml, another folder
		}
		rel = filepath.ToSlash(rel)
		c, ok := strings.CutPrefix(rel, "content/")
		if !ok || !strings.HasSuffix(c, ".md") {
			return s.full(ctx) // config, layouts, data, static, bundle files
		}
		content = append(content, c)
	}
	if len(content) == 0 {
		return &Update{}, nil
	}
	return s.applyContent(ctx, content)
}

// pageChange is one Markdown file's old and new load (nil: absent or left out).
type pageChange struct {
	rel      string
	old, new *Page
}

// applyContent reloads changed Markdown files and re-renders what shows them.
func (s *Session) applyContent(ctx context.Context, rels []string) (*Update, error) {
	start := time.Now()
	st := s.st
	st.opts.Now = time.Now()
	wantedSet := make(map[string]bool, len(rels))
	for _, rel := range rels {
		wantedSet[rel] = true
	}
	wanted := func(f string) bool {
		if len(rels) == 1 {
			return f == rels[0] // the usual save: no hashing of every page's name
		}
		return wantedSet[f]
	}
	oldLoaded := map[string]*Page{}
	for _, p := range st.loaded {
		if wanted(p.File) {
			oldLoaded[p.File] = p
		}
	}
	// Load everything first: an error changes nothing.
	var changes []pageChange
	for _, rel := range rels {
		var np *Page
		f := srcFile{Rel: rel, Shown: st.src.shown + "/content/" + rel, fsys: st.src.fsys, full: "content/" + rel}
		if _, err := os.Stat(filepath.Join(s.ws.SiteDir(s.site), "content", filepath.FromSlash(rel))); err == nil {
			p, err := st.loadPage(f)
			if err != nil {
				return nil, err
			}
			np = p
			if np != nil && strings.HasSuffix(rel, "/index.md") {
				if oldLoaded[rel] == nil {
					return s.full(ctx) // a new bundle: its files must be found
				}
				np.Resources = oldLoaded[rel].Resources
			}
		}
		if np == nil && oldLoaded[rel] == nil {
			continue // a draft or a filtered page stays out
		}
		changes = append(changes, pageChange{rel: rel, old: oldLoaded[rel], new: np})
	}
	if len(changes) == 0 {
		return &Update{Duration: time.Since(start)}, nil
	}
	structural := false
	for _, c := range changes {
		if c.old == nil || c.new == nil || !sameMeta(c.old, c.new) || c.old.Kind != KindPage {
			structural = true
		}
	}
	byRel := map[string]*Page{}
	for _, c := range changes {
		byRel[c.rel] = c.new
	}
	loaded := make([]*Page, 0, len(st.loaded)+len(changes))
	for _, p := range st.loaded {
		if !wanted(p.File) {
			loaded = append(loaded, p)
			continue
		}
		if np, ok := byRel[p.File]; ok {
			delete(byRel, p.File)
			if np == nil {
				continue
			}
			p = np
		}
		loaded = append(loaded, p)
	}
	for _, c := range changes {
		if np, ok := byRel[c.rel]; ok && np != nil {
			loaded = append(loaded, np)
		}
	}
	var targets []renderTarget
	all := false
	if structural {
		prevPages, prevLoaded, prevSite := st.pages, st.loaded, *st.site
		st.loaded = loaded
		err := st.assemble()
		if err == nil {
			err = st.expandShortcodes(ctx, st.pages)
		}
		if err != nil {
			st.loaded, st.pages, *st.site = prevLoaded, prevPages, prevSite
			return nil, err
		}
		targets, all = s.structuralTargets(prevPages, changes)
	} else {
		st.loaded = loaded
		byFile := map[string]*Page{}
		for _, p := range st.pages {
			if p.File != "" && wanted(p.File) {
				byFile[p.File] = p
			}
		}
		for _, c := range changes {
			ap := byFile[c.rel]
			prev := *ap
			setBody(ap, c.new)
			if err := st.expandPage(ap); err != nil {
				*ap = prev
				return nil, err
			}
			targets = append(targets, renderTarget{page: ap})
			targets = append(targets, listTargets(ap, true)...)
		}
		all = s.singleDeps
	}
	u, err := s.renderTargets(ctx, targets, structural, all)
	if err != nil {
		return nil, err
	}
	u.Duration = time.Since(start)
	return u, nil
}

// sameMeta reports whether two loads of one file differ only in their body, so lists
// keep their order and membership.
func sameMeta(a, b *Page) bool {
	if a.Title != b.Title || a.Kind != b.Kind || !a.Date.Equal(b.Date) || !a.Lastmod.Equal(b.Lastmod) ||
		!a.PublishDate.Equal(b.PublishDate) || !a.ExpiryDate.Equal(b.ExpiryDate) || a.Draft != b.Draft ||
		a.Weight != b.Weight || a.Slug != b.Slug || a.urlPath != b.urlPath || a.Layout != b.Layout ||
		a.Type != b.Type || a.Description != b.Description || len(a.menus) > 0 || len(b.menus) > 0 ||
		strings.Join(a.Aliases, "\x00") != strings.Join(b.Aliases, "\x00") || len(a.Params) != len(b.Params) ||
		len(a.rawTerms) != len(b.rawTerms) {
		return false
	}
	for k, v := range a.rawTerms {
		if strings.Join(v, "\x00") != strings.Join(b.rawTerms[k], "\x00") {
			return false
		}
	}
	for k, v := range a.Params {
		if !reflect.DeepEqual(v, b.Params[k]) {
			return false
		}
	}
	return true
}

// setBody copies the body-derived fields of a fresh load into an assembled page.
func setBody(dst, src *Page) {
	dst.Content, dst.Summary, dst.Truncated = src.Content, src.Summary, src.Truncated
	dst.TableOfContents, dst.WordCount, dst.ReadingTime = src.TableOfContents, src.WordCount, src.ReadingTime
	dst.srcBody, dst.bodyLine, dst.calls = src.srcBody, src.bodyLine, src.calls
}

// renderTarget is a page to render: all its pagers (with its feed and aliases), or only
// some pagers (and its feed).
type renderTarget struct {
	page   *Page
	pagers []int // nil: everything of the page
}

// listTargets are the lists p appears in (its sections up to home, its terms): with
// onlyHolding, just the pagers that hold p.
func listTargets(p *Page, onlyHolding bool) []renderTarget {
	var lists []*Page
	for x := p.Parent; x != nil; x = x.Parent {
		lists = append(lists, x)
	}
	if home := p.Site.Home; home != nil && (len(lists) == 0 || lists[len(lists)-1] != home) {
		lists = append(lists, home)
	}
	for _, ts := range p.Terms {
		for _, t := range ts {
			if t.page != nil {
				lists = append(lists, t.page)
			}
		}
	}
	out := make([]renderTarget, 0, len(lists))
	for _, l := range lists {
		if !onlyHolding {
			out = append(out, renderTarget{page: l})
			continue
		}
		var idx []int
		for i, pg := range l.pagers {
			for _, x := range pg.Pages {
				if x == p {
					idx = append(idx, i)
					break
				}
			}
		}
		if len(idx) == 0 {
			idx = []int{0}
		}
		out = append(out, renderTarget{page: l, pagers: idx})
	}
	return out
}

// structuralTargets chooses what to render after a re-assemble: the changed pages, their
// old and new neighbours, every list that held or holds them (all pagers), and the
// taxonomy lists. all is set when templates of regular pages read site-wide lists, or
// a section, the home page or a menu entry changed: then every page is rendered.
func (s *Session) structuralTargets(prev []*Page, changes []pageChange) ([]renderTarget, bool) {
	if s.singleDeps {
		return nil, true
	}
	for _, c := range changes {
		for _, p := range []*Page{c.old, c.new} {
			if p != nil && (p.Kind != KindPage || len(p.menus) > 0) {
				return nil, true
			}
		}
	}
	want := map[string]bool{}
	add := func(p *Page) {
		if p != nil {
			want[p.owner()] = true
		}
	}
	related := func(p *Page) {
		add(p)
		add(p.Prev)
		add(p.Next)
		for _, t := range listTargets(p, false) {
			add(t.page)
		}
	}
	changed := map[string]bool{}
	for _, c := range changes {
		changed["file:"+c.rel] = true
	}
	for _, p := range prev {
		if changed[p.owner()] {
			related(p)
		}
	}
	var out []renderTarget
	for _, p := range s.st.pages {
		if changed[p.owner()] {
			related(p)
		}
	}
	for _, p := range s.st.pages {
		if want[p.owner()] || p.Kind == KindTaxonomy {
			out = append(out, renderTarget{page: p})
		}
	}
	return out, false
}

// renderTargets renders targets into a fresh output set and merges it into the tree. A
// structural update also renders the sitemap and the 404 page and drops the outputs of
// pages that are gone.
func (s *Session) renderTargets(ctx context.Context, targets []renderTarget, structural, all bool) (*Update, error) {
	st := s.st
	ls := st.layouts
	prevOut := st.out
	st.out = newOutputs(false) // an update checks no links
	st.partialMu.Lock()
	st.partialCache = nil // rendered again from this update's pages and site
	st.partialMu.Unlock()
	defer func() { st.out = prevOut }()
	if all {
		targets = targets[:0]
		for _, p := range st.pages {
			targets = append(targets, renderTarget{page: p})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	errs := make([]error, len(targets))
	for i, t := range targets {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if t.pagers == nil {
				errs[i] = st.renderPage(ls, t.page)
				return nil
			}
			for _, n := range t.pagers {
				paginated := t.page.paginated != nil && t.page.paginated.Load()
				if n == 0 || (paginated && n < len(t.page.pagers)) {
					if err := st.renderPager(ls, t.page, n); err != nil {
						errs[i] = err
						return nil
					}
				}
			}
			errs[i] = st.renderFeed(t.page)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	if structural || all {
		if err := st.renderExtrasForSession(ls); err != nil {
			return nil, err
		}
	}
	// Merge: owners rendered whole lose the outputs they no longer produce; owners of
	// pages that are gone lose everything.
	whole := map[string]bool{}
	for _, t := range targets {
		if t.pagers == nil {
			whole[t.page.owner()] = true
		}
	}
	live := map[string]bool{}
	if structural || all {
		for _, p := range st.pages {
			live[p.owner()] = true
		}
		live[Kind404+":/404.html"] = true
	}
	u := &Update{Full: all}
	for p, f := range st.out.files {
		old, ok := s.files[p]
		if !ok || old.sum != f.sum {
			u.Changed = append(u.Changed, p)
		}
		if ok && old.owner != f.owner {
			s.disown(p, old.owner)
		}
		s.files[p] = f
		s.own(p, f.owner)
		if f.page != nil && strings.HasSuffix(p, ".html") && f.redirect == "" {
			u.Rendered++
		}
	}
	drop := func(p string, f *outFile) {
		if f.owner == "" {
			return
		}
		_, produced := st.out.files[p]
		gone := (structural || all) && !live[f.owner]
		if (whole[f.owner] && !produced) || gone {
			delete(s.files, p)
			s.disown(p, f.owner)
			u.Removed = append(u.Removed, p)
		}
	}
	if structural || all {
		for p, f := range s.files {
			drop(p, f)
		}
	} else {
		// Only the owners rendered whole can have lost outputs.
		for o := range whole {
			for p := range s.owned[o] {
				if f, ok := s.files[p]; ok {
					drop(p, f)
				} else {
					s.disown(p, o)
				}
			}
		}
	}
	sort.Strings(u.Changed)
	sort.Strings(u.Removed)
	return u, nil
}

// renderExtrasForSession re-renders the outputs that depend on the list of pages: the
// sitemap and the 404 page.
func (st *siteState) renderExtrasForSession(ls *layouts) error {
	if st.cfg.Sitemap == nil || *st.cfg.Sitemap {
		if _, static := st.staticByRel["sitemap.xml"]; !static {
			b, err := st.sitemap()
			if err != nil {
				return err
			}
			if err := st.out.add(&outFile{path: "sitemap.xml", data: b, class: classPage}); err != nil {
				return err
			}
		}
	}
	if ls.has("404.html") {
		nf := &Page{Kind: Kind404, Title: "Page not found", urlPath: "/404.html", outPath: "404.html", Site: st.site, Params: map[string]any{}, Terms: map[string][]*Term{}}
		nf.RelPermalink = st.site.relURL("404.html")
		nf.Permalink = st.site.absURL("404.html")
		return st.renderPage(ls, nf)
	}
	return nil
}

// siteListRE matches template text that reads lists of the whole site.
var siteListRE = regexp.MustCompile(`\.Site\.(RegularPages|Pages|Sections|Taxonomies)\b|\bGetPage\b|\.Parent\.(Pages|RegularPages)\b`)

var partialCallRE = regexp.MustCompile(`\b(?:partial|partialCached)\s+"([^"]+)"`)

// singleReadsSiteLists reports whether the layouts of regular pages (single and custom
// layouts, their baseof, and the partials they call) read site-wide lists: then a
// structural change to one page can change every page.
func (ls *layouts) singleReadsSiteLists() bool {
	seen := map[string]bool{}
	var visit func(name string) bool
	visit = func(name string) bool {
		if seen[name] {
			return false
		}
		seen[name] = true
		src, ok := ls.files[name]
		if !ok {
			return false
		}
		if siteListRE.MatchString(src.text) {
			return true
		}
		for _, m := range partialCallRE.FindAllStringSubmatch(src.text, -1) {
			pn := "partials/" + m[1]
			if _, ok := ls.files[pn]; !ok {
				pn += ".html"
			}
			if visit(pn) {
				return true
			}
		}
		return false
	}
	for name := range ls.files {
		base := filepath.Base(name)
		if strings.HasPrefix(name, "partials/") || base == "index.html" || base == "home.html" || base == "list.html" ||
			base == "section.html" || base == "taxonomy.html" || base == "terms.html" || base == "term.html" || base == "404.html" {
			continue
		}
		if visit(name) {
			return true
		}
	}
	return false
}
