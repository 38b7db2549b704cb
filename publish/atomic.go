package publish

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish/store"
)

// Deploy modes.
const (
	// ModeInPlace writes the live tree at the target's root (the default).
	ModeInPlace = "inplace"
	// ModeAtomic materializes every deploy under _stump/trees/<id>/ and switches by
	// rewriting the pointer alone. The edge (see package edge) resolves the live deploy
	// from _stump/live, a tiny object fetched through its cache and purged by the key
	// "<site>:pointer" on every switch, so the live site is never half old, half new.
	// Rollback is one pointer write. Previews use the same trees.
	ModeAtomic = "atomic"
)

// liveKey is the object the edge reads to find the live deploy: its body is the id and
// its metadata "deploy" holds it too.
var liveKey = path.Join(internalPrefix, "live")

// TreeKey is where a path of deploy id lives in atomic mode.
func TreeKey(id, p string) string { return path.Join(internalPrefix, "trees", id, p) }

// PointerKey is the surrogate key of a site's _stump/live object.
func PointerKey(site string) string { return site + ":pointer" }

func (d *Deployer) mode() string {
	if d.Mode == ModeAtomic {
		return ModeAtomic
	}
	return ModeInPlace
}

// KeyPurger is an optional extension of Purger: it purges surrogate keys (atomic mode
// purges the pointer's key on every switch).
type KeyPurger interface {
	PurgeKeys(ctx context.Context, site string, keys []string) ([]byte, error)
}

// publishTree materializes rec under _stump/trees/<id>/ and, unless preview, makes it
// live by writing the pointer and _stump/live, then purges the pointer key and the
// changed URLs. A deploy killed before the pointer write changed nothing live.
func (d *Deployer) publishTree(ctx context.Context, lk *lock, ptr Pointer, ptrTag string, rec *Record, live *Record, plan *Plan, preview bool) error {
	if err := d.materializeTree(ctx, lk, rec, live, plan); err != nil {
		return err
	}
	if err := d.addTreeID(ctx, lk, rec.ID); err != nil {
		return err
	}
	if err := d.stepDone("materialize"); err != nil {
		return err
	}
	if preview {
		return nil
	}
	return d.switchTree(ctx, lk, ptr, ptrTag, rec, live)
}

// materializeTree copies every object of rec into its tree: changed pages and static
// files from their blobs (which upload confirmed), unchanged ones from the live
// deploy's tree when it has one (its bytes were confirmed when it was made), and
// fingerprinted assets from their own keys.
func (d *Deployer) materializeTree(ctx context.Context, lk *lock, rec *Record, live *Record, plan *Plan) error {
	changed := map[string]bool{}
	for _, o := range plan.Writes {
		changed[o.Path] = true
	}
	prevTree := live != nil && live.Mode == ModeAtomic
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.Workers)
	for _, o := range rec.Objects {
		g.Go(func() error {
			if err := lk.ensure(gctx); err != nil {
				return err
			}
			src := blobKey(o.SHA256)
			switch {
			case o.Class == manifest.Immutable:
				src = o.Path
			case prevTree && !changed[o.Path]:
				src = TreeKey(live.ID, o.Path)
			case !changed[o.Path]:
				// The first tree after in-place deploys: confirm the blob as upload
				// does for changed paths.
				if sum, _, err := store.Checksum(gctx, d.Store, src); err != nil || sum != o.SHA256 {
					return fmt.Errorf("the stored content of %s (%s) is missing or corrupted (%v); publish with --repair to upload it again", o.Path, o.SHA256[:12], err)
				}
			}
			if err := d.Store.Copy(gctx, src, TreeKey(rec.ID, o.Path), store.PutOptions{Meta: objectMeta(o)}); err != nil {
				return fmt.Errorf("write %s into tree %s: %w", o.Path, rec.ID, err)
			}
			if d.StepHook != nil {
				return d.StepHook("copy")
			}
			return nil
		})
	}
	return g.Wait()
}

// switchTree commits the pointer to rec (compare-and-swap), writes _stump/live, and
// purges. Shared by Publish and Rollback in atomic mode.
func (d *Deployer) switchTree(ctx context.Context, lk *lock, ptr Pointer, ptrTag string, rec *Record, live *Record) error {
	if err := lk.ensure(ctx); err != nil {
		return d.lostBefore(err, "the switch", rec.ID, 0, 0)
	}
	commit := Pointer{Live: rec.ID, Previous: ptr.Live, State: StateLive, Mode: ModeAtomic, Since: d.Now().UTC(), PendingPurge: ptr.PendingPurge, RedirectMeta: ptr.RedirectMeta}
	if live == nil || live.ID == rec.ID {
		commit.Previous = ptr.Previous
	}
	if d.Purger != nil {
		commit.PurgeOwed = owed(ptr)
	}
	tag, err := d.putPointer(ctx, commit, ptrTag)
	if err != nil {
		if errors.Is(err, errPointerMoved) {
			return d.lostBefore(err, "the switch", rec.ID, 0, 0)
		}
		return err
	}
	if err := d.stepDone("commit"); err != nil {
		return err
	}
	if err := lk.fenced(ctx, func(ctx context.Context) error { return d.writeLive(ctx, rec.ID) }); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return fmt.Errorf("%w; deploy %s was committed, but _stump/live was not rewritten: the process that holds the site now finishes the switch", err, rec.ID)
		}
		return err
	}
	if d.Purger != nil {
		from := d.purgeFrom(ctx, ptr, live)
		commit.PendingPurge = d.purgeSwitch(ctx, from, rec.Objects, ptr.PendingPurge, true)
		commit.PurgeOwed = ""
		if tag, err = d.putPointer(ctx, commit, tag); err != nil {
			return err
		}
		if more := d.purgeAgain(ctx, from, rec.Objects); len(more) > 0 {
			commit.PendingPurge = d.mergePending(commit.PendingPurge, more)
			if _, err := d.putPointer(ctx, commit, tag); err != nil {
				return err
			}
		}
	}
	return d.stepDone("purge")
}

// purgeAgain purges the changed URLs of an atomic switch a second time, after
// RepurgeDelay: a visitor's request that read the old pointer just before its purge can
// still be fetching the old tree's page when the URL is purged, and would cache it under
// the URL after the purge. The second purge removes what such requests stored. It
// returns the work that failed (to keep as pending).
func (d *Deployer) purgeAgain(ctx context.Context, from, to []Object) []byte {
	delay := d.RepurgeDelay
	if delay == 0 {
		delay = time.Second
	}
	if delay < 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(delay):
	}
	more, err := d.Purger.Purge(ctx, d.Site, from, to, nil)
	if err != nil {
		d.Log.Warn("the second purge of the switch failed; recorded as pending", "site", d.Site, "err", err)
		d.purgePending = true
		return more
	}
	return nil
}

// writeLive writes _stump/live naming deploy id, for the edge.
func (d *Deployer) writeLive(ctx context.Context, id string) error {
	_, err := store.PutBytes(ctx, d.Store, liveKey, []byte(id+"\n"), store.PutOptions{Meta: store.Meta{
		ContentType:  "text/plain; charset=utf-8",
		CacheControl: "public, max-age=5, s-maxage=5",
		Metadata:     map[string]string{"deploy": id, "surrogate-key": PointerKey(d.Site) + " " + d.Site},
	}})
	if err != nil {
		return fmt.Errorf("write %s: %w", liveKey, err)
	}
	return nil
}

// ReadLive returns the deploy id _stump/live names ("" when absent).
func ReadLive(ctx context.Context, s store.Store) (string, error) {
	b, info, err := store.GetBytes(ctx, s, liveKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if id := info.Meta.Metadata["deploy"]; id != "" {
		return id, nil
	}
	return strings.TrimSpace(string(b)), nil
}

// rollbackTree makes target live in atomic mode: its tree is already there, so this is
// a pointer write (after checking the tree's index is present).
func (d *Deployer) rollbackTree(ctx context.Context, lk *lock, ptr Pointer, tag string, live, target *Record) error {
	// One probe: gc removes trees whole.
	if len(target.Objects) > 0 {
		o := target.Objects[0]
		if _, err := d.Store.Head(ctx, TreeKey(target.ID, o.Path)); err != nil {
			return fmt.Errorf("the tree of deploy %s is incomplete (%s: %w); was it garbage-collected?", target.ID, o.Path, err)
		}
	}
	return d.switchTree(ctx, lk, ptr, tag, target, live)
}

// owed is the deploy whose switch to the next one still needs a purge: the one a killed
// publish owed, else the live one (about to be replaced).
func owed(ptr Pointer) string {
	if ptr.PurgeOwed != "" {
		return ptr.PurgeOwed
	}
	return ptr.Live
}

// settle finishes what a publish killed after its commit left undone: in atomic mode
// _stump/live behind the pointer, and a purge owed for the switch. It costs one GET of
// _stump/live in atomic mode and nothing else when all is settled.
func (d *Deployer) settle(ctx context.Context, ptr Pointer) error {
	stale := false
	if ptr.Mode == ModeAtomic {
		cur, err := ReadLive(ctx, d.Store)
		if err != nil {
			return err
		}
		stale = cur != ptr.Live
	}
	if !stale && (ptr.PurgeOwed == "" || d.Purger == nil) {
		return nil
	}
	lk, err := acquire(ctx, d.Store, d.Lock, "settle", "")
	if err != nil {
		return err
	}
	defer lk.release(context.WithoutCancel(ctx))
	ptr, tag, err := ReadPointer(ctx, d.Store)
	if err != nil {
		return err
	}
	if ptr.Mode == ModeAtomic {
		if cur, err := ReadLive(ctx, d.Store); err != nil {
			return err
		} else if cur != ptr.Live {
			d.Log.Info("_stump/live was behind the pointer; rewriting it", "site", d.Site, "deploy", ptr.Live)
			if err := lk.fenced(ctx, func(ctx context.Context) error { return d.writeLive(ctx, ptr.Live) }); err != nil {
				return err
			}
		}
	}
	if ptr.PurgeOwed == "" || d.Purger == nil {
		return nil
	}
	var from []Object
	if prev, err := ReadRecord(ctx, d.Store, ptr.PurgeOwed); err == nil {
		from = prev.Objects
	}
	live, err := ReadRecord(ctx, d.Store, ptr.Live)
	if err != nil {
		return err
	}
	ptr.PendingPurge = d.purgeSwitch(ctx, from, live.Objects, ptr.PendingPurge, ptr.Mode == ModeAtomic)
	ptr.PurgeOwed = ""
	_, err = d.putPointer(ctx, ptr, tag)
	return err
}

// purgeSwitch purges a switch from objects from to objects to (and, in atomic mode,
// the pointer key first), retrying pending work; it returns what is still pending and
// sets d.purgePending. Failures are logged, never returned: they stay pending.
func (d *Deployer) purgeSwitch(ctx context.Context, from, to []Object, pending []byte, pointer bool) []byte {
	var keysLeft []byte
	if kp, ok := d.Purger.(KeyPurger); ok && pointer {
		var err error
		if keysLeft, err = kp.PurgeKeys(ctx, d.Site, []string{PointerKey(d.Site)}); err != nil {
			d.Log.Warn("purging the pointer failed; recorded as pending", "site", d.Site, "err", err)
		}
	}
	more, err := d.Purger.Purge(ctx, d.Site, from, to, pending)
	if err != nil {
		d.Log.Warn("purge failed; recorded as pending", "site", d.Site, "err", err)
	}
	left := d.mergePending(more, keysLeft)
	d.purgePending = len(left) > 0
	return left
}
