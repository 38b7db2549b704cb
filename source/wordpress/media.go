package wordpress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/stump-dev/stump/internal/atomicfile"
	"golang.org/x/net/html"
)

func sortStrings(s []string) { sort.Strings(s) }

// maxMedia bounds one downloaded file.
const maxMedia = 256 << 20

// mediaExts are the file types downloaded as page resources.
var mediaExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".webp": true, ".avif": true,
	".svg": false, // never: SVG can hold scripts
	".mp4": true, ".webm": true, ".mp3": true, ".ogg": true, ".m4a": true, ".pdf": true,
}

// mediaRefs lists the URLs in sanitized HTML that name media on the WordPress host
// (src, srcset, poster, and links to media files), in document order.
func mediaRefs(h string, isMedia func(string) bool) []string {
	var out []string
	z := html.NewTokenizer(strings.NewReader(h))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return out
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		t := z.Token()
		for _, a := range t.Attr {
			switch a.Key {
			case "src", "poster", "href":
				if isMedia(a.Val) {
					out = append(out, a.Val)
				}
			case "srcset":
				for _, c := range parseSrcset(a.Val) {
					if isMedia(c[0]) {
						out = append(out, c[0])
					}
				}
			}
		}
	}
}

// parseSrcset splits "a.jpg 300w, b.jpg 600w" into [url, descriptor] pairs.
func parseSrcset(s string) [][2]string {
	var out [][2]string
	for _, part := range strings.Split(s, ",") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		d := ""
		if len(f) > 1 {
			d = f[1]
		}
		out = append(out, [2]string{f[0], d})
	}
	return out
}

// rewriteMedia replaces media URLs in sanitized HTML by local: local(u) returns the new
// URL, or "" when the file is missing, which drops an <img> (or <source>), a srcset
// candidate, or a link's href (the link text stays).
func rewriteMedia(h string, isMedia func(string) bool, local func(string) string) string {
	z := html.NewTokenizer(strings.NewReader(h))
	var b strings.Builder
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return b.String()
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			b.Write(z.Raw())
			continue
		}
		raw := string(z.Raw())
		t := z.Token()
		changed, drop := false, false
		var attrs []html.Attribute
		for _, a := range t.Attr {
			switch a.Key {
			case "src", "poster", "href":
				if isMedia(a.Val) {
					changed = true
					if l := local(a.Val); l != "" {
						a.Val = l
					} else {
						if a.Key == "src" && (t.Data == "img" || t.Data == "source") {
							drop = true
						}
						continue
					}
				}
			case "srcset":
				var parts []string
				for _, c := range parseSrcset(a.Val) {
					u := c[0]
					if isMedia(u) {
						changed = true
						if u = local(u); u == "" {
							continue
						}
					}
					parts = append(parts, strings.TrimSpace(u+" "+c[1]))
				}
				if len(parts) == 0 {
					continue
				}
				a.Val = strings.Join(parts, ", ")
			}
			attrs = append(attrs, a)
		}
		switch {
		case drop:
		case changed:
			t.Attr = attrs
			b.WriteString(t.String())
		default:
			b.WriteString(raw)
		}
	}
}

// mediaFile is one downloaded file: its name in the bundle (hash + extension).
type mediaFile struct {
	name string
	data []byte
}

// mediaStore downloads media once: a file is named by its content's SHA-256 (first 20
// hex digits) and kept in a cache folder, and the source URL → name map lives in the
// pull state, so an unchanged image is never downloaded again.
type mediaStore struct {
	client *Client
	cache  string            // folder of downloaded files by name ("" for none)
	names  map[string]string // source URL → name (the state's media map)
	mu     sync.Mutex
	data   map[string][]byte // name → bytes, this run
	failed map[string]error  // source URL → why it is missing
}

// mediaName is the bundle name of content downloaded from u.
func mediaName(u string, data []byte) string {
	sum := sha256.Sum256(data)
	ext := strings.ToLower(path.Ext(urlPath(u)))
	if ext == ".jpeg" {
		ext = ".jpg"
	}
	return hex.EncodeToString(sum[:])[:20] + ext
}

func urlPath(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return u
}

// fetchAll makes every URL of urls available (from the cache, or downloaded with the
// client's concurrency), recording failures instead of failing.
func (m *mediaStore) fetchAll(ctx context.Context, urls []string) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, u := range dedupe(urls) {
		m.mu.Lock()
		name, ok := m.names[u]
		m.mu.Unlock()
		if ok {
			if _, err := m.get(name); err == nil {
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data, err := m.client.Fetch(ctx, u, maxMedia)
			m.mu.Lock()
			defer m.mu.Unlock()
			if err != nil {
				m.failed[u] = err
				return
			}
			name := mediaName(u, data)
			m.names[u] = name
			m.data[name] = data
			if m.cache != "" {
				_ = atomicfile.Write(filepath.Join(m.cache, name), data)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// get returns a file's bytes from this run or the cache.
func (m *mediaStore) get(name string) ([]byte, error) {
	m.mu.Lock()
	d, ok := m.data[name]
	m.mu.Unlock()
	if ok {
		return d, nil
	}
	if m.cache == "" {
		return nil, errors.New("no cache")
	}
	d, err := os.ReadFile(filepath.Join(m.cache, name))
	if err != nil {
		return nil, err
	}
	// The cache is only a cache: check the name still matches the content.
	if sum := sha256.Sum256(d); !strings.HasPrefix(name, hex.EncodeToString(sum[:])[:20]) {
		return nil, fmt.Errorf("cached %s is corrupt", name)
	}
	m.mu.Lock()
	m.data[name] = d
	m.mu.Unlock()
	return d, nil
}
