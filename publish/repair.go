package publish

import (
	"context"
	"fmt"

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
	if _, _, err := d.upload(ctx, lk, plan, src, nil); err != nil {
		return res, err
	}
	res.Blobs = int(d.repairedBlobs.Load() - before)
	if atomicMode {
		for _, o := range bad {
			from := blobKey(o.SHA256)
			if o.Class == manifest.Immutable {
				from = o.Path
			}
			if err := lk.fenced(ctx, func(ctx context.Context) error {
				// Where the live deploy reads it: its layer, or its base (whose object
				// for this path is the same, or it would be in the layer).
				return d.Store.Copy(ctx, from, lay.key(o.Path), store.PutOptions{Meta: objectMeta(o)})
			}); err != nil {
				return res, fmt.Errorf("rewrite %s: %w", o.Path, err)
			}
		}
	} else if _, err := d.materialize(ctx, lk, plan); err != nil {
		return res, err
	}
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
