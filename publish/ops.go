package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish/store"
)

// Rollback makes an earlier deploy live again from its blobs: no rebuild, no upload.
// With to == "", it undoes the last publish:
//   - when the pointer shows an interrupted deploy, the live deploy is written again
//     over the paths the interrupted one may have touched;
//   - when the lock it had to break (--break-lock) was left by a publish that was
//     killed before its commit, that publish never went live: there is nothing to
//     undo, and the live deploy stays (a committed deploy is never walked back for it);
//   - otherwise it goes back to the deploy before the live one.
//
// The switch is purged like a publish's (same purger, same pending-purge bookkeeping).
func (d *Deployer) Rollback(ctx context.Context, to string) (*Result, error) {
	d.init()
	start := d.Now()
	lk, ptr, tag, live, err := d.lockLive(ctx, "rollback", "has no deploy to roll back to")
	if err != nil {
		return nil, err
	}
	defer lk.release(context.WithoutCancel(ctx))
	unknown, _, err := d.unknownPaths(ctx, ptr, live)
	if err != nil {
		return nil, err
	}
	res := &Result{Site: d.Site, Previous: ptr.Live}
	target := live
	switch {
	case to == "" && ptr.State == StateMaterializing:
		res.Repaired = ptr.Pending
	case to == "" && killedBeforeCommit(lk.broke, ptr):
		// The killed publish changed nothing live: undoing it is leaving the live
		// deploy as it is (finishing a switch it may have left behind).
		res.Repaired, res.Deploy, res.Noop = lk.broke.Deploy, ptr.Live, true
		res.Plan = Diff(live.Objects, live.Objects, nil)
		if err := lk.release(context.WithoutCancel(ctx)); err != nil {
			return res, err
		}
		if err := d.settle(ctx, ptr); err != nil {
			return res, err
		}
		res.PurgePending = d.purgePending
		res.Seconds = d.Now().Sub(start).Seconds()
		return res, nil
	case to == "":
		id := live.Parent
		if id == "" {
			id = ptr.Previous
		}
		if id == "" {
			return nil, fmt.Errorf("the live deploy %s has no earlier deploy; name one with --to", live.ID)
		}
		if target, err = ReadRecord(ctx, d.Store, id); err != nil {
			return nil, err
		}
	default:
		if target, err = ReadRecord(ctx, d.Store, to); err != nil {
			return nil, err
		}
	}
	if ptr.Mode == ModeAtomic {
		if target.Base != "" {
			if ok, err := d.edgeReadsLayers(ctx); err != nil {
				return nil, err
			} else if !ok {
				return nil, fmt.Errorf("deploy %s is a layer over %s, and the edge of site %s has not said it reads layers (stump edge deploy --fastly records that it does): deploy the edge first, or roll back to a deploy with a full tree", target.ID, target.Base, d.Site)
			}
		}
		if target.Mode != ModeAtomic && !target.Preview {
			return nil, fmt.Errorf("deploy %s was made in place, before the site switched to atomic mode; it has no tree to switch to (publish it again instead)", target.ID)
		}
		res.Plan = Diff(live.Objects, target.Objects, nil)
		if err := d.rollbackTree(ctx, lk, ptr, tag, live, target); err != nil {
			return res, err
		}
		res.Deploy = target.ID
		res.PurgePending = d.purgePending
		res.Seconds = d.Now().Sub(start).Seconds()
		return res, nil
	}
	plan := d.plan(live, forStore(target.Objects, ptr.RedirectMeta), unknown, ptr, true)
	res.Plan = plan
	// Every blob and asset (or, for a deploy whose content is in its tree, every
	// object of its tree the plan copies) must still be there, with its bytes, before
	// anything changes.
	from, err := d.contentOf(ctx, target, nil)
	if err != nil {
		return res, err
	}
	if _, _, err := d.upload(ctx, lk, plan, nil, nil, from); err != nil {
		return res, err
	}
	if err := d.switchTo(ctx, lk, ptr, tag, target, plan, live); err != nil {
		return res, err
	}
	res.Deploy = target.ID
	res.PurgePending = d.purgePending
	res.Seconds = d.Now().Sub(start).Seconds()
	return res, nil
}

// lockLive takes the lock for op and reads the pointer and the live record; a target
// with no live deploy fails with "<store> <none>". The caller releases the lock.
func (d *Deployer) lockLive(ctx context.Context, op, none string) (*lock, Pointer, string, *Record, error) {
	lk, err := acquire(ctx, d.Store, d.Lock, op, "")
	if err != nil {
		return nil, Pointer{}, "", nil, err
	}
	ptr, tag, live, err := d.live(ctx)
	if err == nil && live == nil {
		err = fmt.Errorf("%s %s", d.Store, none)
	}
	if err != nil {
		_ = lk.release(context.WithoutCancel(ctx))
		return nil, Pointer{}, "", nil, err
	}
	return lk, ptr, tag, live, nil
}

// killedBeforeCommit reports whether broke, a stale lease replaced to take the lock,
// was left by a publish that died before the pointer named its deploy (in place: before
// it marked the pointer, which is handled as an interrupted deploy).
func killedBeforeCommit(broke *Lease, ptr Pointer) bool {
	return broke != nil && broke.Op == "publish" && broke.Deploy != "" && broke.Deploy != ptr.Live && ptr.State != StateMaterializing
}

// Status is the state of a target.
type Status struct {
	Site    string  `json:"site"`
	Target  string  `json:"target"`
	Pointer Pointer `json:"pointer"`
	Live    *Record `json:"live,omitempty"`
	Lock    *Lease  `json:"lock,omitempty"`
	// Interrupted names a deploy that was killed while it was being made live.
	Interrupted string `json:"interrupted,omitempty"`
}

// ReadStatus reads the pointer, the live record's header (no objects) and the lock.
func (d *Deployer) ReadStatus(ctx context.Context) (*Status, error) {
	d.init()
	ptr, _, err := ReadPointer(ctx, d.Store)
	if err != nil {
		return nil, err
	}
	st := &Status{Site: d.Site, Target: d.Store.String(), Pointer: ptr}
	if ptr.Live != "" {
		// The header only: status reads no chunk (a first-format record is read
		// whole, as before).
		live, err := readRecord(ctx, d.Store, ptr.Live, false, nil)
		if err != nil {
			return nil, err
		}
		live.Objects, live.Chunks = nil, nil
		st.Live = live
	}
	if ptr.State == StateMaterializing {
		st.Interrupted = ptr.Pending
	}
	if st.Lock, err = ReadLock(ctx, d.Store); err != nil {
		return nil, err
	}
	return st, nil
}

// GCResult counts what gc removed.
type GCResult struct {
	KeptDeploys    int `json:"keptDeploys"`
	DeletedDeploys int `json:"deletedDeploys"`
	DeletedBlobs   int `json:"deletedBlobs"`
	DeletedAssets  int `json:"deletedAssets"`
	KeptBlobs      int `json:"keptBlobs"`
}

// GC keeps the newest keep deploys (and the live, previous and any pending one), with
// their trees and their bases' (records and trees: a layer reads through its base, and
// a deploy whose content is in its tree has no other copy of it), and deletes the
// older records and trees, the blobs no kept deploy references (a deploy whose content
// is in its tree references none), and fingerprinted assets in the live tree that no
// kept deploy references.
func (d *Deployer) GC(ctx context.Context, keep int) (*GCResult, error) {
	d.init()
	if keep < 1 {
		return nil, fmt.Errorf("--keep must be at least 1")
	}
	lk, err := acquire(ctx, d.Store, d.Lock, "gc", "")
	if err != nil {
		return nil, err
	}
	defer lk.release(context.WithoutCancel(ctx))
	ptr, _, _, err := d.live(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := ListRecords(ctx, d.Store, true)
	if err != nil {
		return nil, err
	}
	res := &GCResult{}
	blobs, assets := map[string]bool{}, map[string]bool{}
	var drop, dropTrees []string
	// A kept deploy's tree reads through its base: the base's tree stays (and its
	// record, which says what the tree holds).
	kept := map[string]bool{}
	for i, r := range recs {
		if i < keep || r.ID == ptr.Live || r.ID == ptr.Pending || r.ID == ptr.Previous {
			kept[r.ID] = true
			if r.Base != "" {
				kept[r.Base] = true
			}
		}
	}
	chunks := map[string]bool{}
	for _, r := range recs {
		if kept[r.ID] {
			for _, c := range r.Chunks {
				chunks[c] = true
			}
		}
	}
	for _, r := range recs {
		if kept[r.ID] {
			res.KeptDeploys++
			for _, o := range r.Objects {
				if o.Class == manifest.Immutable {
					assets[o.Path] = true
				} else if r.Content != ContentTree {
					// A deploy whose content is in its tree references no blob:
					// its tree (and its base's) is kept instead.
					blobs[o.SHA256] = true
				}
			}
			continue
		}
		drop = append(drop, recordKey(r.ID), layersKey(r.ID))
		dropTrees = append(dropTrees, r.ID)
	}
	// Record chunks no kept record names.
	err = d.Store.List(ctx, path.Join(internalPrefix, "chunks")+"/", func(i store.Info) error {
		if !chunks[path.Base(i.Key)] {
			drop = append(drop, i.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list record chunks: %w", err)
	}
	var dead []string
	err = d.Store.List(ctx, path.Join(internalPrefix, "objects", "sha256")+"/", func(i store.Info) error {
		if blobs[path.Base(i.Key)] {
			res.KeptBlobs++
		} else {
			dead = append(dead, i.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	res.DeletedBlobs = len(dead)
	// Assets of dropped deploys that no kept deploy uses.
	for _, r := range recs {
		for _, o := range r.Objects {
			if o.Class == manifest.Immutable && !assets[o.Path] {
				assets[o.Path] = true // delete once
				dead = append(dead, o.Path)
				res.DeletedAssets++
			}
		}
	}
	// Files stump wrote (they carry its sha256 metadata) that no deploy references:
	// left by an interrupted deploy. Files stump did not write are never touched.
	live := map[string]bool{}
	for _, r := range recs {
		if r.ID == ptr.Live || r.ID == ptr.Pending {
			for _, o := range r.Objects {
				live[o.Path] = true
			}
		}
	}
	for _, id := range dropTrees {
		err := d.Store.List(ctx, TreeKey(id, "")+"/", func(i store.Info) error {
			dead = append(dead, i.Key)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list the tree of %s: %w", id, err)
		}
	}
	err = d.Store.List(ctx, "", func(i store.Info) error {
		if strings.HasPrefix(i.Key, internalPrefix+"/") || live[i.Key] || assets[i.Key] {
			return nil
		}
		if h, err := d.Store.Head(ctx, i.Key); err == nil && h.Meta.Metadata["sha256"] != "" {
			dead = append(dead, i.Key)
			res.DeletedAssets++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the live tree: %w", err)
	}
	if err := d.dropTreeIDs(ctx, lk, dropTrees); err != nil {
		return nil, err
	}
	if err := d.deleteBatched(ctx, lk, append(dead, drop...)); err != nil {
		return nil, err
	}
	res.DeletedDeploys = len(dropTrees)
	return res, nil
}

// Problem is one way the live tree differs from the live manifest.
type Problem struct {
	Path string `json:"path"`
	What string `json:"what"`
	// Warning marks something harmless (a file an interrupted deploy left, which no
	// page references; gc removes it).
	Warning bool `json:"warning,omitempty"`
}

// Verify checks the live tree against the live deploy: every path present with the
// right size, headers and SHA-256 (each object is read and hashed), and no stray paths
// outside _stump/.
func (d *Deployer) Verify(ctx context.Context) ([]Problem, error) {
	d.init()
	ptr, _, live, err := d.live(ctx)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, fmt.Errorf("%s has no live deploy to verify", d.Store)
	}
	probs, _, _, err := d.check(ctx, ptr, live)
	return probs, err
}

// check compares the live tree with the live deploy. It returns the problems, the
// objects of the live deploy whose live copy is missing or differs, and (atomic mode)
// the tombstones missing from the live layer (what Repair rewrites).
func (d *Deployer) check(ctx context.Context, ptr Pointer, live *Record) ([]Problem, []Object, []string, error) {
	var mu sync.Mutex
	var probs []Problem
	var bad []Object
	add := func(p, what string) {
		mu.Lock()
		probs = append(probs, Problem{Path: p, What: what})
		mu.Unlock()
	}
	addBad := func(o Object, key, what string) {
		mu.Lock()
		probs = append(probs, Problem{Path: key, What: what})
		bad = append(bad, o)
		mu.Unlock()
	}
	if ptr.State == StateMaterializing {
		add(pointerKey, "deploy "+ptr.Pending+" was interrupted while going live; run stump publish or stump rollback to finish or undo it")
	}
	objects := forStore(live.Objects, ptr.RedirectMeta)
	atomicMode := ptr.Mode == ModeAtomic
	var lay *treeLayout
	var tombs []string
	if atomicMode {
		if id, base, err := readLiveTree(ctx, d.Store); err != nil {
			return nil, nil, nil, err
		} else if id != live.ID || base != baseOf(live) {
			add(liveKey, fmt.Sprintf("names deploy %q over %q, but the live deploy is %s over %s (stump verify --repair rewrites it)", id, base, live.ID, baseOf(live)))
		}
		var err error
		if lay, err = d.layout(ctx, live, nil); err != nil {
			return nil, nil, nil, err
		}
		for _, p := range lay.tombs {
			if info, err := d.Store.Head(ctx, TreeKey(live.ID, p)); err != nil || !IsTombstone(info.Meta) {
				mu.Lock()
				probs = append(probs, Problem{Path: TreeKey(live.ID, p), What: "removed by this deploy, but its tombstone is missing: the base's copy is served"})
				tombs = append(tombs, p)
				mu.Unlock()
			}
		}
	}
	keyOf := func(o Object) string {
		if atomicMode {
			return lay.key(o.Path)
		}
		return o.Path
	}
	seen := map[string]store.Info{}
	if !atomicMode {
		want := map[string]bool{}
		for _, o := range objects {
			want[o.Path] = true
		}
		// Assets of earlier deploys stay until gc: they are not strays.
		known := map[string]bool{}
		if recs, err := ListRecords(ctx, d.Store, true); err == nil {
			for _, r := range recs {
				for _, o := range r.Objects {
					if o.Class == manifest.Immutable {
						known[o.Path] = true
					}
				}
			}
		}
		err := d.Store.List(ctx, "", func(i store.Info) error {
			if strings.HasPrefix(i.Key, internalPrefix+"/") {
				return nil
			}
			if !want[i.Key] && !known[i.Key] {
				if h, err := d.Store.Head(ctx, i.Key); err == nil && h.Meta.Metadata["sha256"] != "" {
					probs = append(probs, Problem{Path: i.Key, What: "left by an interrupted deploy; no page references it (stump gc removes it)", Warning: true})
				} else {
					add(i.Key, "not in the live deploy")
				}
			}
			seen[i.Key] = i
			return nil
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("list the live tree: %w", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.Workers)
	for _, o := range objects {
		key := keyOf(o)
		if !atomicMode {
			info, ok := seen[o.Path]
			if !ok {
				addBad(o, key, "missing")
				continue
			}
			if info.Size != o.Size {
				addBad(o, key, fmt.Sprintf("size %d, want %d", info.Size, o.Size))
				continue
			}
		}
		g.Go(func() error {
			rc, info, err := d.Store.Get(gctx, key)
			if errors.Is(err, store.ErrNotFound) {
				addBad(o, key, "missing")
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			defer rc.Close()
			if IsTombstone(info.Meta) {
				addBad(o, key, "a tombstone where the deploy has this path")
				return nil
			}
			h := sha256.New()
			if _, err := io.Copy(h, rc); err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
				addBad(o, key, "checksum "+got[:12]+" does not match "+o.SHA256[:12])
				return nil
			}
			m := objectMeta(o)
			if info.Meta.ContentType != m.ContentType || info.Meta.CacheControl != m.CacheControl || info.Meta.RedirectLocation != m.RedirectLocation {
				addBad(o, key, fmt.Sprintf("headers differ: %q %q %q", info.Meta.ContentType, info.Meta.CacheControl, info.Meta.RedirectLocation))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, nil, err
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].Path < probs[j].Path })
	sort.Slice(bad, func(i, j int) bool { return bad[i].Path < bad[j].Path })
	return probs, bad, tombs, nil
}

// PendingRetrier retries pending purge work (package purge's Purger).
type PendingRetrier interface {
	Retry(ctx context.Context, pending []byte) ([]byte, error)
}

// RetryPendingPurge retries the purge work recorded in the pointer, under the lock, and
// records what still fails. It reports whether work is still pending.
func (d *Deployer) RetryPendingPurge(ctx context.Context, p PendingRetrier) (bool, error) {
	d.init()
	lk, err := acquire(ctx, d.Store, d.Lock, "purge", "")
	if err != nil {
		return false, err
	}
	defer lk.release(context.WithoutCancel(ctx))
	ptr, tag, err := ReadPointer(ctx, d.Store)
	if err != nil {
		return false, err
	}
	if len(ptr.PendingPurge) == 0 {
		return false, nil
	}
	left, rerr := p.Retry(ctx, ptr.PendingPurge)
	ptr.PendingPurge = left
	if _, err := d.putPointer(ctx, ptr, tag); err != nil {
		return true, err
	}
	if rerr != nil {
		d.Log.Warn("pending purge failed again", "site", d.Site, "err", rerr)
	}
	return len(left) > 0, nil
}
