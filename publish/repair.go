package publish

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish/store"
)

// RepairResult says what Repair found and rewrote.
type RepairResult struct {
	// Problems is what verify found before the repair.
	Problems []Problem `json:"problems"`
	// Paths are the live paths rewritten from their blobs (and purged).
	Paths []string `json:"paths"`
	// Blobs counts stored blobs and assets uploaded again from the build.
	Blobs int `json:"blobs"`
	// PurgePending is set when the purge of the rewritten paths failed (it is kept
	// in the pointer as pending work, as after a publish).
	PurgePending bool `json:"purgePending,omitempty"`
}

// Repair checks the live tree against the live deploy (as Verify does) and rewrites
// every live object that is missing or differs in content or headers, from its blob
// (confirmed first; a blob missing or corrupted in the store is uploaded again from
// src, the build, when src is not nil), in the order a deploy writes, then purges the
// rewritten paths. In atomic mode it rewrites the live deploy's tree and _stump/live.
// It holds the lock; it never deletes anything. A target with an interrupted deploy
// is left to publish or rollback, which finish or undo it.
func (d *Deployer) Repair(ctx context.Context, src Source) (*RepairResult, error) {
	d.init()
	lk, ptr, tag, live, err := d.lockLive(ctx, "repair", "has no live deploy to repair")
	if err != nil {
		return nil, err
	}
	defer lk.release(context.WithoutCancel(ctx))
	if ptr.State == StateMaterializing {
		return nil, fmt.Errorf("deploy %s was interrupted while going live: run stump publish (to finish it) or stump rollback (to undo it) first", ptr.Pending)
	}
	probs, bad, tombs, err := d.check(ctx, ptr, live)
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Problems: probs}
	atomicMode := ptr.Mode == ModeAtomic
	var lay *treeLayout
	if atomicMode {
		if lay, err = d.layout(ctx, live, nil); err != nil {
			return res, err
		}
		for _, p := range tombs {
			if err := lk.fenced(ctx, func(ctx context.Context) error { return d.putTombstone(ctx, live.ID, p) }); err != nil {
				return res, err
			}
			res.Paths = append(res.Paths, TreeKey(live.ID, p))
		}
		if cur, base, err := readLiveTree(ctx, d.Store); err != nil {
			return res, err
		} else if cur != live.ID || base != baseOf(live) {
			if err := lk.fenced(ctx, func(ctx context.Context) error { return d.writeLive(ctx, live.ID, baseOf(live)) }); err != nil {
				return res, err
			}
			res.Paths = append(res.Paths, liveKey)
		}
	}
	if len(bad) == 0 {
		return res, d.purgeRepaired(ctx, lk, ptr, tag, nil, res)
	}
	plan := &Plan{Blobs: map[string]Object{}}
	for _, o := range bad {
		if o.Class == manifest.Immutable {
			plan.Assets = append(plan.Assets, o)
		} else {
			plan.Writes = append(plan.Writes, o)
		}
	}
	before := d.repairedBlobs.Load()
	if !atomicMode && live.Content != ContentTree {
		// In place, from blobs: confirmed (or uploaded again from the build) first.
		if _, _, err := d.upload(ctx, lk, plan, src, nil, nil); err != nil {
			return res, err
		}
		if _, err := d.materialize(ctx, lk, plan, nil); err != nil {
			return res, err
		}
	} else {
		// The live deploy's content is in its tree (or, in atomic mode, is read from
		// it): each damaged object is rewritten from another stored copy of its bytes,
		// else from the build.
		if _, _, err := d.upload(ctx, lk, &Plan{Assets: plan.Assets}, src, nil, nil); err != nil {
			return res, err
		}
		dest := func(o Object) string { return o.Path }
		if atomicMode {
			dest = func(o Object) string { return lay.key(o.Path) }
		}
		if err := d.rewriteFromCopies(ctx, lk, live, bad, dest, src); err != nil {
			return res, err
		}
	}
	res.Blobs = int(d.repairedBlobs.Load() - before)
	for _, o := range bad {
		res.Paths = append(res.Paths, o.Path)
	}
	return res, d.purgeRepaired(ctx, lk, ptr, tag, bad, res)
}

// purgeRepaired purges the rewritten paths (what the edge holds for them is not what
// the deploy says) and, when _stump/live was rewritten, the pointer key; what fails is
// kept as pending work in the pointer.
func (d *Deployer) purgeRepaired(ctx context.Context, lk *lock, ptr Pointer, tag string, bad []Object, res *RepairResult) error {
	if d.Purger == nil || len(res.Paths) == 0 {
		return nil
	}
	var left []byte
	if pp, ok := d.Purger.(PathPurger); ok && len(bad) > 0 {
		paths := make([]string, len(bad))
		for i, o := range bad {
			paths[i] = o.Path
		}
		more, err := pp.PurgePaths(ctx, d.Site, paths)
		if err != nil {
			d.Log.Warn("purging the repaired paths failed; recorded as pending", "site", d.Site, "err", err)
		}
		left = more
	}
	if kp, ok := d.Purger.(KeyPurger); ok && len(res.Paths) > len(bad) {
		// _stump/live was rewritten: the edge's cached pointer goes too.
		more, err := kp.PurgeKeys(ctx, d.Site, []string{PointerKey(d.Site)})
		if err != nil {
			d.Log.Warn("purging the pointer failed; recorded as pending", "site", d.Site, "err", err)
		}
		left = d.mergePending(left, more)
	}
	res.PurgePending = len(left) > 0
	if len(left) == 0 {
		return nil
	}
	if err := lk.ensure(ctx); err != nil {
		return err
	}
	ptr.PendingPurge = d.mergePending(ptr.PendingPurge, left)
	_, err := d.putPointer(ctx, ptr, tag)
	return err
}

// rewriteFromCopies rewrites each object of bad at dest(o) with its headers, from a
// stored copy of its bytes (confirmed by its SHA-256 as the store has it now): where
// live stores it (Record.Content) when that is not dest(o) itself, its blob (an older
// deploy's), the same path in the tree of another deploy (the deploys of
// _stump/trees.txt, newest first), or dest(o) itself when only its headers differ. Content with no such copy is put from the build
// (src) with its SHA-256, so the store verifies it; without a build, nothing is
// written and the error names the content and stump publish --repair. Static files
// are written before pages, as a deploy does.
func (d *Deployer) rewriteFromCopies(ctx context.Context, lk *lock, live *Record, bad []Object, dest func(Object) string, src Source) error {
	stored, err := d.contentOf(ctx, live, nil)
	if err != nil {
		return err
	}
	ids, err := ReadTreeIDs(ctx, d.Store)
	if err != nil {
		return err
	}
	from := make([]string, len(bad))
	var lost []string
	for i, o := range bad {
		cands := []string{stored(o)}
		if o.Class != manifest.Immutable {
			cands = append(cands, blobKey(o.SHA256))
			for _, id := range ids {
				cands = append(cands, TreeKey(id, o.Path))
			}
		}
		// Last, the damaged object itself: when only its headers differ, its bytes
		// are right and a copy onto itself rewrites the headers.
		cands = append(cands, dest(o))
		for j, c := range cands {
			if c == dest(o) && j < len(cands)-1 {
				continue
			}
			if sum, _, err := store.Checksum(ctx, d.Store, c); err == nil && sum == o.SHA256 {
				from[i] = c
				break
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("check %s: %w", c, err)
			}
		}
		if from[i] == "" && src == nil {
			lost = append(lost, fmt.Sprintf("%s (%s)", o.Path, o.SHA256[:12]))
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("the content of %s is missing or corrupted where the live deploy reads it, and the target holds no other copy of it; nothing was changed: rebuild the site and run stump publish --repair, which uploads it from the build: %w", strings.Join(lost, ", "), store.ErrNotFound)
	}
	order := make([]int, len(bad))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return writeRank(bad[order[a]]) < writeRank(bad[order[b]]) })
	for _, i := range order {
		o := bad[i]
		err := lk.fenced(ctx, func(ctx context.Context) error {
			if from[i] != "" {
				return d.Store.Copy(ctx, from[i], dest(o), store.PutOptions{Meta: objectMeta(o)})
			}
			f, size, err := src.Open(o.Path)
			if err != nil {
				return fmt.Errorf("read built file %s: %w", o.Path, err)
			}
			defer f.Close()
			if _, err := d.Store.Put(ctx, dest(o), f, size, store.PutOptions{Meta: objectMeta(o), SHA256: o.SHA256}); err != nil {
				return fmt.Errorf("upload %s (%s) from the build: %w", o.Path, o.SHA256[:12], err)
			}
			d.Log.Warn("no stored copy of the content was left; uploaded it again from the build", "site", d.Site, "path", o.Path)
			d.repairedBlobs.Add(1)
			return nil
		})
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", o.Path, err)
		}
	}
	return nil
}
