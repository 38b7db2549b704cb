package build

import (
	"html/template"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/markdown"
)

// Page kinds.
const (
	KindHome     = "home"
	KindPage     = "page"
	KindSection  = "section"
	KindTaxonomy = "taxonomy"
	KindTerm     = "term"
	Kind404      = "404"
)

// Page is what templates see as "." (see docs/templates.md for the contract). Fields are
// set while the site loads and never change while it renders, so rendering may read them
// from many goroutines.
type Page struct {
	Title       string
	Kind        string
	Section     string
	Type        string
	Layout      string
	Date        time.Time
	Lastmod     time.Time
	PublishDate time.Time
	ExpiryDate  time.Time
	Draft       bool
	Weight      int
	Slug        string
	Description string
	Summary     template.HTML
	Truncated   bool
	Content     template.HTML
	// TableOfContents is the nav list of headings.
	TableOfContents template.HTML
	WordCount       int
	ReadingTime     int
	RelPermalink    string
	Permalink       string
	Params          map[string]any
	Aliases         []string
	Pages           []*Page
	RegularPages    []*Page
	Terms           map[string][]*Term
	Parent          *Page
	Resources       []*Resource
	Prev, Next      *Page
	Site            *Site
	// File is the source path relative to content/ ("" for generated pages).
	File string
	// OutputFeed is the RelPermalink of this list's feed, or "".
	OutputFeed string

	// urlPath is the page's path below the site root, starting and (for pretty URLs)
	// ending with "/": "/news/rally/".
	urlPath string
	// outPath is the file written: "news/rally/index.html".
	outPath string
	// shown is the source path shown in messages.
	shown string
	// dir is the content folder of a section page ("news"), or the folder of a page.
	dir string
	// term is set on term pages.
	term *Term
	// plural is the taxonomy on taxonomy and term pages.
	plural string
	// pager is set while rendering one pager of a list.
	pager *Pager
	// pagers are all pagers of a list page.
	pagers []*Pager
	// paginated records whether a template asked for .Paginator.
	paginated *atomic.Bool
	// menus are the menus this page adds itself to.
	menus []pageMenu
	// layoutPos is where front matter set layout:, for errors.
	layoutLine, layoutCol int
	// rawTerms are the term names from front matter by taxonomy plural.
	rawTerms map[string][]string
	// srcBody is the Markdown, kept for link-check positions.
	srcBody  []byte
	bodyLine int
	// calls are the page's shortcodes; Content and Summary hold their placeholders until
	// expandShortcodes runs them.
	calls []markdown.Call
	// noRender pages are not written (_build render: never, headless, permalink: false);
	// noList pages are in no list (list: never, headless); listLocal ones only in their
	// section's.
	noRender, noList, listLocal bool
	// redirectTo makes the page a redirect to that URL (redirect_to).
	redirectTo string
	// rawHTMLLost reports raw HTML left out of the content.
	rawHTMLLost bool
}

type pageMenu struct {
	menu  string
	entry config.MenuEntry
}

// owner identifies the page across rebuilds: its source file, or its kind and URL for
// generated pages.
func (p *Page) owner() string {
	if p.File != "" {
		return "file:" + p.File
	}
	return p.Kind + ":" + p.urlPath
}

// IsHome reports the home page.
func (p *Page) IsHome() bool { return p.Kind == KindHome }

// IsPage reports a regular page.
func (p *Page) IsPage() bool { return p.Kind == KindPage }

// IsSection reports a section list.
func (p *Page) IsSection() bool { return p.Kind == KindSection }

// IsNode reports a list kind (home, section, taxonomy, term).
func (p *Page) IsNode() bool {
	return p.Kind == KindHome || p.Kind == KindSection || p.Kind == KindTaxonomy || p.Kind == KindTerm
}

// Paginator returns the current pager of a list page (nil on other kinds). Calling it
// makes the build write the list's further pages (/page/2/, ...).
func (p *Page) Paginator() *Pager {
	if p.paginated != nil {
		p.paginated.Store(true)
	}
	return p.pager
}

// Data returns kind-specific data: on a taxonomy page, its terms ({{ .Data.Terms }}).
func (p *Page) Data() map[string]any {
	if p.Kind == KindTaxonomy && p.Site != nil {
		return map[string]any{"Terms": p.Site.Taxonomies[p.plural], "Plural": p.plural, "Singular": p.Site.cfg.Singular[p.plural]}
	}
	if p.term != nil {
		return map[string]any{"Term": p.term, "Plural": p.plural}
	}
	return map[string]any{}
}

// Param returns a page param, falling back to the site's.
func (p *Page) Param(key string) any {
	k := strings.ToLower(key)
	if v, ok := p.Params[k]; ok {
		return v
	}
	if p.Site != nil {
		return p.Site.Params[key]
	}
	return nil
}

// Term is one value of a taxonomy (the tag "health care").
type Term struct {
	Name         string
	Slug         string
	Plural       string
	RelPermalink string
	Permalink    string
	Pages        []*Page
	page         *Page
}

// Count is the number of pages with the term.
func (t *Term) Count() int { return len(t.Pages) }

// Resource is a file of a page bundle.
type Resource struct {
	Name         string // path relative to the bundle folder
	RelPermalink string
	Permalink    string
	MediaType    string
}

// Pager is one page of a paginated list.
type Pager struct {
	Pages      []*Page
	PageNumber int
	TotalPages int
	TotalItems int
	URL        string
	Prev, Next *Pager
	First      *Pager
	Last       *Pager
	all        []*Pager
}

// HasPrev reports a previous pager.
func (p *Pager) HasPrev() bool { return p.Prev != nil }

// HasNext reports a next pager.
func (p *Pager) HasNext() bool { return p.Next != nil }

// Pagers lists every pager of the list.
func (p *Pager) Pagers() []*Pager { return p.all }

// MenuEntry is a menu link for templates.
type MenuEntry struct {
	Name       string
	URL        string
	Weight     int
	Identifier string
	Page       *Page
}

// Site is .Site in templates.
type Site struct {
	Name          string
	Title         string
	BaseURL       string
	LanguageCode  string
	Copyright     string
	Params        map[string]any
	Menus         map[string][]*MenuEntry
	Data          map[string]any
	Home          *Page
	RegularPages  []*Page
	Sections      []*Page
	Taxonomies    map[string][]*Term
	TaxonomyNames []string
	Feed          string

	cfg    *config.Loaded
	base   *url.URL
	byPath map[string]*Page
}

// GetPage finds a page by content path ("news/rally", "news/rally.md", "/news", "news").
func (s *Site) GetPage(ref string) *Page {
	ref = strings.Trim(trimContentExt(strings.TrimSpace(ref)), "/")
	return s.byPath[ref]
}

// relURL joins a root-relative site path ("/news/") with the base URL's path.
func (s *Site) relURL(p string) string {
	return strings.TrimSuffix(s.base.Path, "/") + "/" + strings.TrimPrefix(p, "/")
}

// absURL joins a root-relative site path with the whole base URL.
func (s *Site) absURL(p string) string {
	if s.base.Host == "" {
		return s.relURL(p)
	}
	u := *s.base
	u.Path = s.relURL(p)
	u.RawPath = ""
	return u.String()
}

// sortPages orders pages the way lists show them: weight (weighted first), then date
// (newest first), then title, then URL — a total order, so output is deterministic.
func sortPages(ps []*Page) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Weight != b.Weight {
			if a.Weight == 0 {
				return false
			}
			if b.Weight == 0 {
				return true
			}
			return a.Weight < b.Weight
		}
		if !a.Date.Equal(b.Date) {
			return a.Date.After(b.Date)
		}
		if a.Title != b.Title {
			return a.Title < b.Title
		}
		return a.urlPath < b.urlPath
	})
}

// Window returns the pagers within n of this one, plus the first and the last, in order:
// what a pagination bar shows without listing every page of a long list.
func (p *Pager) Window(n int) []*Pager {
	var out []*Pager
	for _, q := range p.all {
		d := q.PageNumber - p.PageNumber
		if q == p.First || q == p.Last || (d >= -n && d <= n) {
			out = append(out, q)
		}
	}
	return out
}
