package importer

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// jsite is a Jekyll or Eleventy source being imported.
type jsite struct {
	fsys     fs.FS
	s        *site
	eleventy bool
	input    string // Eleventy's input folder ("." for Jekyll)
	includes string // the includes folder, relative to input
	data     string
	cfg      map[string]any
	basePath string
	siteURL  string
	// permalink is the Jekyll posts pattern (Jekyll tokens).
	permalink string
	// docs are the pages and posts by source path (relative to input).
	docs   map[string]*jdoc
	order  []string
	shorts map[string]bool // shortcodes written from includes (false: could not be)
	redirs [][2]string     // site.yaml redirects: from, to
}

// jdoc is one page or post.
type jdoc struct {
	src     string // path relative to input
	dst     string // path under content/
	post    bool
	fm      []byte
	delim   string
	body    []byte
	line    int
	fields  map[string]any
	oldURL  string // the URL the source site gives it (without the base path)
	setURL  bool   // write url: into its front matter
	pattern string // posts: the permalink pattern (stump tokens) from front matter
}

var (
	postNameRE = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})-(.+)$`)
	inputRE    = regexp.MustCompile(`input\s*:\s*["'\x60]([^"'\x60]+)["'\x60]`)
	includesRE = regexp.MustCompile(`includes\s*:\s*["'\x60]([^"'\x60]+)["'\x60]`)
	dataRE     = regexp.MustCompile(`data\s*:\s*["'\x60]([^"'\x60]+)["'\x60]`)
	prefixRE   = regexp.MustCompile(`pathPrefix\s*:\s*["'\x60]([^"'\x60]+)["'\x60]`)
	permJSRE   = regexp.MustCompile("permalink\\s*:\\s*(?:\"([^\"]*)\"|'([^']*)'|`([^`]*)`|(false))")
	tagsJSRE   = regexp.MustCompile(`tags\s*:\s*(?:["'\x60]([^"'\x60]*)["'\x60]|\[([^\]]*)\])`)
)

func importJekyll(ctx context.Context, fsys fs.FS, s *site, eleventy bool) error {
	j := &jsite{fsys: fsys, s: s, eleventy: eleventy, input: ".", includes: "_includes", data: "_data", docs: map[string]*jdoc{}, shorts: map[string]bool{}}
	if err := j.readConfig(); err != nil {
		return err
	}
	files, err := walk(fsys, j.input)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(f, j.input+"/")
		if j.input == "." {
			rel = f
		}
		j.classify(rel)
	}
	j.computeURLs()
	j.writeConfig()
	for _, rel := range j.order {
		j.writeDoc(j.docs[rel])
	}
	return nil
}

func (j *jsite) read(rel string) []byte {
	p := rel
	if j.input != "." {
		p = j.input + "/" + rel
	}
	b, _ := fs.ReadFile(j.fsys, p)
	return b
}

// readConfig reads _config.yml (Jekyll) or the Eleventy config's folders and the site
// metadata in its data folder.
func (j *jsite) readConfig() error {
	j.cfg = map[string]any{}
	if !j.eleventy {
		for _, name := range []string{"_config.yml", "_config.yaml"} {
			if b, err := fs.ReadFile(j.fsys, name); err == nil {
				if err := yaml.Unmarshal(b, &j.cfg); err != nil {
					return fmt.Errorf("import: %s: %w", name, err)
				}
				break
			}
		}
		j.permalink = str(j.cfg["permalink"])
		u := strings.TrimSuffix(str(j.cfg["url"]), "/")
		j.siteURL = u
		j.basePath = strings.TrimSuffix(str(j.cfg["baseurl"]), "/")
		return nil
	}
	for _, name := range []string{".eleventy.js", "eleventy.config.js", "eleventy.config.mjs", "eleventy.config.cjs"} {
		b, err := fs.ReadFile(j.fsys, name)
		if err != nil {
			continue
		}
		src := string(b)
		if m := inputRE.FindStringSubmatch(src); m != nil {
			j.input = path.Clean(m[1])
		}
		if m := includesRE.FindStringSubmatch(src); m != nil {
			j.includes = path.Clean(m[1])
		}
		if m := dataRE.FindStringSubmatch(src); m != nil {
			j.data = path.Clean(m[1])
		}
		if m := prefixRE.FindStringSubmatch(src); m != nil {
			j.basePath = strings.TrimSuffix(m[1], "/")
		}
		j.s.note(name, 0, "the Eleventy config is JavaScript: only its folders (input, includes, data) and pathPrefix were read; filters, shortcodes, collections and plugins are not carried over")
		break
	}
	for _, name := range []string{"metadata.json", "site.json", "metadata.yaml", "site.yaml"} {
		b := j.read(j.data + "/" + name)
		if b == nil {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(b, &m); err == nil {
			for k, v := range m {
				j.cfg[k] = v
			}
		}
		break
	}
	j.siteURL = strings.TrimSuffix(str(j.cfg["url"]), "/")
	return nil
}

func (j *jsite) excluded(rel string) bool {
	for _, x := range strList(j.cfg["exclude"]) {
		x = strings.Trim(x, "/")
		if rel == x || strings.HasPrefix(rel, x+"/") {
			return true
		}
		if ok, _ := path.Match(x, rel); ok {
			return true
		}
	}
	first := strings.SplitN(rel, "/", 2)[0]
	switch first {
	case "Gemfile", "Gemfile.lock", "node_modules", "vendor", "_site", "package.json", "package-lock.json",
		".eleventy.js", "eleventy.config.js", "eleventy.config.mjs", "eleventy.config.cjs", "README.md", "LICENSE", "CNAME":
		return true
	}
	return false
}

// classify files one source file: a page or post (kept as a doc), a data file, a static
// file, or a note.
func (j *jsite) classify(rel string) {
	if j.excluded(rel) {
		return
	}
	base := path.Base(rel)
	ext := strings.ToLower(path.Ext(rel))
	first := strings.SplitN(rel, "/", 2)[0]
	if first == j.data || strings.HasPrefix(rel, j.data+"/") {
		switch ext {
		case ".yml", ".yaml", ".json", ".toml":
			out := strings.TrimPrefix(rel, j.data+"/")
			if ext == ".yml" {
				out = strings.TrimSuffix(out, ext) + ".yaml"
			}
			j.s.put("data/"+out, j.read(rel))
		default:
			j.s.note(rel, 0, "data file not carried over (stump reads YAML, JSON and TOML data)")
		}
		return
	}
	if first == j.includes || strings.HasPrefix(rel, j.includes+"/") {
		return // used through {% include %}
	}
	if strings.HasSuffix(base, ".11tydata.js") || strings.HasSuffix(base, ".11tydata.json") || strings.HasSuffix(base, ".11tydata.cjs") {
		return // read as directory data
	}
	if !j.eleventy && strings.HasPrefix(first, "_") && first != "_posts" && !strings.Contains(rel, "/_posts/") {
		switch first {
		case "_layouts", "_sass", "_plugins":
			j.s.note(rel, 0, "not carried over: stump sites use a stump theme (layouts, styles and plugins are the theme's)")
		default:
			if strings.HasPrefix(first, "_") && first != "_config.yml" && first != "_config.yaml" {
				j.s.note(rel, 0, "not carried over (a Jekyll collection or folder stump does not read)")
			}
		}
		return
	}
	b := j.read(rel)
	fm, delim, body, line := splitFrontMatter(b)
	switch ext {
	case ".md", ".markdown", ".mdown", ".mkd", ".html", ".htm":
		isPost := !j.eleventy && (first == "_posts" || strings.Contains(rel, "/_posts/"))
		if delim == "" && !j.eleventy && !isPost {
			j.s.put("static/"+rel, b) // Jekyll copies files without front matter as they are
			return
		}
		if ext == ".html" || ext == ".htm" {
			if delim == "" {
				j.s.put("static/"+rel, b)
				return
			}
		}
		d := &jdoc{src: rel, post: isPost, fm: fm, delim: delim, body: body, line: line}
		if delim == "+++" {
			j.s.note(rel, 1, "TOML front matter kept as it is")
		}
		d.fields = yamlFields(fm)
		j.docs[rel] = d
		j.order = append(j.order, rel)
	case ".njk", ".liquid", ".hbs", ".ejs", ".pug", ".11ty.js", ".haml", ".mustache":
		j.templatePage(rel, fm)
	default:
		if strings.HasSuffix(base, ".json") && (base == path.Base(path.Dir(rel))+".json") && j.eleventy {
			return // directory data
		}
		j.s.put("static/"+rel, b)
	}
}

// templatePage handles an Eleventy or Jekyll page written in a template language: feeds
// and sitemaps become redirects to stump's own, the rest a note.
func (j *jsite) templatePage(rel string, fm []byte) {
	f := yamlFields(fm)
	perm := str(f["permalink"])
	low := strings.ToLower(rel + " " + perm)
	switch {
	case strings.Contains(low, "sitemap"):
		if perm != "" && perm != "/sitemap.xml" {
			j.redirect(perm, "/sitemap.xml")
		}
		j.s.note(rel, 0, "a sitemap template: stump writes /sitemap.xml itself")
	case strings.Contains(low, "feed") || strings.Contains(low, "atom") || strings.Contains(low, "rss"):
		if perm != "" {
			j.redirect(perm, "/index.xml")
		}
		j.s.note(rel, 0, "a feed template: stump writes /index.xml itself; its URL %s redirects there", perm)
	default:
		lang := map[string]string{".njk": "Nunjucks", ".liquid": "Liquid", ".hbs": "Handlebars", ".ejs": "EJS", ".pug": "Pug", ".haml": "Haml", ".mustache": "Mustache"}[path.Ext(rel)]
		if lang == "" {
			lang = "JavaScript"
		}
		j.s.note(rel, 0, "a %s template page is not carried over (stump pages are Markdown or HTML; stump makes its own lists, tag pages and feeds)", lang)
	}
}

// redirect adds a site.yaml redirect (kept on the jsite through s.files at writeConfig).
func (j *jsite) redirect(from, to string) {
	if strings.Contains(from, "{{") || !strings.HasPrefix(from, "/") {
		return
	}
	j.redirs = append(j.redirs, [2]string{from, to})
}

// computeURLs gives every doc its source URL and its place under content/.
func (j *jsite) computeURLs() {
	for _, rel := range j.order {
		d := j.docs[rel]
		ext := path.Ext(rel)
		stem := strings.TrimSuffix(rel, ext)
		outExt := ".md"
		if ext == ".html" || ext == ".htm" {
			outExt = ".html"
		}
		if d.post {
			// _posts/sub/2014-03-20-x.md → content/posts/sub/2014-03-20-x.md
			i := strings.Index(stem, "_posts/")
			d.dst = "posts/" + stem[i+len("_posts/"):] + outExt
			d.oldURL = j.postURL(d)
			continue
		}
		dir, name := path.Split(stem)
		dir = strings.TrimSuffix(dir, "/")
		if name == "index" {
			d.dst = path.Join(dir, "_index"+outExt)
		} else {
			d.dst = stem + outExt
		}
		d.oldURL = j.pageURL(d, dir, name)
		def := stumpURL(d.dst, str(d.fields["slug"]), false)
		if d.oldURL != def {
			d.setURL = true
		}
	}
}

// jekyllPattern returns a Jekyll permalink style or pattern as a pattern.
func jekyllPattern(p string) string {
	switch p {
	case "", "date":
		return "/:categories/:year/:month/:day/:title:output_ext"
	case "pretty":
		return "/:categories/:year/:month/:day/:title/"
	case "ordinal":
		return "/:categories/:year/:y_day/:title:output_ext"
	case "weekdate":
		return "/:categories/:year/W:week/:short_day/:title:output_ext"
	case "none":
		return "/:categories/:title:output_ext"
	}
	return p
}

// toStumpPattern maps Jekyll's tokens to stump's; ok is false for tokens stump lacks.
func toStumpPattern(p string) (string, []string) {
	var missing []string
	out := jekyllTokenRE.ReplaceAllStringFunc(p, func(t string) string {
		switch t[1:] {
		case "year", "month", "day", "hour", "minute", "second", "categories":
			return t
		case "title", "slug", "name":
			return ":slugorfilename"
		case "output_ext":
			return ".html"
		case "i_month", "i_day", "short_year", "y_day", "short_day", "week", "long_day", "long_month", "short_month", "path", "basename", "collection", "slugified_categories":
			missing = append(missing, t)
			return t
		}
		missing = append(missing, t)
		return t
	})
	return out, missing
}

var jekyllTokenRE = regexp.MustCompile(`:[a-z_]+`)

// postURL is the URL Jekyll gives a post.
func (j *jsite) postURL(d *jdoc) string {
	name := strings.TrimSuffix(path.Base(d.src), path.Ext(d.src))
	m := postNameRE.FindStringSubmatch(name)
	slug := name
	date := time.Time{}
	if m != nil {
		slug = m[4]
		date, _ = time.Parse("2006-01-02", m[1]+"-"+m[2]+"-"+m[3])
	}
	if s := str(d.fields["slug"]); s != "" {
		slug = s
	}
	if t, ok := looseDate(d.fields["date"]); ok {
		date = t
	}
	pat := jekyllPattern(j.permalink)
	if p := str(d.fields["permalink"]); p != "" {
		pat = p
		d.pattern = p
	}
	var cats []string
	for _, k := range []string{"category", "categories"} {
		cats = append(cats, strList(d.fields[k])...)
	}
	r := strings.NewReplacer(":year", fmt.Sprintf("%04d", date.Year()), ":month", fmt.Sprintf("%02d", date.Month()),
		":day", fmt.Sprintf("%02d", date.Day()), ":title", slug, ":slug", slug, ":name", slug, ":output_ext", ".html",
		":categories", strings.ToLower(strings.Join(cats, "/")))
	u := r.Replace(pat)
	for strings.Contains(u, "//") {
		u = strings.ReplaceAll(u, "//", "/")
	}
	return u
}

// pageURL is the URL Jekyll or Eleventy gives a page.
func (j *jsite) pageURL(d *jdoc, dir, name string) string {
	pretty := j.eleventy || j.permalink == "pretty" || strings.HasSuffix(j.permalink, "/")
	if p := str(d.fields["permalink"]); p != "" && !strings.Contains(p, "{{") {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		return p
	}
	if j.eleventy {
		if p, ok := j.eleventyPermalink(d, dir, name); ok {
			return p
		}
	}
	ext := path.Ext(d.src)
	if name == "index" {
		if dir == "" {
			return "/"
		}
		return "/" + dir + "/"
	}
	if pretty || ext == "" {
		return "/" + path.Join(dir, name) + "/"
	}
	return "/" + path.Join(dir, name) + ".html"
}

// eleventyPermalink evaluates a permalink from front matter or directory data that uses
// the few expressions real sites write: page.fileSlug, page.filePathStem, title | slug,
// and page.date | date with %Y %m %d or yyyy MM dd.
func (j *jsite) eleventyPermalink(d *jdoc, dir, name string) (string, bool) {
	p := str(d.fields["permalink"])
	if p == "" {
		p = j.dirData(dir)
	}
	if p == "" {
		return "", false
	}
	slug := name
	date := time.Time{}
	if m := postNameRE.FindStringSubmatch(name); m != nil {
		slug = m[4]
		date, _ = time.Parse("2006-01-02", m[1]+"-"+m[2]+"-"+m[3])
	}
	if t, ok := looseDate(d.fields["date"]); ok {
		date = t
	}
	ok := true
	out := exprRE.ReplaceAllStringFunc(p, func(e string) string {
		inner := strings.TrimSpace(e[2 : len(e)-2])
		switch {
		case inner == "page.fileSlug":
			return slug
		case inner == "page.filePathStem":
			return "/" + path.Join(dir, name)
		case strings.HasPrefix(inner, "title") && (strings.Contains(inner, "slug")):
			return slugify(str(d.fields["title"]))
		case strings.HasPrefix(inner, "page.date") && strings.Contains(inner, "date"):
			f := inner[strings.LastIndexAny(inner, "(:")+1:]
			f = strings.Trim(strings.TrimSpace(f), `"')`)
			f = strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "yyyy", "2006", "MM", "01", "dd", "02").Replace(f)
			return date.Format(f)
		}
		ok = false
		return e
	})
	if !ok {
		j.s.note(d.src, 0, "permalink %q has an expression import cannot evaluate; the page keeps stump's URL", p)
		return "", false
	}
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out, true
}

var exprRE = regexp.MustCompile(`\{\{[^}]*\}\}`)

// dirData returns the permalink of a folder's Eleventy directory data file.
func (j *jsite) dirData(dir string) string {
	for d := dir; ; d = path.Dir(d) {
		if d == "." || d == "" {
			return ""
		}
		base := path.Base(d)
		for _, name := range []string{base + ".11tydata.json", base + ".json", base + ".11tydata.js", base + ".11tydata.cjs"} {
			b := j.read(d + "/" + name)
			if b == nil {
				continue
			}
			if m := permJSRE.FindStringSubmatch(string(b)); m != nil {
				return m[1] + m[2] + m[3]
			}
		}
		if !strings.Contains(d, "/") {
			return ""
		}
	}
}

func (j *jsite) dirTags(dir string) []string {
	for d := dir; d != "." && d != ""; d = path.Dir(d) {
		base := path.Base(d)
		for _, name := range []string{base + ".11tydata.json", base + ".json", base + ".11tydata.js", base + ".11tydata.cjs"} {
			b := j.read(d + "/" + name)
			if b == nil {
				continue
			}
			if m := tagsJSRE.FindStringSubmatch(string(b)); m != nil {
				if m[1] != "" {
					return []string{m[1]}
				}
				var out []string
				for _, t := range strings.Split(m[2], ",") {
					if t = strings.Trim(strings.TrimSpace(t), `"'`+"`"); t != "" {
						out = append(out, t)
					}
				}
				return out
			}
		}
		if !strings.Contains(d, "/") {
			break
		}
	}
	return nil
}

// stumpURL is the URL stump gives content/<dst> with no url: (mirrors the build: a
// file-name date and slug are taken from dated names unless fileNameDates is off).
func stumpURL(dst, slug string, noFileDates bool) string {
	stem := strings.TrimSuffix(dst, path.Ext(dst))
	dir, name := path.Split(stem)
	dir = strings.TrimSuffix(dir, "/")
	if name == "_index" {
		if dir == "" {
			return "/"
		}
		return "/" + strings.ToLower(dir) + "/"
	}
	if m := postNameRE.FindStringSubmatch(name); m != nil && !noFileDates && slug == "" {
		slug = m[4]
	}
	if slug != "" {
		name = slug
	}
	return "/" + strings.ReplaceAll(strings.ToLower(path.Join(dir, name)), " ", "-") + "/"
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

func slugify(s string) string {
	return strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// writeConfig writes site.yaml.
func (j *jsite) writeConfig() {
	var ms yaml.MapSlice
	add := func(k string, v any) { ms = append(ms, yaml.MapItem{Key: k, Value: v}) }
	title := str(j.cfg["title"])
	if title == "" {
		title = str(j.cfg["name"])
	}
	if title != "" {
		add("title", title)
	}
	if j.siteURL != "" {
		add("baseURL", j.siteURL+j.basePath+"/")
	} else if j.basePath != "" {
		add("baseURL", j.basePath+"/")
	}
	if tz := str(j.cfg["timezone"]); tz != "" {
		add("timeZone", tz)
	}
	if n, ok := j.cfg["paginate"].(uint64); ok && n > 0 {
		add("paginate", int(n))
	}
	// Kramdown and markdown-it pass raw HTML through; so does the imported site.
	add("markdown", yaml.MapSlice{{Key: "unsafe", Value: true}})
	if j.eleventy {
		add("fileNameDates", true)
	}
	if !j.eleventy {
		pat, missing := toStumpPattern(jekyllPattern(j.permalink))
		if len(missing) > 0 {
			j.s.note("_config.yml", 0, "permalink %q uses %s, which stump does not have; posts get their URLs one by one", j.permalink, strings.Join(missing, " "))
			for _, d := range j.docs {
				if d.post {
					d.setURL = true
				}
			}
		} else if j.hasPosts() {
			add("permalinks", yaml.MapSlice{{Key: "posts", Value: pat}})
		}
	}
	params := yaml.MapSlice{}
	keys := make([]string, 0, len(j.cfg))
	for k := range j.cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "title", "url", "baseurl", "permalink", "timezone", "paginate", "exclude", "include", "plugins", "gems",
			"markdown", "kramdown", "highlighter", "theme", "collections", "defaults", "sass", "paginate_path", "name":
			if k == "plugins" || k == "gems" || k == "theme" || k == "collections" || k == "defaults" {
				j.s.note("_config.yml", 0, "%s: not carried over (stump has its own theme and features)", k)
			}
			continue
		}
		switch j.cfg[k].(type) {
		case string, bool, uint64, int64, float64, int:
			params = append(params, yaml.MapItem{Key: k, Value: j.cfg[k]})
		}
	}
	if len(params) > 0 {
		add("params", params)
	}
	plugins := strings.Join(strList(j.cfg["plugins"]), " ") + " " + strings.Join(strList(j.cfg["gems"]), " ")
	if strings.Contains(plugins, "jekyll-feed") {
		j.redirs = append(j.redirs, [2]string{"/feed.xml", "/index.xml"})
	}
	if n, ok := j.cfg["paginate"].(uint64); ok && n > 0 {
		pp := str(j.cfg["paginate_path"])
		if pp == "" {
			pp = "/page:num/"
		}
		posts := 0
		for _, d := range j.docs {
			if d.post && d.fields["published"] != false {
				posts++
			}
		}
		for i := 2; i <= (posts+int(n)-1)/int(n); i++ {
			from := strings.ReplaceAll(pp, ":num", fmt.Sprint(i))
			if !strings.HasSuffix(from, "/") && path.Ext(from) == "" {
				from += "/"
			}
			to := fmt.Sprintf("/posts/page/%d/", i) // the posts list, which paginates
			if from != to {
				j.redirs = append(j.redirs, [2]string{from, to})
			}
		}
	}
	if len(j.redirs) > 0 {
		var rs []yaml.MapSlice
		for _, r := range j.redirs {
			rs = append(rs, yaml.MapSlice{{Key: "from", Value: r[0]}, {Key: "to", Value: r[1]}})
		}
		add("redirects", rs)
	}
	j.s.put("site.yaml", marshalConfig(ms))
}

func (j *jsite) hasPosts() bool {
	for _, d := range j.docs {
		if d.post {
			return true
		}
	}
	return false
}

// writeDoc writes one page or post with its front matter adjusted and its body rewritten.
func (j *jsite) writeDoc(d *jdoc) {
	j.s.pages++
	f := newFM(d.fm)
	if d.delim == "+++" {
		j.s.put("content/"+d.dst, append([]byte("+++\n"+string(d.fm)+"+++\n"), d.body...))
		return
	}
	for _, k := range []string{"categories", "tags"} {
		if s, ok := d.fields[k].(string); ok {
			f.set(k, strings.Fields(s))
		}
	}
	if c, ok := d.fields["category"].(string); ok && d.fields["categories"] == nil {
		f.del("category")
		f.set("categories", []string{c})
	}
	if j.eleventy {
		if tags := j.dirTags(path.Dir(d.src)); len(tags) > 0 && d.fields["tags"] == nil {
			f.set("tags", tags)
		}
		if l := str(d.fields["layout"]); l != "" {
			f.del("layout")
		}
		if p := str(d.fields["permalink"]); strings.Contains(p, "{{") {
			f.del("permalink")
		}
	}
	if d.post && d.pattern != "" {
		pat, missing := toStumpPattern(d.pattern)
		if len(missing) > 0 || !strings.Contains(d.pattern, ":") {
			f.del("permalink")
			d.setURL = true
		} else {
			f.set("permalink", pat)
		}
	}
	if d.setURL {
		f.del("permalink")
		f.set("url", d.oldURL)
	}
	if t := str(d.fields["title"]); t == "" && !strings.HasPrefix(path.Base(d.dst), "_index.") {
		j.s.note(d.src, 0, "no title: stump makes one from the file name")
	}
	vars := map[string]string{"site.baseurl": j.basePath, "site.url": j.siteURL, "page.url": j.basePath + d.oldURL}
	for k, v := range j.cfg {
		switch v.(type) {
		case string, uint64, int64, float64, bool:
			vars["site."+k] = str(v)
			vars["metadata."+k] = str(v)
		}
	}
	for k, v := range d.fields {
		switch v.(type) {
		case string, uint64, int64, float64, bool:
			vars["page."+k] = str(v)
			vars[k] = str(v) // Eleventy's front matter data is top-level
		}
	}
	l := &liquid{s: j.s, file: d.src, basePath: j.basePath, siteURL: j.siteURL, vars: vars,
		link: j.linkURL, postURL: j.postURLByName, include: j.include}
	body := l.rewrite(string(d.body), d.line)
	// Liquid in front matter values (Eleventy titles, descriptions).
	fmOut := string(f.bytes())
	if strings.Contains(fmOut, "{{") || strings.Contains(fmOut, "{%") {
		j.s.note(d.src, 1, "front matter holds template expressions stump does not run")
	}
	j.s.put("content/"+d.dst, []byte(fmOut+body))
}

// linkURL resolves {% link path %}: a source path of a page or post.
func (j *jsite) linkURL(target string) (string, bool) {
	target = strings.TrimPrefix(target, "/")
	if d, ok := j.docs[target]; ok {
		return j.basePath + d.oldURL, true
	}
	return "", false
}

// postURLByName resolves {% post_url 2014-03-20-hello %}.
func (j *jsite) postURLByName(name string) (string, bool) {
	for _, rel := range j.order {
		d := j.docs[rel]
		if !d.post {
			continue
		}
		stem := strings.TrimSuffix(d.src, path.Ext(d.src))
		if path.Base(stem) == name || strings.HasSuffix(stem, "/"+name) {
			return j.basePath + d.oldURL, true
		}
	}
	return "", false
}

// include turns {% include file.html k="v" %} into a shortcode: a built-in of the same
// name, or one written from the include file when it only uses {{ include.x }}.
func (j *jsite) include(file string, args []arg, from string, line int) string {
	name := strings.TrimSuffix(path.Base(file), path.Ext(file))
	name = strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if name == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("{{< " + name)
	for _, a := range args {
		v := a.val
		if m := quotedRE.FindStringSubmatch(v); m != nil {
			v = m[1] + m[2]
		} else if strings.Contains(v, ".") {
			j.s.note(from, line, "include %s: argument %s=%s is a variable; left out", file, a.key, a.val)
			continue
		}
		if a.key == "" {
			fmt.Fprintf(&b, " %q", v)
		} else {
			fmt.Fprintf(&b, " %s=%q", a.key, v)
		}
	}
	b.WriteString(" >}}")
	switch name {
	case "youtube", "vimeo", "figure", "gist", "x", "tweet", "twitter", "instagram", "details", "highlight":
		return b.String()
	}
	ok, seen := j.shorts[name]
	if seen && !ok {
		j.s.note(from, line, "include %s is not carried over; removed", file)
		return ""
	}
	if !seen {
		text := j.read(j.includes + "/" + file)
		if text == nil {
			j.s.note(from, line, "include %s: no such file in %s; removed", file, j.includes)
			return ""
		}
		sc, ok := includeShortcode(string(text))
		if !ok {
			j.s.note(j.includes+"/"+file, 0, "include uses Liquid beyond {{ include.x }}; it is not carried over, and pages that include it lose it")
			j.s.note(from, line, "include %s is not carried over; removed", file)
			j.shorts[name] = false
			return ""
		}
		j.s.put("layouts/shortcodes/"+name+".html", []byte(sc))
		j.shorts[name] = true
	}
	return b.String()
}

// looseDate reads the day of a front matter date (a time, or text starting 2006-01-02).
func looseDate(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		if len(t) >= 10 {
			if d, err := time.Parse("2006-01-02", t[:10]); err == nil {
				return d, true
			}
		}
	}
	return time.Time{}, false
}
