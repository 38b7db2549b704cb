// Package config reads the workspace file (stump.yaml) and each site's site.yaml.
//
// Both are YAML decoded strictly: an unknown key or a value of the wrong type is an error
// naming the file, line and column (see package diag). Defaults from the workspace's
// `defaults:` apply to every site, and a site's own keys win. Nothing here touches the
// network or writes files.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/frontmatter"
)

// WorkspaceFile is the name of the workspace config at the workspace root.
const WorkspaceFile = "stump.yaml"

// SiteFile is the name of a site's config inside sites/<site>/.
const SiteFile = "site.yaml"

// Workspace is stump.yaml.
type Workspace struct {
	// Output is the folder sites are built into, relative to the workspace (default "public").
	Output string `yaml:"output"`
	// Defaults are site settings every site starts from.
	Defaults Site `yaml:"defaults"`
	// Params are merged under each site's params.
	Params map[string]any `yaml:"params"`
	// Targets names publish targets (URLs) that sites refer to by name.
	Targets map[string]string `yaml:"targets"`
}

// Site is sites/<site>/site.yaml. Zero values mean "not set" so that defaults can fill them.
type Site struct {
	Title        string `yaml:"title"`
	BaseURL      string `yaml:"baseURL"`
	LanguageCode string `yaml:"languageCode"`
	Theme        string `yaml:"theme"`
	Copyright    string `yaml:"copyright"`
	// Paginate is the page size of list pages (default 10).
	Paginate int `yaml:"paginate"`
	// TimeZone is the IANA zone for front matter dates without an offset (default UTC).
	TimeZone string `yaml:"timeZone"`
	// Taxonomies maps singular to plural names (default tag: tags, category: categories).
	Taxonomies map[string]string `yaml:"taxonomies"`
	// Menus are named menus of entries.
	Menus map[string][]MenuEntry `yaml:"menus"`
	// Params are free-form values for templates.
	Params   map[string]any `yaml:"params"`
	Markdown Markdown       `yaml:"markdown"`
	// Feeds is "rss" (default), "atom" or "none".
	Feeds string `yaml:"feeds"`
	// FeedLimit caps the entries of a feed (default 20).
	FeedLimit int `yaml:"feedLimit"`
	// Sitemap and Robots turn sitemap.xml and robots.txt off when false.
	Sitemap *bool `yaml:"sitemap"`
	Robots  *bool `yaml:"robots"`
	// Minify minifies HTML pages too (assets referenced through `asset` always are).
	Minify bool `yaml:"minify"`
	// CheckLinks checks root-relative links in pages against what the build writes:
	// LinksWarn (the default: a warning with file:line:col, an error with --strict),
	// LinksError (true) or LinksOff (false).
	CheckLinks LinkCheck `yaml:"checkLinks"`
	// Target is where `stump publish` sends the site (a URL or a name in stump.yaml targets).
	Target string `yaml:"target"`
	// Headers are extra response headers by path glob, applied at publish.
	Headers []HeaderRule `yaml:"headers"`
	// Redirects are extra redirects, written as redirect pages (and as S3 website
	// redirects at publish).
	Redirects []Redirect `yaml:"redirects"`
	// Ignore lists globs (relative to content/ and static/) that are never built.
	Ignore []string `yaml:"ignore"`
	// Cache sets Cache-Control TTLs by cache class at publish.
	Cache Cache `yaml:"cache"`
	// Deploy tunes publishing.
	Deploy Deploy `yaml:"deploy"`
	// CDN lists the CDNs in front of the site, each a one-key map naming its kind
	// (varnish, fastly, cloudfront, cloudflare) to its settings; package purge reads them.
	CDN []map[string]any `yaml:"cdn"`
	// Permalinks maps a section (a top-level folder of content/) or a taxonomy (its
	// plural) to a URL pattern with Hugo's tokens, like /:year/:month/:day/:slug/
	// (docs/content.md lists them). A page's url: still wins.
	Permalinks map[string]string `yaml:"permalinks"`
	// FileNameDates reads the date and the slug from a file (or bundle folder) named
	// YYYY-MM-DD-slug, as Jekyll and Hugo's :filename do (default true).
	FileNameDates *bool `yaml:"fileNameDates"`
	// FrontMatterAliases maps more front matter keys to the keys stump reads
	// (pubdate: date, teaser: summary); keys are matched without case.
	FrontMatterAliases map[string]string `yaml:"frontMatterAliases"`
	// Edge configures the Varnish edge in front of the site (`stump edge vcl`, package
	// edge, docs/edge.md). Nil when site.yaml has no edge: section.
	Edge *Edge `yaml:"edge"`
	// Source names where content comes from besides the site's own files (packages
	// under source/, docs/wordpress.md). Nil when site.yaml has no source: section.
	Source *Source `yaml:"source"`
}

// Source is a site's content source. build never reads it: `stump wordpress pull` (and
// `stump publish`, which pulls first) turn the foreign content into content files.
type Source struct {
	WordPress *WordPress `yaml:"wordpress"`
}

// WordPress is a WordPress site pulled over its REST API (package source/wordpress).
type WordPress struct {
	// URL is the WordPress site; its REST API root is discovered from it.
	URL string `yaml:"url"`
	// User is the user of the application password in STUMP_WP_PASSWORD ("": anonymous,
	// which cannot see scheduled posts).
	User string `yaml:"user"`
	// Section is the content folder posts go to (default: the type's REST base, "posts").
	Section string `yaml:"section"`
	// Types are the REST bases of the post types pulled (default [posts, pages]).
	Types []string `yaml:"types"`
	// EmbedHosts are the hosts iframes may come from (default: YouTube and Vimeo).
	EmbedHosts []string `yaml:"embedHosts"`
	// Concurrency bounds the requests in flight (default 4).
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds each request (default 30s).
	Timeout string `yaml:"timeout"`
}

// Edge is the site's part of the generated edge VCL (package edge checks the values).
type Edge struct {
	// Origin is the S3 website endpoint Varnish fetches from, http://host:port.
	Origin string `yaml:"origin"`
	// OriginHost is the Host header the origin expects (default BUCKET.WebsiteDomain,
	// else the origin's host name).
	OriginHost    string `yaml:"origin_host"`
	WebsiteDomain string `yaml:"website_domain"`
	// Host is the site's public host name (default: baseURL's host); Aliases serve the
	// same site.
	Host    string   `yaml:"host"`
	Aliases []string `yaml:"aliases"`
	// PreviewHost serves deploy previews at <id>.<PreviewHost> (atomic mode).
	PreviewHost string `yaml:"preview_host"`
	// NotFound is the site's 404 page (default /404.html).
	NotFound string `yaml:"not_found"`
	// Grace is how long stale objects are served while the origin is slow or down (default 24h).
	Grace string `yaml:"grace"`
	// Purgers are addresses or networks allowed to purge, as the client address the
	// edge derives (see TrustedProxies). None by default: loopback is not trusted.
	Purgers []string `yaml:"purgers"`
	// PurgeTokenEnv names the environment variable holding the purge token, in
	// varnishd's environment and in stump's (default STUMP_PURGE_TOKEN). Purges without
	// it in X-Purge-Token are refused.
	PurgeTokenEnv string `yaml:"purge_token_env"`
	// PurgeListener, when set, is the name of a varnishd listener (-a NAME=addr) that
	// alone accepts purges.
	PurgeListener string `yaml:"purge_listener"`
	// TrustedProxies are the addresses or networks of the proxies in front of Varnish
	// (TLS terminator, load balancer): the client address is the right-most
	// X-Forwarded-For hop that is not one of them. Empty: the connection's address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Query lists the query parameters that matter, by path glob; every other
	// parameter is dropped from the cache key and the origin request.
	Query []EdgeQuery `yaml:"query"`
	// NotFoundTTL is how long a missing page is cached (default 60s).
	NotFoundTTL string `yaml:"not_found_ttl"`
	// PreviewAuthEnv names an environment variable of varnishd holding "user:password":
	// previews then need that HTTP basic authentication.
	PreviewAuthEnv string `yaml:"preview_auth_env"`
	// Headers override the default security headers; an empty value removes one.
	Headers  map[string]string `yaml:"headers"`
	Probe    EdgeProbe         `yaml:"probe"`
	Defenses EdgeDefenses      `yaml:"defenses"`
	// Fastly, when set, puts the site on a Fastly service (stump edge deploy --fastly);
	// the API token comes from FASTLY_API_TOKEN only.
	Fastly *EdgeFastly `yaml:"fastly"`
}

// EdgeFastly names a site's Fastly service.
type EdgeFastly struct {
	ServiceID string `yaml:"service_id"`
	// Shield is the code of a shield POP (like "iad-va-us"); empty: no shielding.
	Shield string `yaml:"shield"`
}

// EdgeQuery keeps the named query parameters on the paths Path (a glob, as headers
// rules use) matches.
type EdgeQuery struct {
	Path   string   `yaml:"path"`
	Params []string `yaml:"params"`
}

// EdgeProbe is the origin health check.
type EdgeProbe struct {
	Disabled  bool   `yaml:"disabled"`
	URL       string `yaml:"url"`
	Interval  string `yaml:"interval"`
	Timeout   string `yaml:"timeout"`
	Window    int    `yaml:"window"`
	Threshold int    `yaml:"threshold"`
}

// EdgeDefenses are the edge's answers to hostile traffic.
type EdgeDefenses struct {
	// WordPress blocks xmlrpc.php, pingbacks, wp-login.php and wp-admin probes (default on).
	WordPress        *bool          `yaml:"wordpress"`
	GeoHeader        string         `yaml:"geo_header"`
	BlockedCountries []string       `yaml:"blocked_countries"`
	RateLimit        *EdgeRateLimit `yaml:"rate_limit"`
	// TrustXFF is refused: edge.trusted_proxies replaced it.
	TrustXFF      bool   `yaml:"trust_xff"`
	BlockedStatus int    `yaml:"blocked_status"`
	BlockedBody   string `yaml:"blocked_body"`
}

// EdgeRateLimit allows Requests per Per (a duration) for each client.
type EdgeRateLimit struct {
	Requests int    `yaml:"requests"`
	Per      string `yaml:"per"`
	// Count is "misses" (the default: only requests the cache cannot answer count, so
	// many visitors behind one address are spared) or "all".
	Count string `yaml:"count"`
}

// Cache holds TTLs as Go durations ("60s", "1h"). Fingerprinted assets are always
// cached for a year as immutable.
type Cache struct {
	// PageBrowser is max-age of pages (default 1m); PageEdge their s-maxage (default 1h).
	PageBrowser string `yaml:"pageBrowser"`
	PageEdge    string `yaml:"pageEdge"`
	// Static is max-age of files copied as is (default 1h).
	Static string `yaml:"static"`
	// Parsed values (zero: default).
	PageBrowserTTL, PageEdgeTTL, StaticTTL time.Duration `yaml:"-"`
}

// Deploy tunes publishing.
type Deploy struct {
	// MaxDeletes bounds the paths one publish may delete (default: a quarter of the site).
	MaxDeletes int `yaml:"maxDeletes"`
	// Order lists path globs written first when the live tree changes (after static
	// files, before other pages).
	Order []string `yaml:"order"`
	// Mode is "inplace" (default: the live tree at the target's root) or "atomic"
	// (trees under _stump/trees/<id>/, switched by a pointer the edge resolves).
	Mode string `yaml:"mode"`
}

// Markdown configures the Markdown renderer.
type Markdown struct {
	// Unsafe passes raw HTML in Markdown through. Off by default: raw HTML is omitted.
	Unsafe bool `yaml:"unsafe"`
	// Typographer turns smart quotes and dashes on (default true).
	Typographer *bool `yaml:"typographer"`
	// Highlight configures code highlighting.
	Highlight Highlight `yaml:"highlight"`
}

// Highlight configures chroma.
type Highlight struct {
	Style       string `yaml:"style"`
	LineNumbers bool   `yaml:"lineNumbers"`
}

// MenuEntry is one link of a menu.
type MenuEntry struct {
	Name       string `yaml:"name"`
	URL        string `yaml:"url"`
	Weight     int    `yaml:"weight"`
	Identifier string `yaml:"identifier"`
}

// HeaderRule sets headers on the paths that match a glob.
type HeaderRule struct {
	Path   string            `yaml:"path"`
	Values map[string]string `yaml:"values"`
}

// Redirect sends From to To.
type Redirect struct {
	From   string `yaml:"from"`
	To     string `yaml:"to"`
	Status int    `yaml:"status"`
}

// LinkCheck is what a build does about an internal link to a page it does not write.
type LinkCheck string

// Values of LinkCheck.
const (
	LinksWarn  LinkCheck = "warning"
	LinksError LinkCheck = "error"
	LinksOff   LinkCheck = "off"
)

// UnmarshalYAML reads warning, error, off, or a boolean (true is error, false off).
func (l *LinkCheck) UnmarshalYAML(b []byte) error {
	switch v := strings.Trim(strings.TrimSpace(string(b)), `"'`); v {
	case "warning", "warn":
		*l = LinksWarn
	case "error", "true", "yes", "on":
		*l = LinksError
	case "off", "false", "no":
		*l = LinksOff
	default:
		return fmt.Errorf("checkLinks must be warning, error or off (or true/false), not %q", v)
	}
	return nil
}

// Loaded is a site's config with the defaults applied and the source kept for positions.
type Loaded struct {
	Site
	// Name is the site's folder name.
	Name string
	// File is the path of site.yaml as shown in messages.
	File string
	// Base is BaseURL parsed; its Path always ends in "/".
	Base *url.URL
	// Location is the zone for dates without an offset.
	Location *time.Location
	// TaxonomyOrder lists the plural names sorted, and Singular maps plural to singular.
	TaxonomyOrder []string
	Singular      map[string]string
	// KeyAliases is FrontMatterAliases with lower-case keys and values.
	KeyAliases map[string]string
	// DatesFromFileNames is FileNameDates with its default applied.
	DatesFromFileNames bool

	ast *ast.File
}

// Pos returns the line and column of a YAML path (like "$.baseURL") in the site file, or
// zeros when it is absent.
func (l *Loaded) Pos(path string) (int, int) { return pos(l.ast, path) }

// ReadWorkspace reads stump.yaml at path. A missing file is an error.
func ReadWorkspace(path, shown string) (*Workspace, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workspace config: %w", err)
	}
	var w Workspace
	f, err := decodeStrict(shown, b, &w)
	if err != nil {
		return nil, err
	}
	if w.Output == "" {
		w.Output = "public"
	}
	clean := filepath.ToSlash(filepath.Clean(w.Output))
	first := strings.SplitN(clean, "/", 2)[0]
	if filepath.IsAbs(w.Output) || first == ".." || clean == "." {
		line, col := pos(f, "$.output")
		return nil, diag.New(shown, line, col, "output %q must be a folder inside the workspace, like public", w.Output)
	}
	switch first {
	case "sites", "themes", ".git", ".stump", WorkspaceFile:
		line, col := pos(f, "$.output")
		return nil, diag.New(shown, line, col, "output %q would overwrite the workspace's own %s; pick another folder, like public", w.Output, first)
	}
	return &w, nil
}

// ReadSite reads a site's site.yaml and applies the workspace defaults.
func ReadSite(ws *Workspace, name, path, shown string) (*Loaded, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, diag.New(shown, 0, 0, "site %q has no %s", name, SiteFile)
		}
		return nil, fmt.Errorf("read site config: %w", err)
	}
	var s Site
	f, err := decodeStrict(shown, b, &s)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Site: merge(ws.Defaults, s), Name: name, File: shown, ast: f}
	l.Params, _ = frontmatter.Normalize(mergeParams(ws.Params, ws.Defaults.Params, s.Params)).(map[string]any)
	if err := l.finish(); err != nil {
		return nil, err
	}
	return l, nil
}

var themeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// finish fills defaults and validates values that YAML types cannot.
func (l *Loaded) finish() error {
	errAt := func(path, format string, args ...any) error {
		line, col := l.Pos(path)
		return diag.New(l.File, line, col, format, args...)
	}
	if l.Title == "" {
		l.Title = l.Name
	}
	if l.LanguageCode == "" {
		l.LanguageCode = "en"
	}
	if l.Paginate == 0 {
		l.Paginate = 10
	}
	if l.Paginate < 0 {
		return errAt("$.paginate", "paginate must be a positive number, not %d", l.Paginate)
	}
	if l.FeedLimit == 0 {
		l.FeedLimit = 20
	}
	switch l.Feeds {
	case "":
		l.Feeds = "rss"
	case "rss", "atom", "none":
	default:
		return errAt("$.feeds", "feeds must be rss, atom or none, not %q", l.Feeds)
	}
	if l.Theme == "" {
		l.Theme = "campaign"
	}
	if !themeName.MatchString(l.Theme) {
		return errAt("$.theme", "theme %q is not a valid theme name (letters, digits, '.', '_' and '-')", l.Theme)
	}
	base := l.BaseURL
	if base == "" {
		base = "/"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || (u.Scheme != "" && u.Host == "") || u.RawQuery != "" || u.Fragment != "" {
		return errAt("$.baseURL", "baseURL %q is not an http(s) URL like https://example.org/", l.BaseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	l.Base = u
	l.Location = time.UTC
	if l.TimeZone != "" {
		loc, err := time.LoadLocation(l.TimeZone)
		if err != nil {
			return errAt("$.timeZone", "timeZone %q is not a known IANA time zone", l.TimeZone)
		}
		l.Location = loc
	}
	if l.Taxonomies == nil {
		l.Taxonomies = map[string]string{"tag": "tags", "category": "categories"}
	}
	l.Singular = map[string]string{}
	for sing, plural := range l.Taxonomies {
		if !themeName.MatchString(plural) || !themeName.MatchString(sing) {
			return errAt("$.taxonomies."+sing, "taxonomy %q: %q is not a valid name", sing, plural)
		}
		l.Singular[plural] = sing
		l.TaxonomyOrder = append(l.TaxonomyOrder, plural)
	}
	sort.Strings(l.TaxonomyOrder)
	for name, entries := range l.Menus {
		for i, e := range entries {
			if e.Name == "" || e.URL == "" {
				return errAt(fmt.Sprintf("$.menus.%s[%d]", name, i), "menu %q entry %d needs both name and url", name, i+1)
			}
		}
	}
	for i, h := range l.Headers {
		if h.Path == "" {
			return errAt(fmt.Sprintf("$.headers[%d]", i), "header rule %d needs a path glob", i+1)
		}
		if _, err := filepath.Match(h.Path, ""); err != nil {
			return errAt(fmt.Sprintf("$.headers[%d].path", i), "header rule path %q is not a valid glob", h.Path)
		}
	}
	for i, r := range l.Redirects {
		if !strings.HasPrefix(r.From, "/") || r.To == "" {
			return errAt(fmt.Sprintf("$.redirects[%d]", i), "redirect %d needs from (a path starting with /) and to", i+1)
		}
		if r.Status == 0 {
			l.Redirects[i].Status = 301
		} else if r.Status != 301 && r.Status != 302 && r.Status != 307 && r.Status != 308 {
			return errAt(fmt.Sprintf("$.redirects[%d].status", i), "redirect status must be 301, 302, 307 or 308, not %d", r.Status)
		}
	}
	for _, c := range []struct {
		key string
		val string
		dst *time.Duration
	}{{"pageBrowser", l.Cache.PageBrowser, &l.Cache.PageBrowserTTL}, {"pageEdge", l.Cache.PageEdge, &l.Cache.PageEdgeTTL}, {"static", l.Cache.Static, &l.Cache.StaticTTL}} {
		if c.val == "" {
			continue
		}
		d, err := time.ParseDuration(c.val)
		if err != nil || d < 0 {
			return errAt("$.cache."+c.key, "cache.%s %q is not a duration like 60s, 5m or 1h", c.key, c.val)
		}
		*c.dst = d
	}
	for i, c := range l.CDN {
		if len(c) != 1 {
			return errAt(fmt.Sprintf("$.cdn[%d]", i), "cdn entry %d must name one CDN (varnish, fastly, cloudfront or cloudflare) with its settings", i+1)
		}
		for kind := range c {
			switch kind {
			case "varnish", "fastly", "cloudfront", "cloudflare":
			default:
				return errAt(fmt.Sprintf("$.cdn[%d]", i), "cdn entry %d: %q is not a CDN stump knows (varnish, fastly, cloudfront, cloudflare)", i+1, kind)
			}
		}
	}
	switch l.Deploy.Mode {
	case "":
		l.Deploy.Mode = "inplace"
	case "inplace", "atomic":
	default:
		return errAt("$.deploy.mode", "deploy.mode must be inplace or atomic, not %q", l.Deploy.Mode)
	}
	if l.Edge != nil && strings.TrimSpace(l.Edge.Origin) == "" {
		return errAt("$.edge", "edge needs origin, the S3 website endpoint Varnish fetches from (http://host:port)")
	}
	if l.Source != nil && l.Source.WordPress != nil {
		wp := l.Source.WordPress
		if u, err := url.Parse(wp.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errAt("$.source.wordpress.url", "source.wordpress.url must be the WordPress site's http(s) URL, not %q", wp.URL)
		} else if u.User != nil {
			return errAt("$.source.wordpress.url", "source.wordpress.url must not hold credentials: name the user in source.wordpress.user and put the application password in STUMP_WP_PASSWORD")
		}
		if strings.ContainsAny(wp.Section, "\\.") || strings.Trim(wp.Section, "/") != wp.Section {
			return errAt("$.source.wordpress.section", "source.wordpress.section must be a content folder like news, not %q", wp.Section)
		}
		for i, t := range wp.Types {
			if !regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString(t) {
				return errAt(fmt.Sprintf("$.source.wordpress.types[%d]", i), "source.wordpress.types: %q is not a REST base like posts or pages", t)
			}
		}
		if wp.Concurrency < 0 || wp.Concurrency > 32 {
			return errAt("$.source.wordpress.concurrency", "source.wordpress.concurrency must be between 1 and 32")
		}
		if wp.Timeout != "" {
			if d, err := time.ParseDuration(wp.Timeout); err != nil || d <= 0 {
				return errAt("$.source.wordpress.timeout", "source.wordpress.timeout must be a duration like 30s, not %q", wp.Timeout)
			}
		}
	}
	if l.Deploy.MaxDeletes < 0 {
		return errAt("$.deploy.maxDeletes", "deploy.maxDeletes must be 0 (default) or more")
	}
	for name, pat := range l.Permalinks {
		if err := CheckPermalink(pat); err != nil {
			return errAt("$.permalinks."+name, "permalink pattern %q for %s: %v", pat, name, err)
		}
	}
	l.DatesFromFileNames = l.FileNameDates == nil || *l.FileNameDates
	l.KeyAliases = map[string]string{}
	for k, v := range l.FrontMatterAliases {
		l.KeyAliases[strings.ToLower(k)] = strings.ToLower(v)
	}
	for i, g := range l.Ignore {
		if _, err := filepath.Match(g, ""); err != nil {
			return errAt(fmt.Sprintf("$.ignore[%d]", i), "ignore pattern %q is not a valid glob", g)
		}
	}
	return nil
}

// merge returns d with every field that s sets replaced by s's.
func merge(d, s Site) Site {
	out := d
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	str(&out.Title, s.Title)
	str(&out.BaseURL, s.BaseURL)
	str(&out.LanguageCode, s.LanguageCode)
	str(&out.Theme, s.Theme)
	str(&out.Copyright, s.Copyright)
	str(&out.TimeZone, s.TimeZone)
	str(&out.Feeds, s.Feeds)
	str(&out.Target, s.Target)
	if s.Paginate != 0 {
		out.Paginate = s.Paginate
	}
	if s.FeedLimit != 0 {
		out.FeedLimit = s.FeedLimit
	}
	if s.Taxonomies != nil {
		out.Taxonomies = s.Taxonomies
	}
	if s.Menus != nil {
		out.Menus = s.Menus
	}
	if s.Markdown.Unsafe {
		out.Markdown.Unsafe = true
	}
	if s.Markdown.Typographer != nil {
		out.Markdown.Typographer = s.Markdown.Typographer
	}
	str(&out.Markdown.Highlight.Style, s.Markdown.Highlight.Style)
	if s.Markdown.Highlight.LineNumbers {
		out.Markdown.Highlight.LineNumbers = true
	}
	if s.Sitemap != nil {
		out.Sitemap = s.Sitemap
	}
	if s.Robots != nil {
		out.Robots = s.Robots
	}
	str(&out.Cache.PageBrowser, s.Cache.PageBrowser)
	str(&out.Cache.PageEdge, s.Cache.PageEdge)
	str(&out.Cache.Static, s.Cache.Static)
	if s.Deploy.MaxDeletes != 0 {
		out.Deploy.MaxDeletes = s.Deploy.MaxDeletes
	}
	if s.Deploy.Order != nil {
		out.Deploy.Order = s.Deploy.Order
	}
	if s.CDN != nil {
		out.CDN = s.CDN
	}
	str(&out.Deploy.Mode, s.Deploy.Mode)
	if s.Edge != nil {
		out.Edge = s.Edge
	}
	if s.Source != nil {
		out.Source = s.Source
	}
	if s.Permalinks != nil {
		out.Permalinks = mergeStrings(d.Permalinks, s.Permalinks)
	}
	if s.FileNameDates != nil {
		out.FileNameDates = s.FileNameDates
	}
	if s.FrontMatterAliases != nil {
		out.FrontMatterAliases = mergeStrings(d.FrontMatterAliases, s.FrontMatterAliases)
	}
	out.Minify = d.Minify || s.Minify
	out.CheckLinks = d.CheckLinks
	if s.CheckLinks != "" {
		out.CheckLinks = s.CheckLinks
	}
	if out.CheckLinks == "" {
		out.CheckLinks = LinksWarn
	}
	out.Headers = append(append([]HeaderRule(nil), d.Headers...), s.Headers...)
	out.Redirects = append(append([]Redirect(nil), d.Redirects...), s.Redirects...)
	out.Ignore = append(append([]string(nil), d.Ignore...), s.Ignore...)
	return out
}

func mergeStrings(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// PermalinkTokens are the tokens a permalink pattern may use.
var PermalinkTokens = []string{
	"year", "month", "monthname", "day", "weekday", "weekdayname", "yearday", "hour", "minute", "second",
	"slug", "slugorfilename", "slugorcontentbasename", "title", "section", "sections", "filename",
	"contentbasename", "categories",
}

var permalinkTokenRE = regexp.MustCompile(`:([a-z]+)`)

// CheckPermalink reports a pattern that is not a path or names an unknown token.
func CheckPermalink(pat string) error {
	if !strings.HasPrefix(pat, "/") {
		return fmt.Errorf("must start with /")
	}
	if strings.Contains(pat, "..") || strings.ContainsAny(pat, "?#\\") {
		return fmt.Errorf("must be a path without '..', '?' or '#'")
	}
	for _, m := range permalinkTokenRE.FindAllStringSubmatch(pat, -1) {
		known := false
		for _, t := range PermalinkTokens {
			known = known || t == m[1]
		}
		if !known {
			return fmt.Errorf("unknown token :%s (known: :%s)", m[1], strings.Join(PermalinkTokens, " :"))
		}
	}
	return nil
}

// mergeParams merges maps left to right: later keys win, nested maps merge.
func mergeParams(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if prev, ok := out[k].(map[string]any); ok {
					out[k] = mergeParams(prev, sub)
					continue
				}
			}
			out[k] = v
		}
	}
	return out
}

// decodeStrict parses b as YAML into v, rejecting unknown keys and wrong types with a
// positioned error. It returns the AST for later position look-ups.
func decodeStrict(shown string, b []byte, v any) (*ast.File, error) {
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return nil, diag.FromYAML(shown, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, diag.FromYAML(shown, err)
	}
	return f, nil
}

// pos finds a YAML path in f. It returns zeros when f is nil or the path is absent.
func pos(f *ast.File, path string) (int, int) {
	if f == nil {
		return 0, 0
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return 0, 0
	}
	n, err := p.FilterFile(f)
	if err != nil || n == nil {
		return 0, 0
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}
