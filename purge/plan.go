package purge

import (
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish"
)

// PlanOptions tune the planner. The zero value is the default.
type PlanOptions struct {
	// PrettyOnly purges only the "/dir/" form of a page written as dir/index.html.
	// By default both "/dir/" and "/dir/index.html" are purged, since an S3 website
	// endpoint (and so the edge in front of it) serves and caches both.
	PrettyOnly bool
	// FullThreshold is the share of the site's pages that, when more of them changed,
	// makes the planner purge the whole site by its site key instead of URL by URL
	// (default 0.5). A negative value never falls back.
	FullThreshold float64
}

func (o PlanOptions) threshold() float64 {
	if o.FullThreshold == 0 {
		return 0.5
	}
	return o.FullThreshold
}

// Plan derives what to purge when the live objects go from from to to (from is nil for
// a first deploy). It is pure: the same inputs, in any order, give the same request.
//
// What it purges: every path whose object changed (content hash or any header, as
// publish's Diff compares them), every added path (the edge may hold a cached 404), and
// every deleted path, in each of its URL forms: dir/index.html is "/dir/" and
// "/dir/index.html" (index.html is "/" and "/index.html"), other files their own path,
// all under the base URL's path prefix. Pages whose output changed because a list, a
// feed or a taxonomy changed are already among the changed paths, since builds are
// deterministic. Nothing unchanged is ever in the request.
//
// Fingerprinted assets (class "immutable") are left out entirely: a new content gets a
// new name, so an asset path never changes under a cached copy; an added asset's name
// carries a hash nobody could have requested before this deploy made it live, so no
// 404 for it can be cached; and deleted assets stay in the store until gc, so their
// cached copies are still right.
//
// The key plan holds the per-URL surrogate key ("<site>:url:<path>") of each purged
// object, read from its stored metadata (or derived as build does when it has none).
// When more than FullThreshold of the site's pages changed, the request asks for All
// (the site key) instead, and Reason says so.
func Plan(site, baseURL string, from, to []publish.Object, opts PlanOptions) *Request {
	r := &Request{Site: site, BaseURL: baseURL}
	prefix := basePath(baseURL)
	old := make(map[string]publish.Object, len(from))
	oldPages := 0
	for _, o := range from {
		if o.Class == manifest.Immutable {
			continue
		}
		old[o.Path] = o
		if o.Class == manifest.Page {
			oldPages++
		}
	}
	paths, added, keys := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var nChanged, nAdded, nDeleted, changedPages, newPages int
	purge := func(o publish.Object, isNew bool) {
		for _, u := range urlForms(prefix, o.Path, opts.PrettyOnly) {
			paths[u] = true
			if isNew {
				added[u] = true
			}
		}
		keys[urlKey(site, o)] = true
		if o.Class == manifest.Page {
			changedPages++
		}
	}
	seen := make(map[string]bool, len(to))
	for _, o := range to {
		if o.Class == manifest.Immutable {
			continue
		}
		seen[o.Path] = true
		if o.Class == manifest.Page {
			newPages++
		}
		prev, ok := old[o.Path]
		switch {
		case !ok:
			nAdded++
			purge(o, true)
		case !same(prev, o):
			nChanged++
			purge(o, false)
			keys[urlKey(site, prev)] = true
		}
	}
	for p, o := range old {
		if !seen[p] {
			nDeleted++
			purge(o, false)
		}
	}
	total := max(newPages, oldPages)
	if t := opts.threshold(); t >= 0 && total > 0 && float64(changedPages) > t*float64(total) {
		r.All = true
		r.Reason = fmt.Sprintf("%d of %d pages changed: purging the whole site by its site key", changedPages, total)
		return r
	}
	r.Paths, r.Added, r.Keys = sortedSet(paths), sortedSet(added), sortedSet(keys)
	if r.Empty() {
		r.Reason = "nothing changed"
		return r
	}
	r.Reason = fmt.Sprintf("%d changed, %d added, %d deleted: %d URLs, %d keys", nChanged, nAdded, nDeleted, len(r.Paths), len(r.Keys))
	return r
}

// URLs is the request for purging the given URL paths of a site, as `stump purge
// --urls` takes them ("/news/", "/about/", "/feed.xml"), each relative to the site root
// (the base URL's path prefix is added). A path ending in "/" is a page: both of its
// forms are purged (see PlanOptions.PrettyOnly), and its per-URL key too.
func URLs(site, baseURL string, urls []string, opts PlanOptions) (*Request, error) {
	r := &Request{Site: site, BaseURL: baseURL}
	prefix := basePath(baseURL)
	paths, keys := map[string]bool{}, map[string]bool{}
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "" || pu.Host != "" || !strings.HasPrefix(pu.Path, "/") || pu.RawQuery != "" || pu.Fragment != "" {
			return nil, fmt.Errorf("purge: %q is not a URL path like /news/ or /feed.xml", u)
		}
		p := path.Clean(pu.Path)
		if p == "/" {
			p = ""
		}
		p = strings.TrimPrefix(p, "/")
		if strings.HasSuffix(pu.Path, "/") {
			p = strings.TrimPrefix(p+"/index.html", "/")
		}
		o := publish.Object{Entry: manifest.Entry{Path: p}}
		for _, f := range urlForms(prefix, p, opts.PrettyOnly) {
			paths[f] = true
		}
		keys[urlKey(site, o)] = true
	}
	r.Paths, r.Keys = sortedSet(paths), sortedSet(keys)
	r.Reason = fmt.Sprintf("%d URLs asked for: %d paths, %d keys", len(urls), len(r.Paths), len(r.Keys))
	return r, nil
}

// All is the request for purging a whole site (by its site key where the CDN has
// keys).
func All(site, baseURL, reason string) *Request {
	if reason == "" {
		reason = "the whole site was asked for"
	}
	return &Request{Site: site, BaseURL: baseURL, All: true, Reason: reason}
}

// SiteKey is the surrogate key every object of a site carries.
func SiteKey(site string) string { return site }

// basePath is the path prefix of a base URL without its trailing slash ("" at the root).
func basePath(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// BasePath is the path prefix of a request's base URL, "" at the root, else like
// "/campaign".
func (r *Request) BasePath() string { return basePath(r.BaseURL) }

// Host is the host (and port) of a request's base URL.
func (r *Request) Host() string {
	u, err := url.Parse(r.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// urlForms are the URL paths an object is served at.
func urlForms(prefix, p string, prettyOnly bool) []string {
	full := "/" + p
	if path.Base(full) == "index.html" {
		dir := strings.TrimSuffix(full, "index.html")
		if prettyOnly {
			return []string{escape(prefix + dir)}
		}
		return []string{escape(prefix + dir), escape(prefix + full)}
	}
	return []string{escape(prefix + full)}
}

func escape(p string) string { return (&url.URL{Path: p}).EscapedPath() }

// urlKey is an object's per-URL surrogate key: the stored one, or derived as build's
// keysFor does.
func urlKey(site string, o publish.Object) string {
	want := site + ":url:"
	for _, k := range strings.Fields(o.Metadata["surrogate-key"]) {
		if strings.HasPrefix(k, want) {
			return k
		}
	}
	for _, k := range o.Keys {
		if strings.HasPrefix(k, want) {
			return k
		}
	}
	return want + escape("/"+strings.TrimSuffix(o.Path, "index.html"))
}

// same reports whether writing b over a changes nothing the edge holds (publish's rule:
// content hash, content type, Cache-Control, redirect and metadata, surrogate keys
// included since the edge indexes the object by them).
func same(a, b publish.Object) bool {
	if a.SHA256 != b.SHA256 || a.ContentType != b.ContentType || a.CacheControl != b.CacheControl || a.Redirect != b.Redirect {
		return false
	}
	if len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if bv, ok := b.Metadata[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func sortedSet(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
