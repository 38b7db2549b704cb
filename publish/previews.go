package publish

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/stump-dev/stump/publish/store"
)

// The edge serves a deploy's tree at <id>.<preview host>. So that a random label that
// looks like a deploy id never reaches the origin, publish keeps _stump/trees: the ids of
// the deploys that have a tree, newest first, in its body (one a line) and in its
// metadata "ids" (space-separated), which the edge reads from the response headers of a
// cached fetch. S3 allows 2 KiB of user metadata, so the list holds the newest
// MaxTreeIDs; older previews are no longer served at the edge (stump deploys still
// lists them, and rollback --to still makes them live).

// MaxTreeIDs bounds the ids in _stump/trees.
const MaxTreeIDs = 60

var treesKey = path.Join(internalPrefix, "trees.txt")

// TreesKey is the key of the list of deploys with trees (for the edge).
func TreesKey() string { return treesKey }

// TreesSurrogateKey is the surrogate key of a site's _stump/trees.txt.
func TreesSurrogateKey(site string) string { return site + ":trees" }

// ReadTreeIDs returns the ids in _stump/trees.txt, newest first (none when absent).
func ReadTreeIDs(ctx context.Context, s store.Store) ([]string, error) {
	es, err := readTrees(ctx, s)
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids, err
}

// treeEntry is a line of _stump/trees.txt: a deploy with a tree, and the base its tree
// is a layer over ("" for a full tree, and in lines written before bases were listed).
type treeEntry struct{ id, base string }

func readTrees(ctx context.Context, s store.Store) ([]treeEntry, error) {
	b, _, err := store.GetBytes(ctx, s, treesKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", treesKey, err)
	}
	var out []treeEntry
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			e := treeEntry{id: f[0]}
			if len(f) > 1 {
				e.base = f[1]
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// writeTreeIDs writes entries (newest first, deduplicated, at most MaxTreeIDs). The
// metadata "ids" the edge checks a preview label against lists every id, or with
// FullPreviewTrees the full trees only: an edge that cannot read a preview's layer
// answers its label 404 rather than a preview missing every unchanged page.
func (d *Deployer) writeTreeIDs(ctx context.Context, lk *lock, entries []treeEntry) error {
	seen := map[string]bool{}
	var lines, ids []string
	for _, e := range entries {
		if e.id == "" || seen[e.id] || len(lines) == MaxTreeIDs {
			continue
		}
		seen[e.id] = true
		lines = append(lines, strings.TrimSpace(e.id+" "+e.base))
		if !d.FullPreviewTrees || e.base == "" {
			ids = append(ids, e.id)
		}
	}
	body := strings.Join(lines, "\n") + "\n"
	return lk.fenced(ctx, func(ctx context.Context) error {
		_, err := store.PutBytes(ctx, d.Store, treesKey, []byte(body), store.PutOptions{Meta: store.Meta{
			ContentType:  "text/plain; charset=utf-8",
			CacheControl: "public, max-age=5, s-maxage=5",
			Metadata:     map[string]string{"ids": strings.Join(ids, " "), "surrogate-key": TreesSurrogateKey(d.Site) + " " + d.Site},
		}})
		if err != nil {
			return fmt.Errorf("write %s: %w", treesKey, err)
		}
		return nil
	})
}

// addTreeID records that deploy id has a tree, and purges the list at the edge.
func (d *Deployer) addTreeID(ctx context.Context, lk *lock, id, base string) error {
	es, err := readTrees(ctx, d.Store)
	if err != nil {
		return err
	}
	if err := d.writeTreeIDs(ctx, lk, append([]treeEntry{{id, base}}, es...)); err != nil {
		return err
	}
	if kp, ok := d.Purger.(KeyPurger); ok {
		if _, err := kp.PurgeKeys(ctx, d.Site, []string{TreesSurrogateKey(d.Site)}); err != nil {
			// A stale list only delays a new preview by its 5 s TTL.
			d.Log.Warn("purging the list of previews failed", "site", d.Site, "err", err)
		}
	}
	return nil
}

// dropTreeIDs removes ids (trees gc deleted) from the list.
func (d *Deployer) dropTreeIDs(ctx context.Context, lk *lock, drop []string) error {
	if len(drop) == 0 {
		return nil
	}
	es, err := readTrees(ctx, d.Store)
	if err != nil || len(es) == 0 {
		return err
	}
	gone := map[string]bool{}
	for _, id := range drop {
		gone[id] = true
	}
	var keep []treeEntry
	for _, e := range es {
		if !gone[e.id] {
			keep = append(keep, e)
		}
	}
	if len(keep) == len(es) {
		return nil
	}
	return d.writeTreeIDs(ctx, lk, keep)
}
