package file

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"maps"
	"strings"
	"sync"

	"github.com/stump-dev/stump/publish/store"
)

// sidecar holds an object's Meta and ETag, as JSON: in the extended attribute
// "user.stump" of its data file (see the package doc) or, where the file system has no
// user attributes and in folders written before them, in the file
// <root>/.stump-meta/<key>.json. It also names the data file it describes (inode,
// size, modification time): when these no longer match the data file (a crash between
// the two renames of a write in sidecar files, or someone edited the served folder by
// hand), the sidecar is stale, the bytes are hashed again and the ETag recomputed, so
// a compare-and-swap never succeeds against bytes it did not describe.
type sidecar struct {
	V      int    `json:"v"`
	ETag   string `json:"etag"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Ino    uint64 `json:"ino,omitempty"`
	Mtime  int64  `json:"mtimeNs"`

	ContentType      string            `json:"contentType,omitempty"`
	CacheControl     string            `json:"cacheControl,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	RedirectLocation string            `json:"redirectLocation,omitempty"`

	// inAttr: read from (or written to) the data file's attribute, not a sidecar file.
	inAttr bool
}

func newSidecar(sum string, fi fs.FileInfo, m store.Meta) sidecar {
	return sidecar{
		V:                1,
		ETag:             etag(sum, m),
		SHA256:           sum,
		Size:             fi.Size(),
		Ino:              fileID(fi),
		Mtime:            fi.ModTime().UnixNano(),
		ContentType:      m.ContentType,
		CacheControl:     m.CacheControl,
		Metadata:         m.Metadata,
		RedirectLocation: m.RedirectLocation,
	}
}

// describes reports whether the sidecar was written for the data file fi.
func (sc *sidecar) describes(fi fs.FileInfo) bool {
	return sc.V == 1 && sc.SHA256 != "" && sc.Size == fi.Size() &&
		sc.Ino == fileID(fi) && sc.Mtime == fi.ModTime().UnixNano()
}

func (sc *sidecar) meta() store.Meta {
	return store.Meta{
		ContentType:      sc.ContentType,
		CacheControl:     sc.CacheControl,
		Metadata:         sc.Metadata,
		RedirectLocation: sc.RedirectLocation,
	}
}

func (sc *sidecar) info(key string, fi fs.FileInfo) store.Info {
	return store.Info{Key: key, Size: fi.Size(), ETag: sc.ETag, ModTime: fi.ModTime(), Meta: sc.meta()}
}

// normMeta lower-cases user metadata keys (as S3 does) and drops an empty map.
func normMeta(m store.Meta) store.Meta {
	if len(m.Metadata) == 0 {
		m.Metadata = nil
		return m
	}
	md := make(map[string]string, len(m.Metadata))
	for k, v := range m.Metadata {
		md[strings.ToLower(k)] = v
	}
	m.Metadata = md
	return m
}

// etag is the file store's ETag: the quoted hex SHA-256 of the bytes, a dash, and the
// first 8 hex digits of the SHA-256 of the Meta (as canonical JSON). Equal bytes and
// Meta give equal ETags; a change of either gives another one.
func etag(sum string, m store.Meta) string {
	b, _ := json.Marshal(normMeta(m)) // map keys are sorted: canonical
	h := sha256.Sum256(b)
	return `"` + sum + "-" + hex.EncodeToString(h[:4]) + `"`
}

// sameETag compares ETags, ignoring the quotes a caller may have dropped.
func sameETag(a, b string) bool {
	return strings.Trim(a, `"`) == strings.Trim(b, `"`)
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// sumsMax bounds the checksums a store remembers.
const sumsMax = 16384

// sums remembers the sidecars of the files this store wrote or found fresh, by key.
// An entry is used only for the very file it was made for (inode, size and
// modification time, as a sidecar is), so it says no more than the sidecar on disk
// would: Copy, which needs the checksum and Meta of its source, is spared reading the
// source's sidecar. Another process's write makes a new file, which no
// entry describes.
type sums struct {
	mu sync.Mutex
	m  map[string]sidecar
}

func (c *sums) put(key string, sc sidecar) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= sumsMax {
		c.m = map[string]sidecar{}
	}
	c.m[key] = sc
}

// get returns the entry for key if it describes fi.
func (c *sums) get(key string, fi fs.FileInfo) (sidecar, bool) {
	c.mu.Lock()
	sc, ok := c.m[key]
	c.mu.Unlock()
	return sc, ok && sc.describes(fi)
}

// sameMeta reports whether two normalized Metas are equal.
func sameMeta(a, b store.Meta) bool {
	return a.ContentType == b.ContentType && a.CacheControl == b.CacheControl &&
		a.RedirectLocation == b.RedirectLocation && maps.Equal(a.Metadata, b.Metadata)
}
