package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/goccy/go-yaml"
	"github.com/pelletier/go-toml/v2"
	"github.com/tdewolff/minify/v2"
	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/frontmatter"
	"github.com/stump-dev/stump/build/markdown"
)

// siteState is one site being built.
type siteState struct {
	ws *Workspace
	// due is the first moment a page left out as future becomes due, or a page in the
	// build expires (see dueAt): the output changes then with no input changed.
	dueMu sync.Mutex
	due   time.Time
	// mdc caches rendered Markdown across builds (nil: render everything).
	mdc *mdCache
	// partialCache holds partialCached results for one rendering pass (a watch
	// session forgets them before each update: a menu entry may have changed).
	partialMu    sync.Mutex
	partialCache map[string]*partialResult
	cfg          *config.Loaded
	opts         Options
	src          *tree // sites/<site>
	theme        *tree
	md           *markdown.Renderer
	// mdRaw renders the pages whose front matter opts in with rawHTML: true (made on
	// first use): md with raw HTML passed through.
	mdRaw func() *markdown.Renderer
	site  *Site
	pages []*Page // every page, generated ones included (assembled copies of loaded)
	// loaded are the pages as read from content/, before assemble links them; assemble
	// works on copies, so a watch session can re-assemble after an edit.
	loaded  []*Page
	regular []*Page
	// bundled are content files copied next to their page (bundle resources and
	// non-Markdown files under content/).
	bundled []copyFile
	static  []srcFile // theme static first, then site static (site wins on same Rel)
	// staticByRel indexes static by Rel (the site's file wins).
	staticByRel map[string]srcFile
	assets      *assetRegistry
	minifier    *minify.M
	out         *outputs
	layouts     *layouts
	refIdx      *refIndex
	report      *reportState
	phase       time.Time
}

// copyFile is a source file written as is at out.
type copyFile struct {
	src srcFile
	out string
}

// maxErrors bounds how many input errors one build reports.
const maxErrors = 20

// loadContent reads, checks and renders every Markdown file of the site in parallel.
func (st *siteState) loadContent(ctx context.Context) error {
	files, err := st.src.walk("content", st.cfg.Ignore)
	if err != nil {
		return err
	}
	// Folders holding index.md are leaf bundles: their other files belong to that page.
	leaf := map[string]bool{}
	for _, f := range files {
		if path.Base(f.Rel) == "index.md" {
			leaf[path.Dir(f.Rel)] = true
		}
	}
	bundleOf := func(rel string) string {
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if leaf[d] {
				return d
			}
		}
		return ""
	}
	var mdFiles []srcFile
	resources := map[string][]srcFile{}
	for _, f := range files {
		if strings.HasSuffix(f.Rel, ".md") && bundleOf(f.Rel) == "" || path.Base(f.Rel) == "index.md" {
			mdFiles = append(mdFiles, f)
			continue
		}
		if strings.HasSuffix(f.Rel, ".md") {
			st.report.skip(f.Shown, "Markdown inside a leaf bundle is part of that page, not a page")
			continue
		}
		kind, reason := classify(f)
		b := bundleOf(f.Rel)
		switch {
		case kind == "page" && b == "":
			mdFiles = append(mdFiles, f)
		case kind == "resource" && b != "":
			resources[b] = append(resources[b], f)
		case kind == "resource":
			st.bundled = append(st.bundled, copyFile{src: f, out: strings.ToLower(f.Rel)})
		case kind == "page":
			st.report.skip(f.Shown, "HTML with front matter inside a leaf bundle")
		default:
			st.report.skip(f.Shown, reason)
		}
	}
	pages := make([]*Page, len(mdFiles))
	errs := make([]error, len(mdFiles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	for i, f := range mdFiles {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			p, err := st.loadPage(f)
			pages[i], errs[i] = p, err
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := joinErrors(errs); err != nil {
		return err
	}
	for i, p := range pages {
		if p == nil {
			continue // filtered (draft, future, expired)
		}
		if p.Kind == KindPage && leaf[path.Dir(mdFiles[i].Rel)] && path.Base(mdFiles[i].Rel) == "index.md" && !(p.noRender && p.noList) {
			dir := path.Dir(mdFiles[i].Rel)
			for _, r := range resources[dir] {
				name := strings.TrimPrefix(r.Rel, dir+"/")
				out := strings.TrimPrefix(p.urlPath, "/") + name
				if !strings.HasSuffix(p.urlPath, "/") {
					out = path.Dir(strings.TrimPrefix(p.urlPath, "/")) + "/" + name
				}
				p.Resources = append(p.Resources, &Resource{
					Name:         name,
					RelPermalink: st.site.relURL(out),
					Permalink:    st.site.absURL(out),
					MediaType:    contentType(name),
				})
				st.bundled = append(st.bundled, copyFile{src: r, out: out})
			}
		}
		st.loaded = append(st.loaded, p)
	}
	return nil
}

// joinErrors returns nil, or the positioned errors sorted by file (at most maxErrors).
func joinErrors(errs []error) error {
	var list []error
	seen := map[string]bool{}
	for _, e := range errs {
		if e == nil {
			continue
		}
		// A template error repeats for every page that uses the template: report it once.
		key, _, _ := strings.Cut(e.Error(), " (while rendering ")
		if seen[key] {
			continue
		}
		seen[key] = true
		list = append(list, e)
	}
	if len(list) == 0 {
		return nil
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Error() < list[j].Error() })
	if len(list) > maxErrors {
		n := len(list) - maxErrors
		list = append(list[:maxErrors], fmt.Errorf("... and %d more errors", n))
	}
	return errors.Join(list...)
}

// renderMarkdown renders a page's body with md (the site's renderer, or its raw-HTML
// one when raw), through the Markdown cache when the build has one.
func (st *siteState) renderMarkdown(md *markdown.Renderer, raw bool, body []byte) (markdown.Result, error) {
	if st.mdc == nil {
		return md.Render(body)
	}
	return st.mdc.render(md, raw, body)
}

// mdString is b, rendered Markdown, as a string. With the Markdown cache the string
// shares b's bytes: the cache keeps b until it is saved and nothing writes to it, so
// a copy would only double what a build holds.
func (st *siteState) mdString(b []byte) string {
	if st.mdc == nil || len(b) == 0 {
		return string(b)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// loadPage parses one Markdown file. It returns nil, nil for a page the options leave out.
func (st *siteState) loadPage(f srcFile) (*Page, error) {
	src, err := f.read()
	if err != nil {
		return nil, err
	}
	doc, err := frontmatter.Parse(f.Shown, src)
	if err != nil {
		return nil, err
	}
	m, err := parseMeta(f.Shown, doc, st.cfg)
	if err != nil {
		return nil, err
	}
	rel := f.Rel
	dir, base := path.Split(trimContentExt(rel))
	dir = strings.TrimSuffix(dir, "/")
	// name is the page's own name: the file's, or a leaf bundle's folder's.
	name := base
	if base == "index" && dir != "" {
		name = path.Base(dir)
	}
	stripped := name
	if st.cfg.DatesFromFileNames && base != "_index" {
		if d, rest, ok := fileNameDate(name, st.cfg.Location); ok {
			stripped = rest
			if m.date.IsZero() {
				m.date = d
			}
			if m.slug == "" {
				m.slug = rest
			}
		}
	}
	now := st.opts.Now
	if m.draft && !st.opts.Drafts {
		st.report.count(&st.report.Drafts)
		return nil, nil
	}
	pub := m.publishDate
	if pub.IsZero() {
		pub = m.date
	}
	if !pub.IsZero() && pub.After(now) && !st.opts.Future {
		st.report.count(&st.report.Future)
		if !m.draft || st.opts.Drafts {
			st.dueAt(pub)
		}
		return nil, nil
	}
	if !m.expiryDate.IsZero() && !m.expiryDate.After(now) && !st.opts.Expired {
		st.report.count(&st.report.Expired)
		return nil, nil
	}
	if !m.expiryDate.IsZero() && m.expiryDate.After(now) && !st.opts.Expired {
		st.dueAt(m.expiryDate)
	}
	md := st.md
	if m.rawHTML {
		md = st.mdRaw()
	}
	var res markdown.Result
	if strings.HasSuffix(f.Rel, ".html") {
		// HTML content: the body is the page's content as written.
		res.Content = doc.Body
		res.WordCount = len(strings.Fields(plainify(string(doc.Body))))
	} else if res, err = st.renderMarkdown(md, m.rawHTML, doc.Body); err != nil {
		var se *markdown.ShortcodeError
		if errors.As(err, &se) {
			if se.Name != "" {
				return nil, diag.New(f.Shown, doc.BodyLine+se.Line-1, se.Col, "shortcode %q: %s", se.Name, se.Msg)
			}
			return nil, diag.New(f.Shown, doc.BodyLine+se.Line-1, se.Col, "shortcode: %s", se.Msg)
		}
		return nil, diag.New(f.Shown, doc.BodyLine, 1, "markdown: %v", err)
	}
	if m.title == "" && base != "_index" {
		// A page needs a title for lists and feeds: Jekyll's, from the file name.
		m.title = humanize(stripped)
	}
	p := &Page{
		Title:       m.title,
		Kind:        KindPage,
		Layout:      m.layout,
		Date:        m.date,
		Lastmod:     m.lastmod,
		PublishDate: m.publishDate,
		ExpiryDate:  m.expiryDate,
		Draft:       m.draft,
		Weight:      m.weight,
		Slug:        m.slug,
		Description: strings.TrimSpace(m.description), // a folded YAML scalar ends with a newline
		Content:     template.HTML(st.mdString(res.Content)),
		Summary:     template.HTML(st.mdString(res.Summary)),
		Truncated:   res.Truncated,
		WordCount:   res.WordCount,
		Params:      m.params,
		Aliases:     m.aliases,
		File:        rel,
		shown:       f.Shown,
		menus:       m.menus,
		layoutLine:  m.layoutPos.Line,
		layoutCol:   m.layoutPos.Col,
		srcBody:     doc.Body,
		calls:       res.Shortcodes,
		noRender:    m.noRender,
		noList:      m.noList,
		listLocal:   m.listLocal,
		redirectTo:  m.redirectTo,
		rawHTMLLost: res.RawHTMLOmitted,
		bodyLine:    doc.BodyLine,
		Terms:       map[string][]*Term{},
	}
	if p.Lastmod.IsZero() {
		p.Lastmod = p.Date
	}
	if len(res.TOC) > 0 {
		p.TableOfContents = template.HTML(st.mdString(res.TOC))
	}
	if m.summary != "" {
		s, err := st.md.Inline([]byte(m.summary))
		if err != nil {
			return nil, diag.New(f.Shown, doc.Pos("summary").Line, doc.Pos("summary").Col, "summary: %v", err)
		}
		p.Summary = template.HTML("<p>" + string(s) + "</p>")
		p.Truncated = true
	}
	p.ReadingTime = max(1, (p.WordCount+212)/213)
	// Terms are resolved into *Term by assemble; keep the raw names.
	p.rawTerms = m.terms
	switch {
	case base == "_index":
		p.Kind = KindSection
		p.dir = dir
		if dir == "" {
			p.Kind = KindHome
		}
		p.urlPath = "/" + lowerPath(dir) + "/"
		if dir == "" {
			p.urlPath = "/"
		}
	case base == "index" && dir != "":
		// Leaf bundle: the page is the folder.
		parent, name := path.Split(dir)
		p.dir = strings.TrimSuffix(parent, "/")
		p.urlPath = pageURL(p.dir, name, m)
	default:
		p.dir = dir
		p.urlPath = pageURL(dir, base, m)
	}
	section := strings.SplitN(p.dir, "/", 2)[0]
	if m.url != "" {
		p.urlPath = cleanURL(m.url)
	} else if p.Kind == KindPage {
		pat := m.permalinkPattern
		if pat == "" {
			pat = st.cfg.Permalinks[section]
		}
		if pat != "" {
			p.urlPath = expandPermalink(pat, permalinkVars{
				date: m.date, slug: m.slug, title: m.title, section: section, dir: p.dir,
				filename: name, stripped: stripped, categories: m.terms["categories"],
			})
		}
	}
	// Relative links and images (bundle files) must keep working where the content is
	// shown away from its page: in summaries on list pages and in feeds.
	pageBase := pageBase(st.site, p.urlPath)
	p.Content = template.HTML(rebaseLinks(string(p.Content), pageBase))
	p.Summary = template.HTML(rebaseLinks(string(p.Summary), pageBase))
	if p.Kind == KindPage {
		if i := strings.IndexByte(p.dir, '/'); i >= 0 {
			p.Section = p.dir[:i]
		} else {
			p.Section = p.dir
		}
	} else if p.Kind == KindSection {
		p.Section = strings.SplitN(p.dir, "/", 2)[0]
	}
	p.Type = m.typ
	if p.Type == "" {
		p.Type = p.Section
	}
	return p, nil
}

// rebaseLinks makes relative src and href values in rendered HTML root-relative to base
// (the page's own folder URL). Absolute URLs, root-relative paths, fragments and queries
// are left alone.
func rebaseLinks(html, base string) string {
	if !strings.Contains(html, "src=\"") && !strings.Contains(html, "href=\"") {
		return html
	}
	var b strings.Builder
	last := 0
	scanAttrs(html, true, func(start, end int) {
		v := html[start:end]
		if v == "" || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "#") || strings.HasPrefix(v, "?") || strings.HasPrefix(v, "%00sc") {
			// %00sc: a shortcode placeholder, rebased (if relative) once it has run.
			return
		}
		if i := strings.IndexAny(v, ":/?#"); i >= 0 && v[i] == ':' {
			return // has a scheme: https:, mailto:, tel:
		}
		if b.Len() == 0 {
			b.Grow(len(html) + 64)
		}
		b.WriteString(html[last:start])
		b.WriteString(path.Clean(base+v) + keepSlash(v))
		last = end
	})
	if last == 0 {
		return html
	}
	b.WriteString(html[last:])
	return b.String()
}

func keepSlash(v string) string {
	if strings.HasSuffix(v, "/") && v != "./" {
		return "/"
	}
	return ""
}

// pageURL is the pretty URL of a page in dir named base (slug wins over the file name).
func pageURL(dir, base string, m *meta) string {
	name := lowerPath(base)
	if m.slug != "" {
		name = m.slug
	}
	if dir == "" {
		return "/" + name + "/"
	}
	return "/" + lowerPath(dir) + "/" + name + "/"
}

// lowerPath lower-cases a content path and turns spaces into dashes.
func lowerPath(p string) string {
	return strings.ReplaceAll(strings.ToLower(p), " ", "-")
}

// cleanURL normalises a front matter url: leading slash, no dot segments, and a trailing
// slash unless it names a file (has an extension).
func cleanURL(u string) string {
	c := path.Clean("/" + u)
	if path.Ext(c) == "" && c != "/" {
		c += "/"
	}
	return c
}

// outPathFor maps a URL path to the file written: "/a/b/" is "a/b/index.html".
func outPathFor(urlPath string) string {
	p := strings.TrimPrefix(urlPath, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		return p + "index.html"
	}
	return p
}

// loadData reads data/ into nested maps: data/a/b.yaml is Data.a.b.
func (st *siteState) loadData() (map[string]any, error) {
	files, err := st.src.walk("data", nil)
	if err != nil {
		return nil, err
	}
	root := map[string]any{}
	for _, f := range files {
		ext := path.Ext(f.Rel)
		var v any
		b, err := f.read()
		if err != nil {
			return nil, err
		}
		switch ext {
		case ".yaml", ".yml":
			if err := yaml.UnmarshalWithOptions(b, &v); err != nil {
				return nil, diag.FromYAML(f.Shown, err)
			}
		case ".json":
			if err := json.Unmarshal(b, &v); err != nil {
				var se *json.SyntaxError
				if errors.As(err, &se) {
					line, col := lineCol(b, int(se.Offset))
					return nil, diag.New(f.Shown, line, col, "JSON: %v", err)
				}
				return nil, diag.New(f.Shown, 0, 0, "JSON: %v", err)
			}
		case ".toml":
			m := map[string]any{}
			if err := toml.Unmarshal(b, &m); err != nil {
				var de *toml.DecodeError
				if errors.As(err, &de) {
					r, c := de.Position()
					return nil, diag.New(f.Shown, r, c, "TOML: %v", de.Error())
				}
				return nil, diag.New(f.Shown, 0, 0, "TOML: %v", err)
			}
			v = m
		default:
			continue
		}
		parts := strings.Split(strings.TrimSuffix(f.Rel, ext), "/")
		m := root
		for _, seg := range parts[:len(parts)-1] {
			next, ok := m[seg].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[seg] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = frontmatter.Normalize(v)
	}
	return root, nil
}

func lineCol(b []byte, off int) (int, int) {
	if off > len(b) {
		off = len(b)
	}
	line, col := 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// contentType is the MIME type for a file name, deterministic across machines.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := knownTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

var knownTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".xml":         "application/xml",
	".txt":         "text/plain; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".pdf":         "application/pdf",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".mp3":         "audio/mpeg",
	".wasm":        "application/wasm",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".md":          "text/markdown; charset=utf-8",
}
