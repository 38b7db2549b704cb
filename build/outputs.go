package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"html"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/manifest"
)

const (
	classImmutable = manifest.Immutable
	classPage      = manifest.Page
	classStatic    = manifest.Static
)

// outFile is one file of the built tree.
type outFile struct {
	path     string // slash path below the site root
	data     []byte
	src      *srcFile // copied as is when data is nil
	class    string
	keys     []string
	redirect string
	sum      [32]byte // set when data is final
	from     string   // what produced it, for collision messages
	page     *Page    // the page it renders, if any
	// owner identifies the page that produced it across rebuilds (Page.owner), so a
	// watch session knows which outputs a re-rendered page replaces.
	owner string
	// gen: the bytes were given when the file was added (not copied from a source).
	gen bool
	// stored: the file is on disk and its bytes were dropped; size keeps their length.
	stored bool
	size   int64
	// buf, when set, is the pooled buffer data is in; whoever drops data returns it.
	buf *bytes.Buffer
	// links are the distinct link targets (href and src values up to any query or
	// fragment) of a rendered page, numbered in outputs.links, taken when it is added,
	// so the link check needs no page's bytes once they are written.
	links []int32
}

// outputs collects the files of a build; add is safe from many goroutines.
type outputs struct {
	mu    sync.Mutex
	files map[string]*outFile
	// onAdd, when set, gets each file once it is registered (a build's writer).
	onAdd func(*outFile)
	// lend: onAdd takes rendered pages in pooled buffers (outFile.buf) and returns
	// them once written, instead of each page's bytes being copied out of its buffer.
	lend  bool
	links linkTable // the link targets of the pages added
	// wantLinks: the link check will read the pages' links (off: they are not kept).
	wantLinks bool
}

func newOutputs(wantLinks bool) *outputs {
	return &outputs{files: map[string]*outFile{}, wantLinks: wantLinks}
}

// add registers f. Two different files at one path is an error; the same bytes twice (an
// asset asked for by two templates) is not.
func (o *outputs) add(f *outFile) error {
	f.gen = f.data != nil
	if f.gen && f.sum == ([32]byte{}) {
		f.sum = sha256.Sum256(f.data)
	}
	if o.wantLinks && f.page != nil && f.class == classPage && f.src == nil && f.redirect == "" && strings.HasSuffix(f.path, ".html") {
		f.links = o.links.add(f.data)
	}
	o.mu.Lock()
	if prev, ok := o.files[f.path]; ok {
		defer o.mu.Unlock()
		if prev.gen && f.gen && prev.sum == f.sum {
			return nil
		}
		who := f.from
		if who == "" {
			who = "a generated file"
		}
		other := prev.from
		if other == "" {
			other = "a generated file"
		}
		return diag.New(who, 0, 0, "writes /%s, which %s also writes; give one of them another url, slug or file name", f.path, other)
	}
	o.files[f.path] = f
	hook := o.onAdd
	o.mu.Unlock()
	if hook != nil {
		hook(f)
	}
	return nil
}

func (o *outputs) has(p string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.files[p]
	return ok
}

// sorted returns the files by path.
func (o *outputs) sorted() []*outFile {
	out := make([]*outFile, 0, len(o.files))
	for _, f := range o.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// redirectHTML is the page written at an alias: it sends browsers (and S3 website
// hosting, through the manifest's Redirect) to target.
func redirectHTML(target, abs string) []byte {
	t := html.EscapeString(target)
	a := html.EscapeString(abs)
	return []byte(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>` + t + `</title>` +
		`<link rel="canonical" href="` + a + `"><meta name="robots" content="noindex">` +
		`<meta http-equiv="refresh" content="0; url=` + t + `"></head>` +
		`<body><p>This page has moved to <a href="` + t + `">` + t + `</a>.</p></body></html>` + "\n")
}

// feedItems are the newest regular pages of a list, newest first, at most limit.
func feedItems(pages []*Page, limit int) []*Page {
	newer := func(a, b *Page) bool {
		if !a.Date.Equal(b.Date) {
			return a.Date.After(b.Date)
		}
		return a.urlPath < b.urlPath
	}
	if limit > 0 && limit < len(pages)/4 {
		// A few of many (a home feed of a large site, on every watch update): keep
		// the newest limit in one pass instead of sorting them all. Ties keep their
		// order, as the stable sort below does.
		items := make([]*Page, 0, limit+1)
		for _, p := range pages {
			if p.Kind != KindPage || (len(items) == limit && !newer(p, items[limit-1])) {
				continue
			}
			i := sort.Search(len(items), func(i int) bool { return newer(p, items[i]) })
			items = append(items, nil)
			copy(items[i+1:], items[i:])
			items[i] = p
			if len(items) > limit {
				items = items[:limit]
			}
		}
		return items
	}
	items := make([]*Page, 0, len(pages))
	for _, p := range pages {
		if p.Kind == KindPage {
			items = append(items, p)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return newer(items[i], items[j]) })
	if len(items) > limit {
		items = items[:limit]
	}
	return items
}

type rssDoc struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Atom    string     `xml:"xmlns:atom,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title         string    `xml:"title"`
	Link          string    `xml:"link"`
	Description   string    `xml:"description"`
	Language      string    `xml:"language,omitempty"`
	Copyright     string    `xml:"copyright,omitempty"`
	LastBuildDate string    `xml:"lastBuildDate,omitempty"`
	AtomLink      atomLink  `xml:"atom:link"`
	Items         []rssItem `xml:"item"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
}

type rssItem struct {
	Title       string `xml:"title"`
	Link        string `xml:"link"`
	PubDate     string `xml:"pubDate,omitempty"`
	GUID        string `xml:"guid"`
	Description string `xml:"description"`
}

// rss renders an RSS 2.0 feed of list p. Its lastBuildDate is the newest item's date, not
// the time of the build, so an unchanged site gives an unchanged feed.
func (st *siteState) rss(p *Page, selfURL string) ([]byte, error) {
	s := st.site
	items := feedItems(listPages(p), st.cfg.FeedLimit)
	title := s.Title
	if !p.IsHome() {
		title = p.Title + " · " + s.Title
	}
	ch := rssChannel{
		Title: title, Link: p.Permalink, Description: "Recent content in " + title,
		Language: s.LanguageCode, Copyright: s.Copyright,
		AtomLink: atomLink{Href: selfURL, Rel: "self", Type: "application/rss+xml"},
	}
	if len(items) > 0 && !items[0].Date.IsZero() {
		ch.LastBuildDate = items[0].Date.Format(time.RFC1123Z)
	}
	for _, it := range items {
		ri := rssItem{Title: it.Title, Link: it.Permalink, GUID: it.Permalink, Description: string(it.Summary)}
		if !it.Date.IsZero() {
			ri.PubDate = it.Date.Format(time.RFC1123Z)
		}
		ch.Items = append(ch.Items, ri)
	}
	return marshalXML(rssDoc{Version: "2.0", Atom: "http://www.w3.org/2005/Atom", Channel: ch})
}

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  *atomAuthor `xml:"author,omitempty"`
	Rights  string      `xml:"rights,omitempty"`
	Entries []atomEntry `xml:"entry"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Link    atomLink    `xml:"link"`
	Summary atomContent `xml:"summary"`
}

type atomContent struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

// atom renders an Atom 1.0 feed of list p.
func (st *siteState) atom(p *Page, selfURL string) ([]byte, error) {
	s := st.site
	items := feedItems(listPages(p), st.cfg.FeedLimit)
	title := s.Title
	if !p.IsHome() {
		title = p.Title + " · " + s.Title
	}
	updated := time.Unix(0, 0).UTC()
	if len(items) > 0 && !items[0].Date.IsZero() {
		updated = items[0].Date
	}
	f := atomFeed{
		Title: title, ID: p.Permalink, Updated: updated.Format(time.RFC3339), Rights: s.Copyright,
		Links:  []atomLink{{Href: selfURL, Rel: "self", Type: "application/atom+xml"}, {Href: p.Permalink, Rel: "alternate"}},
		Author: &atomAuthor{Name: s.Title},
	}
	for _, it := range items {
		u := it.Lastmod
		if u.IsZero() {
			u = updated
		}
		f.Entries = append(f.Entries, atomEntry{
			Title: it.Title, ID: it.Permalink, Updated: u.Format(time.RFC3339),
			Link: atomLink{Href: it.Permalink, Rel: "alternate"}, Summary: atomContent{Type: "html", Body: string(it.Summary)},
		})
	}
	return marshalXML(f)
}

// listPages are the pages a feed of p covers: every regular page below a section.
func listPages(p *Page) []*Page {
	if p.Kind != KindSection {
		return p.RegularPages
	}
	var out []*Page
	var walk func(*Page)
	walk = func(s *Page) {
		for _, x := range s.Pages {
			if x.Kind == KindSection {
				walk(x)
			} else {
				out = append(out, x)
			}
		}
	}
	walk(p)
	return out
}

type urlset struct {
	XMLName xml.Name     `xml:"http://www.sitemaps.org/schemas/sitemap/0.9 urlset"`
	URLs    []sitemapURL `xml:"url"`
}

type sitemapURL struct {
	Loc     string `xml:"loc"`
	Lastmod string `xml:"lastmod,omitempty"`
}

// sitemap lists every page the site renders, sorted by URL.
func (st *siteState) sitemap() ([]byte, error) {
	var us urlset
	for _, p := range st.pages {
		if p.Kind == Kind404 {
			continue
		}
		u := sitemapURL{Loc: p.Permalink}
		if !p.Lastmod.IsZero() {
			u.Lastmod = p.Lastmod.UTC().Format("2006-01-02")
		}
		us.URLs = append(us.URLs, u)
	}
	sort.Slice(us.URLs, func(i, j int) bool { return us.URLs[i].Loc < us.URLs[j].Loc })
	return marshalXML(us)
}

func marshalXML(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode xml: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// robots is the default robots.txt: allow all, and name the sitemap.
func (st *siteState) robots(withSitemap bool) []byte {
	var b strings.Builder
	b.WriteString("User-agent: *\nAllow: /\n")
	if withSitemap && st.site.base.Host != "" {
		b.WriteString("\nSitemap: " + st.site.absURL("sitemap.xml") + "\n")
	}
	return []byte(b.String())
}

// keysFor are the surrogate keys of a file: the site, its class, its URL, and for pages
// their section and terms.
func (st *siteState) keysFor(f *outFile) []string {
	site := st.cfg.Name
	urlPath := "/" + strings.TrimSuffix(f.path, "index.html")
	keys := []string{site, site + ":" + f.class, site + ":url:" + (&url.URL{Path: urlPath}).EscapedPath()}
	if p := f.page; p != nil {
		if p.Section != "" {
			keys = append(keys, site+":section:"+p.Section)
		}
		for plural, ts := range p.Terms {
			for _, t := range ts {
				keys = append(keys, site+":"+plural+":"+t.Slug)
			}
		}
		if p.term != nil {
			keys = append(keys, site+":"+p.plural+":"+p.term.Slug)
		}
	}
	sort.Strings(keys)
	return keys
}

// linkTable numbers the distinct link targets of a build's pages, so that each page
// keeps four bytes per link (most pages link to the same menu, stylesheet and terms);
// safe from many goroutines.
type linkTable struct {
	mu   sync.Mutex
	ids  map[string]int32
	list []string
}

// add returns the numbers of the distinct values of href="…" and src="…" attributes in
// page, each cut at its first '#' or '?', in order of appearance. It is a scan, not an
// HTML parse: like the link check always has, it reads every href=" and src=" (data-src="
// too).
func (t *linkTable) add(page []byte) []int32 {
	// The scan runs outside the lock (pages render in parallel); the table is locked
	// once, to number what the page links to.
	s := unsafe.String(unsafe.SliceData(page), len(page)) // read only while page is
	var vals []string
	seen := map[string]bool{}
	scanAttrs(s, false, func(start, end int) {
		v := s[start:end]
		if k := strings.IndexAny(v, "#?"); k >= 0 {
			v = v[:k]
		}
		if !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	})
	ids := make([]int32, len(vals))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ids == nil {
		t.ids = map[string]int32{}
	}
	for i, v := range vals {
		id, ok := t.ids[v]
		if !ok {
			id = int32(len(t.list))
			v = strings.Clone(v)
			t.ids[v] = id
			t.list = append(t.list, v)
		}
		ids[i] = id
	}
	return ids
}

// scanAttrs calls yield with the bounds of the value of each src="…" and href="…"
// attribute in s, in order (the value is s[start:end], without its quotes). With
// spaced, the attribute name must follow a space, tab or line break; without, any
// name ending in src or href counts (data-src). A value needs its closing quote.
func scanAttrs(s string, spaced bool, yield func(start, end int)) {
	for i := 0; ; {
		j := strings.Index(s[i:], `="`)
		if j < 0 {
			return
		}
		j += i
		n := 0
		switch {
		case strings.HasSuffix(s[i:j], "href"):
			n = 4
		case strings.HasSuffix(s[i:j], "src"):
			n = 3
		}
		if n == 0 || spaced && (j-n-1 < i || !isSpace(s[j-n-1])) {
			i = j + 1
			continue
		}
		end := strings.IndexByte(s[j+2:], '"')
		if end < 0 {
			return
		}
		yield(j+2, j+2+end)
		i = j + 2 + end + 1
	}
}

// isSpace is the \s of Go's regular expressions: ASCII space, tab, line feed, form
// feed and carriage return.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}
