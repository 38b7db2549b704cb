package build

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/tdewolff/minify/v2"
	"github.com/tdewolff/minify/v2/css"
	"github.com/tdewolff/minify/v2/html"
	"github.com/tdewolff/minify/v2/js"
	mjson "github.com/tdewolff/minify/v2/json"
	"github.com/tdewolff/minify/v2/svg"
)

// Asset is a fingerprinted file as templates see it (the result of `asset`).
type Asset struct {
	RelPermalink string
	Permalink    string
	// Integrity is the Subresource Integrity value ("sha256-<base64>").
	Integrity string
	// Hash is the hex SHA-256 of the written bytes (it is also in the file name).
	Hash string
}

// assetRegistry fingerprints static files on demand, once each.
type assetRegistry struct {
	st    *siteState
	mu    sync.Mutex
	byRel map[string]*assetEntry
	out   *outputs
}

type assetEntry struct {
	once  sync.Once
	asset *Asset
	err   error
}

// newMinifier returns a minifier for the asset types stump minifies.
func newMinifier() *minify.M {
	m := minify.New()
	m.AddFunc("text/css", css.Minify)
	m.AddFunc("text/javascript", js.Minify)
	m.AddFunc("image/svg+xml", svg.Minify)
	m.AddFunc("application/json", mjson.Minify)
	m.Add("text/html", &html.Minifier{KeepDocumentTags: true, KeepEndTags: true, KeepQuotes: true, KeepDefaultAttrVals: true})
	return m
}

// minifiable maps an extension to the minifier's media type.
var minifiable = map[string]string{
	".css":  "text/css",
	".js":   "text/javascript",
	".mjs":  "text/javascript",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// get returns the fingerprinted asset for a path under static/ (site first, then theme).
func (r *assetRegistry) get(rel string) (*Asset, error) {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	r.mu.Lock()
	e, ok := r.byRel[rel]
	if !ok {
		e = &assetEntry{}
		r.byRel[rel] = e
	}
	r.mu.Unlock()
	e.once.Do(func() { e.asset, e.err = r.make(rel) })
	return e.asset, e.err
}

func (r *assetRegistry) make(rel string) (*Asset, error) {
	f, ok := r.st.staticFile(rel)
	if !ok {
		return nil, fmt.Errorf("asset %q not found in static/ of the site or of theme %q", rel, r.st.cfg.Theme)
	}
	b, err := f.read()
	if err != nil {
		return nil, err
	}
	ext := strings.ToLower(path.Ext(rel))
	if mt, ok := minifiable[ext]; ok {
		mb, err := r.st.minifier.Bytes(mt, b)
		if err != nil {
			return nil, fmt.Errorf("minify %s: %w", f.Shown, err)
		}
		b = mb
	}
	sum := sha256.Sum256(b)
	hexSum := hex.EncodeToString(sum[:])
	out := strings.TrimSuffix(rel, path.Ext(rel)) + "." + hexSum + path.Ext(rel)
	if err := r.out.add(&outFile{path: out, data: b, class: classImmutable, sum: sum}); err != nil {
		return nil, err
	}
	return &Asset{
		RelPermalink: r.st.site.relURL(out),
		Permalink:    r.st.site.absURL(out),
		Integrity:    "sha256-" + base64.StdEncoding.EncodeToString(sum[:]),
		Hash:         hexSum,
	}, nil
}

// staticFile finds a static file: the site's wins over the theme's.
func (st *siteState) staticFile(rel string) (srcFile, bool) {
	f, ok := st.staticByRel[rel]
	return f, ok
}
