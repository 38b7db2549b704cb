package publish

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/stump-dev/stump/build/manifest"
)

// CachePolicy sets Cache-Control by cache class.
type CachePolicy struct {
	// PageBrowser and PageEdge are the browser (max-age) and CDN (s-maxage) TTLs of
	// pages: short in browsers, longer at the edge, which purges on change.
	PageBrowser, PageEdge time.Duration
	// Static is the TTL of files copied as is (images, downloads).
	Static time.Duration
}

// DefaultCache: pages 1 minute in browsers and 1 hour at the edge; static files 1 hour;
// fingerprinted assets a year and immutable (their name changes with their content).
var DefaultCache = CachePolicy{PageBrowser: time.Minute, PageEdge: time.Hour, Static: time.Hour}

// HeaderRule sets headers on paths matching a glob ("*.pdf", "downloads/**").
type HeaderRule struct {
	Path   string
	Values map[string]string
}

// Immutable is the Cache-Control of fingerprinted assets.
const Immutable = "public, max-age=31536000, immutable"

// Objects turns a build manifest into the objects a deploy writes: headers by class and
// rules, surrogate keys and the content hash as metadata. Rules apply in order; a later
// rule wins. Cache-Control and Content-Type in rules replace the defaults; other headers
// are stored as metadata "header-<name>" for the edge to send.
func Objects(m *manifest.Manifest, cache CachePolicy, rules []HeaderRule) ([]Object, error) {
	out := make([]Object, 0, len(m.Files))
	for _, e := range m.Files {
		if err := CheckPath(e.Path); err != nil {
			return nil, err
		}
		o := Object{Entry: e, Metadata: map[string]string{"sha256": e.SHA256}}
		switch e.Class {
		case manifest.Immutable:
			o.CacheControl = Immutable
		case manifest.Static:
			o.CacheControl = fmt.Sprintf("public, max-age=%d", int(cache.Static.Seconds()))
		default:
			o.CacheControl = fmt.Sprintf("public, max-age=%d, s-maxage=%d", int(cache.PageBrowser.Seconds()), int(cache.PageEdge.Seconds()))
		}
		if len(e.Keys) > 0 {
			o.Metadata["surrogate-key"] = strings.Join(e.Keys, " ")
		}
		for _, r := range rules {
			if !Match(r.Path, e.Path) {
				continue
			}
			names := make([]string, 0, len(r.Values))
			for k := range r.Values {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				v := r.Values[k]
				switch strings.ToLower(k) {
				case "cache-control":
					o.CacheControl = v
				case "content-type":
					o.ContentType = v
				default:
					o.Metadata["header-"+strings.ToLower(k)] = v
				}
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// Match reports whether a path matches a glob: path.Match per segment, where "**"
// matches any number of segments and a pattern without "/" matches the base name.
func Match(glob, p string) bool {
	glob = strings.TrimPrefix(glob, "/")
	if !strings.Contains(glob, "/") {
		ok, _ := path.Match(glob, path.Base(p))
		return ok
	}
	return matchSegs(strings.Split(glob, "/"), strings.Split(p, "/"))
}

func matchSegs(g, p []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(p); i++ {
				if matchSegs(g[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], p[0]); !ok {
			return false
		}
		g, p = g[1:], p[1:]
	}
	return len(p) == 0
}

// CheckPath refuses a path a deploy must never write: outside the tree, dotfiles and
// dot folders (.env, .git), editor backups, key material, and stump's own _stump/.
func CheckPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return fmt.Errorf("refusing to publish %q: not a relative path", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("refusing to publish %q: it leaves the site", p)
		}
		if strings.HasPrefix(seg, ".") || strings.HasSuffix(seg, "~") || strings.HasPrefix(seg, "#") || strings.HasSuffix(seg, ".swp") {
			return fmt.Errorf("refusing to publish %q: dotfiles and editor files are never uploaded", p)
		}
		switch strings.ToLower(path.Ext(seg)) {
		case ".pem", ".key", ".p12", ".pfx":
			return fmt.Errorf("refusing to publish %q: it looks like key material", p)
		}
		switch seg {
		case "id_rsa", "id_ed25519", "id_ecdsa":
			return fmt.Errorf("refusing to publish %q: it looks like key material", p)
		}
	}
	if p == internalPrefix || strings.HasPrefix(p, internalPrefix+"/") {
		return fmt.Errorf("refusing to publish %q: %s/ is stump's own folder in the target", p, internalPrefix)
	}
	return nil
}
