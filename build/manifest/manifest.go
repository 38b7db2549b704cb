// Package manifest defines the build manifest: the list of every file a build wrote with
// its SHA-256, size, content type, cache class and surrogate keys. It is the contract
// between build, publish and purge. The manifest has no timestamps, so the same build
// gives the same bytes.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// FileName is the manifest's name inside a built site's folder. It is a dotfile so that it
// is never published as part of the site.
const FileName = ".stump-manifest.json"

// Version is the manifest format version.
const Version = 1

// Cache classes.
const (
	// Immutable is a fingerprinted asset: its name carries its hash, cache it forever.
	Immutable = "immutable"
	// Page is HTML, feeds and other files at stable URLs: short browser TTL, purged on change.
	Page = "page"
	// Static is a file copied as is at a stable URL (images, downloads).
	Static = "static"
)

// Manifest lists a built site.
type Manifest struct {
	Version int    `json:"version"`
	Site    string `json:"site"`
	BaseURL string `json:"baseURL"`
	// Files are sorted by Path.
	Files []Entry `json:"files"`
}

// Entry is one file of the built tree.
type Entry struct {
	// Path is slash-separated, relative to the site root, never starting with "/".
	Path        string `json:"path"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	Class       string `json:"class"`
	// Keys are surrogate keys for targeted purges (site, section, term and URL keys).
	Keys []string `json:"keys,omitempty"`
	// Redirect is set on alias pages: the URL they send visitors to.
	Redirect string `json:"redirect,omitempty"`
}

// Sort orders Files by path.
func (m *Manifest) Sort() {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
}

// Lookup returns the entry for path, if any. Files must be sorted.
func (m *Manifest) Lookup(path string) (Entry, bool) {
	i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Path >= path })
	if i < len(m.Files) && m.Files[i].Path == path {
		return m.Files[i], true
	}
	return Entry{}, false
}

// TotalBytes sums the sizes of all files.
func (m *Manifest) TotalBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Marshal encodes m as indented JSON with a trailing newline, deterministically.
func (m *Manifest) Marshal() ([]byte, error) {
	m.Sort()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes a manifest and checks its version.
func Unmarshal(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("manifest version %d is not supported (want %d)", m.Version, Version)
	}
	m.Sort()
	return &m, nil
}

// Read reads a manifest file.
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return Unmarshal(b)
}
