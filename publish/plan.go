// Package publish is the deploy engine: it takes a built site (its manifest and tree) to
// a Store so that the live site is never broken, nothing unchanged is uploaded twice,
// concurrent publishes cannot interleave, and any earlier deploy can be made live again
// without a rebuild.
//
// Store layout under a target:
//
//	_stump/objects/sha256/<hex>   immutable blobs, one per distinct content (in place)
//	_stump/deploys/<id>.json      the record of every deploy (a header; see record.go)
//	_stump/chunks/<sha256>        the records' objects, in chunks shared between deploys
//	_stump/current.json           the pointer: the live deploy and any pending work
//	_stump/lock                   the lease lock, created with If-None-Match: *
//	<path>                        the live tree (in place)
//	_stump/trees/<id>/, _stump/layers/<id>, _stump/live   atomic mode (see atomic.go)
//
// Write order (an invariant the tests check): blobs and fingerprinted assets, then the
// deploy record, then the pointer marked "materializing", then the live tree (static
// files before pages, so no live page names an asset that is not there yet), then the
// pointer committed, then purge, then deletes. Fingerprinted assets are their own
// content-addressed keys: they are written once at their live path and removed only by
// gc, so a page cached anywhere keeps finding its assets, and a rollback never needs
// them re-uploaded. In atomic mode (and for previews) nothing is live before
// _stump/live, and there is no blob: the record comes first (it says that its content
// is in its tree, Record.Content), then the tree is written, each changed path put
// straight into it from the build, then the tree's marker, the pointer and _stump/live.
package publish

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/manifest"
)

// Object is one live path as a deploy writes it: the build's entry plus the headers the
// deploy gives it.
type Object struct {
	manifest.Entry
	CacheControl string            `json:"cacheControl,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// same reports whether writing b over a changes nothing a visitor sees.
func same(a, b Object) bool {
	if a.SHA256 != b.SHA256 || a.ContentType != b.ContentType || a.CacheControl != b.CacheControl || a.Redirect != b.Redirect {
		return false
	}
	if len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if b.Metadata[k] != v {
			return false
		}
	}
	return true
}

// Plan is what a deploy will do. It is computed by Diff without touching the store.
type Plan struct {
	// Blobs are the contents the deploy needs in _stump/objects (pages and static
	// files), by hash: a representative object for each, whose path the bytes are read
	// from.
	Blobs map[string]Object `json:"-"`
	// Assets are fingerprinted files written directly at their live path.
	Assets []Object `json:"-"`
	// Writes are non-asset paths to (re)write from blobs, static files before pages.
	Writes []Object `json:"-"`
	// Deletes are live paths the new deploy no longer has (assets excluded: gc removes
	// those).
	Deletes []string `json:"deleted,omitempty"`
	// Unchanged counts live paths left as they are.
	Unchanged int `json:"unchanged"`
	// Added and Changed name the paths the deploy adds and rewrites with other content
	// or headers (assets included; sorted), for people and --json (with Deletes).
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// Counts and bytes for people and --json.
	NewBlobs    int   `json:"blobs"`
	BlobBytes   int64 `json:"blobBytes"`
	AssetCount  int   `json:"assets"`
	AssetBytes  int64 `json:"assetBytes"`
	WriteCount  int   `json:"writes"`
	DeleteCount int   `json:"deletes"`
	Total       int   `json:"files"`
	// Tree says that the deploy writes a tree of its own (atomic mode, previews): its
	// new contents are put straight into the tree, not into blobs.
	Tree bool `json:"tree,omitempty"`
}

// Empty reports a plan that changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Assets) == 0 && len(p.Writes) == 0 && len(p.Deletes) == 0
}

// Diff plans the way from live (nil for a first deploy) to next. Paths in unknown are
// rewritten (or deleted) whatever live says: they belong to an interrupted deploy, so
// their live content is not known. Diff is pure: the same inputs give the same plan.
func Diff(live, next []Object, unknown map[string]bool) *Plan {
	return diff(live, true, next, unknown)
}

// diff is Diff; liveBlobs says whether the live deploy's content is in blobs (false
// for a record whose content is in its tree: then every content the plan writes is a
// new blob).
func diff(live []Object, liveBlobs bool, next []Object, unknown map[string]bool) *Plan {
	p := &Plan{Blobs: map[string]Object{}, Total: len(next)}
	old := make(map[string]Object, len(live))
	for _, o := range live {
		old[o.Path] = o
	}
	haveBlob := map[string]bool{}
	for _, o := range live {
		if liveBlobs && o.Class != manifest.Immutable {
			haveBlob[o.SHA256] = true
		}
	}
	inNext := make(map[string]bool, len(next))
	for _, o := range next {
		inNext[o.Path] = true
		prev, ok := old[o.Path]
		if ok && same(prev, o) && !unknown[o.Path] {
			p.Unchanged++
			continue
		}
		if ok {
			p.Changed = append(p.Changed, o.Path)
		} else {
			p.Added = append(p.Added, o.Path)
		}
		if o.Class == manifest.Immutable {
			p.Assets = append(p.Assets, o)
			p.AssetBytes += o.Size
			continue
		}
		p.Writes = append(p.Writes, o)
		if !haveBlob[o.SHA256] {
			if _, seen := p.Blobs[o.SHA256]; !seen {
				p.Blobs[o.SHA256] = o
				p.BlobBytes += o.Size
			}
		}
	}
	for _, o := range live {
		if !inNext[o.Path] && o.Class != manifest.Immutable {
			p.Deletes = append(p.Deletes, o.Path)
		}
	}
	for u := range unknown {
		if !inNext[u] {
			if _, ok := old[u]; !ok {
				p.Deletes = append(p.Deletes, u)
			}
		}
	}
	sort.Slice(p.Assets, func(i, j int) bool { return p.Assets[i].Path < p.Assets[j].Path })
	sort.SliceStable(p.Writes, func(i, j int) bool {
		a, b := writeRank(p.Writes[i]), writeRank(p.Writes[j])
		if a != b {
			return a < b
		}
		return p.Writes[i].Path < p.Writes[j].Path
	})
	sort.Strings(p.Deletes)
	p.Deletes = uniq(p.Deletes)
	sort.Strings(p.Added)
	sort.Strings(p.Changed)
	p.NewBlobs, p.AssetCount, p.WriteCount, p.DeleteCount = len(p.Blobs), len(p.Assets), len(p.Writes), len(p.Deletes)
	return p
}

// writeRank orders writes: static files (images, downloads) first, then pages that are
// not HTML (feeds, sitemap), then HTML pages, redirects last; so a page never goes live
// before what it names.
func writeRank(o Object) int {
	switch {
	case o.Class == manifest.Static:
		return 0
	case o.Redirect != "":
		return 3
	case strings.HasSuffix(o.Path, ".html"):
		return 2
	}
	return 1
}

func uniq(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// Summary is a one-line description of a plan.
func (p *Plan) Summary() string {
	if p.Empty() {
		return fmt.Sprintf("nothing to publish: %d files unchanged", p.Unchanged)
	}
	what := "new blobs"
	if p.Tree {
		what = "new contents for the tree"
	}
	return fmt.Sprintf("%d %s (%s), %d new assets (%s), %d paths to write, %d to delete, %d unchanged",
		p.NewBlobs, what, humanBytes(p.BlobBytes), p.AssetCount, humanBytes(p.AssetBytes), p.WriteCount, p.DeleteCount, p.Unchanged)
}

// HumanBytes formats a byte count for people (1.5 MiB).
func HumanBytes(n int64) string { return humanBytes(n) }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// blobKey is where a content's blob lives.
func blobKey(sum string) string { return path.Join(internalPrefix, "objects", "sha256", sum) }

const internalPrefix = "_stump"
