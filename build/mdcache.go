package build

import (
	"bufio"
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

// mdCacheFormat names the file's layout: a gob stream of an mdCacheHeader, then
// Count mdCacheEntry values, so that neither writing nor reading holds a second copy
// of the whole cache in memory (format 1 was one gob value: a 26 MB map at 10,000 pages,
// encoded into memory before it was written).
const mdCacheFormat = "stump-md-cache-2"

type mdCacheHeader struct {
	Format, Salt string
	Count        int
}

type mdCacheEntry struct {
	Key    string
	Result markdown.Result
}

// openMDCache reads the cache of site (a missing or unreadable file is an empty
// cache) for renders identified by salt.
func openMDCache(root, site, salt string) *mdCache {
	c := &mdCache{
		path: filepath.Join(root, ".stump", "cache", "markdown", site+".gob"),
		salt: salt, old: map[string]markdown.Result{}, used: map[string]markdown.Result{},
	}
	f, err := os.Open(c.path)
	if err != nil {
		return c
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	var h mdCacheHeader
	if dec.Decode(&h) != nil || h.Format != mdCacheFormat || h.Salt != salt || h.Count < 0 {
		c.changed = true
		return c
	}
	old := make(map[string]markdown.Result, min(h.Count, 1<<20))
	for range h.Count {
		var e mdCacheEntry
		if dec.Decode(&e) != nil {
			c.changed = true
			return c
		}
		old[e.Key] = e.Result
	}
	c.old = old
	return c
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
func (c *mdCache) save() { c.startSave().finish(true) }

// cacheSave is a cache file being written beside the cache: commit puts it in place,
// discard drops it. Both wait for the writing to end. A nil *cacheSave does nothing.
type cacheSave struct {
	done chan struct{}
	tmp  *atomicfile.Temp // the written file; nil when writing failed
}

// startSave begins writing what this build rendered into a temporary file, in the
// background, and returns nil when the file would not change. The entries must not
// change after it (all Markdown is rendered while content loads).
func (c *mdCache) startSave() *cacheSave {
	c.mu.Lock()
	if c.misses == 0 && len(c.old) == 0 && !c.changed {
		c.mu.Unlock()
		return nil
	}
	entries := make([]mdCacheEntry, 0, len(c.used))
	for k, r := range c.used {
		entries = append(entries, mdCacheEntry{Key: k, Result: r})
	}
	header := mdCacheHeader{Format: mdCacheFormat, Salt: c.salt, Count: len(entries)}
	c.mu.Unlock()
	s := &cacheSave{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.tmp, _ = atomicfile.WriteTemp(c.path, func(w io.Writer) error {
			enc := gob.NewEncoder(w)
			err := enc.Encode(header)
			for i := 0; err == nil && i < len(entries); i++ {
				err = enc.Encode(&entries[i])
			}
			return err
		})
	}()
	return s
}

// finish waits for the write, then puts the file in place (keep: the build succeeded)
// or removes it. Once is enough; a nil save does nothing.
func (s *cacheSave) finish(keep bool) {
	if s == nil {
		return
	}
	<-s.done
	switch {
	case s.tmp == nil:
	case keep:
		_ = s.tmp.Commit()
	default:
		s.tmp.Discard()
	}
	s.tmp = nil
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
