package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/stump-dev/stump/build/markdown"
	"github.com/stump-dev/stump/internal/atomicfile"
)

// mdCache keeps the rendered Markdown of a site's pages between builds, so a build
// whose content did not change (a theme edit re-renders every page of every site that
// uses it) does not parse and render the Markdown again. An entry is found by the
// SHA-256 of the page's body together with everything else Render's output depends on:
// stump's version, the site's markdown settings, whether the page allows raw HTML, and
// the shortcodes the layouts define (their names and whether they take inner text).
// The cache is .stump/cache/markdown/<site>.gob in the workspace; after a build it
// holds exactly the bodies that build rendered. It is only a cache: unreadable, it is
// rebuilt; a failed build leaves it as it was.
type mdCache struct {
	path string
	salt string

	mu      sync.Mutex
	old     map[string]markdown.Result // what the file held
	used    map[string]markdown.Result // what this build rendered or found
	misses  int
	changed bool
}

const mdCacheFormat = "stump-md-cache-1"

// openMDCache reads the cache of site (a missing or unreadable file is an empty
// cache) for renders identified by salt.
func openMDCache(root, site, salt string) *mdCache {
	c := &mdCache{
		path: filepath.Join(root, ".stump", "cache", "markdown", site+".gob"),
		salt: salt, old: map[string]markdown.Result{}, used: map[string]markdown.Result{},
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return c
	}
	var f mdCacheFile
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&f) != nil || f.Format != mdCacheFormat || f.Salt != salt {
		c.changed = true
		return c
	}
	c.old = f.Entries
	if c.old == nil {
		c.old = map[string]markdown.Result{}
	}
	return c
}

type mdCacheFile struct {
	Format, Salt string
	Entries      map[string]markdown.Result
}

// render returns md.Render(body), from the cache when it holds it. raw says which of
// the site's two renderers md is (raw HTML allowed or not).
func (c *mdCache) render(md *markdown.Renderer, raw bool, body []byte) (markdown.Result, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%v\x00", c.salt, raw)
	h.Write(body)
	key := hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	if r, ok := c.used[key]; ok {
		c.mu.Unlock()
		return r, nil
	}
	if r, ok := c.old[key]; ok {
		delete(c.old, key)
		c.used[key] = r
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()
	r, err := md.Render(body)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	c.used[key] = r
	c.misses++
	c.mu.Unlock()
	return r, nil
}

// save writes what this build rendered, when it differs from what the file held
// (best effort: a cache that cannot be written only costs rendering next time).
func (c *mdCache) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.misses == 0 && len(c.old) == 0 && !c.changed {
		return
	}
	// Streamed to the file: the encoding of a large site's pages is tens of MB.
	_ = atomicfile.WriteFunc(c.path, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(mdCacheFile{Format: mdCacheFormat, Salt: c.salt, Entries: c.used})
	})
}

// mdSalt identifies what a site's Markdown renders depend on besides the body.
func (st *siteState) mdSalt(ls *layouts) string {
	var sc []string
	for name, src := range ls.files {
		if n, ok := strings.CutPrefix(name, "shortcodes/"); ok {
			sc = append(sc, fmt.Sprintf("%s=%v", n, strings.Contains(src.text, ".Inner")))
		}
	}
	sort.Strings(sc)
	m := st.cfg.Markdown
	typo := m.Typographer == nil || *m.Typographer
	return fmt.Sprintf("%s\x00%s\x00unsafe=%v typographer=%v style=%q lines=%v\x00%s",
		mdCacheFormat, st.opts.Version, m.Unsafe, typo, m.Highlight.Style, m.Highlight.LineNumbers, strings.Join(sc, ","))
}
