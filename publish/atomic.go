package publish

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
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

// Atomic trees are layered (see docs/publish.md, "Atomic mode"): a deploy's tree
// _stump/trees/<id>/ is either full (every object of the deploy: Record.Base is "") or
// a layer over a full tree, its base (Record.Base): the layer holds every path whose
// object differs from the base's, and a tombstone (an empty object with metadata
// "tombstone") for every base path the deploy removed. A reader resolves a path in the
// layer first, then in the base: the edge fetches the layer and, on a 404, the base
// (one extra origin fetch at most); a tombstone answers 404. _stump/live names both
// (metadata "deploy" and "base"), so a switch is still one write.
//
// A deploy writes a layer when the live deploy is atomic: the paths that differ from
// the live deploy's base, the unchanged ones copied from the live layer, the changed
// ones put from the build (no blob: the record's Content is ContentTree). Layers grow
// with the changes since their base; a deploy writes a full tree instead when the
// layers written on the base, this one's included
// (Record.Spent), would exceed the number of objects of the site (so over any run of
// deploys the layers cost at most as much as the full trees), and when its layer alone
// would hold more than half the site (it costs about what a full tree does, and a new
// base makes the next deploys cheap). Previews follow the same rules (the edge finds
// a preview's base from its tree's marker).

// layersKey is the marker of a complete tree: written once the tree is, before
// anything names it; its metadata "deploy" and "base" say how to read it.
func layersKey(id string) string { return path.Join(internalPrefix, "layers", id) }

// tombstoneMeta marks a tombstone.
const tombstoneMeta = "tombstone"

// IsTombstone reports whether stored metadata marks a tombstone: the path is not in
// the deploy whose layer holds it.
func IsTombstone(m store.Meta) bool { return m.Metadata[tombstoneMeta] != "" }

// baseOf is the full tree rec's tree reads through: rec.Base, or rec itself.
func baseOf(rec *Record) string {
	if rec.Base != "" {
		return rec.Base
	}
	return rec.ID
}

// treeLayout says where each path of an atomic deploy is stored.
type treeLayout struct {
	id, base string
	// layer holds the paths of the deploy's own tree when it has a base (nil for a
	// full tree: every path is in it); tombs the base paths it removed.
	layer map[string]bool
	tombs []string
}

// key is where path p of the deploy is stored.
func (t *treeLayout) key(p string) string {
	if t.layer == nil || t.layer[p] {
		return TreeKey(t.id, p)
	}
	return TreeKey(t.base, p)
}

// layerOf computes the layout of rec over base (base == nil: a full tree).
func layerOf(rec, base *Record) *treeLayout {
	t := &treeLayout{id: rec.ID, base: rec.ID}
	if base == nil {
		return t
	}
	t.base, t.layer = base.ID, map[string]bool{}
	old := make(map[string]Object, len(base.Objects))
	for _, o := range base.Objects {
		old[o.Path] = o
	}
	in := make(map[string]bool, len(rec.Objects))
	for _, o := range rec.Objects {
		in[o.Path] = true
		if b, ok := old[o.Path]; !ok || !same(b, o) {
			t.layer[o.Path] = true
		}
	}
	for _, o := range base.Objects {
		if !in[o.Path] {
			t.tombs = append(t.tombs, o.Path)
		}
	}
	sort.Strings(t.tombs)
	return t
}

// layout reads what is needed to resolve rec's paths: its base's record (from cache
// where it can).
func (d *Deployer) layout(ctx context.Context, rec *Record, cache *chunkCache) (*treeLayout, error) {
	if rec.Base == "" {
		return layerOf(rec, nil), nil
	}
	base, err := readRecord(ctx, d.Store, rec.Base, true, cache)
	if err != nil {
		return nil, fmt.Errorf("read the base of deploy %s: %w", rec.ID, err)
	}
	return layerOf(rec, base), nil
}

// publishTree materializes rec's tree (a layer or a full tree) and, unless preview,
// makes it live by writing the pointer and _stump/live, then purges the pointer key
// and the changed URLs. A deploy killed before the pointer write changed nothing live.
//
// New fingerprinted assets are uploaded to their own keys (upload) while the tree is
// written (materializeTree): every other changed path is put straight into the tree
// from the build, one request each; the copy of an asset into the tree waits for its
// own upload only.
func (d *Deployer) publishTree(ctx context.Context, lk *lock, ptr Pointer, ptrTag string, rec *Record, live *Record, plan *Plan, preview bool, cache *chunkCache, src Source) error {
	assets := &Plan{Blobs: map[string]Object{}, Assets: plan.Assets}
	ready := newReadySet(assets)
	d.Progress.Start("uploading", treeUploadBytes(rec, plan, d.tree))
	defer d.Progress.Done()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		_, _, err := d.upload(gctx, lk, assets, src, ready, nil)
		return err
	})
	g.Go(func() error { return d.materializeTree(gctx, lk, rec, live, plan, cache, ready, src) })
	if err := g.Wait(); err != nil {
		return err
	}
	if err := d.stepDone("upload"); err != nil {
		return err
	}
	if err := d.writeMarker(ctx, lk, rec); err != nil {
		return err
	}
	if err := d.addTreeID(ctx, lk, rec.ID, rec.Base); err != nil {
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

// treeWrites are the paths of plan that a tree of layout t gets from the build: the
// changed paths it holds (a full tree holds every path; a layer only the paths that
// differ from its base), fingerprinted assets excepted.
func treeWrites(plan *Plan, t *treeLayout) []Object {
	var out []Object
	for _, o := range plan.Writes {
		if t == nil || t.layer == nil || t.layer[o.Path] {
			out = append(out, o)
		}
	}
	return out
}

// treeUploadBytes is what a tree deploy sends from the build: its tree's new objects
// and the new fingerprinted assets.
func treeUploadBytes(rec *Record, plan *Plan, t *treeLayout) int64 {
	var n int64
	if t == nil || t.id != rec.ID {
		t = nil
	}
	for _, o := range treeWrites(plan, t) {
		n += o.Size
	}
	return n + plan.AssetBytes
}

// planTree decides whether rec gets a layer over the live deploy's base or a full
// tree, sets rec.Base, rec.Spent and rec.Layer, and returns rec's layout and the live
// deploy's (nil when the live deploy has no tree).
func (d *Deployer) planTree(ctx context.Context, rec, live *Record, cache *chunkCache) (*treeLayout, *treeLayout, error) {
	if live == nil || live.Mode != ModeAtomic {
		rec.Base, rec.Spent, rec.Layer = "", 0, len(rec.Objects)
		return layerOf(rec, nil), nil, nil
	}
	liveLayout, err := d.layout(ctx, live, cache)
	if err != nil {
		return nil, nil, err
	}
	full := func() (*treeLayout, *treeLayout, error) {
		rec.Base, rec.Spent, rec.Layer = "", 0, len(rec.Objects)
		return layerOf(rec, nil), liveLayout, nil
	}
	if rec.Preview && d.FullPreviewTrees {
		return full()
	}
	if ok, err := d.edgeReadsLayers(ctx); err != nil {
		return nil, nil, err
	} else if !ok {
		d.Log.Info("writing a full tree: the edge has not said it reads layers (stump edge deploy --fastly does)", "site", d.Site)
		return full()
	}
	var base *Record
	if live.Base == "" {
		base = live
		if live.Format < 2 {
			// A tree made before markers existed: it is live, so complete. Mark it,
			// so a rollback to a layer over it finds its base.
			if err := d.writeMarker(ctx, nil, live); err != nil {
				return nil, nil, err
			}
		}
	} else if base, err = readRecord(ctx, d.Store, live.Base, true, cache); err != nil {
		return nil, nil, fmt.Errorf("read the base of the live deploy %s: %w", live.ID, err)
	}
	t := layerOf(rec, base)
	if len(d.Pins) > 0 {
		for _, o := range rec.Objects {
			if slices.Contains(d.Pins, o.Path) {
				t.layer[o.Path] = true
			}
		}
	}
	n := len(t.layer) + len(t.tombs)
	spent := n
	if live.Base != "" {
		spent += live.Spent
	}
	if spent > len(rec.Objects) || 2*n > len(rec.Objects) {
		return full()
	}
	rec.Base, rec.Spent, rec.Layer = base.ID, spent, n
	return t, liveLayout, nil
}

// materializeTree writes rec's tree (rec.Base, rec.Spent and rec.Layer were set by
// planTree): each changed path straight from the build (src), one PUT with its headers
// and its SHA-256 so the store verifies the bytes; each unchanged path copied from the
// live deploy's tree (its bytes were verified when that tree was written); after a
// deploy in place (the live deploy has no tree), each unchanged path copied from where
// the live deploy stores it, confirmed first (a missing or corrupted source is put from
// the build instead, and publish says so); fingerprinted assets copied from their own
// keys once upload stored them (ready); and tombstones. The caller writes the tree's
// marker. Step hooks: "put" after each write from the build, "copy" after each copy.
func (d *Deployer) materializeTree(ctx context.Context, lk *lock, rec *Record, live *Record, plan *Plan, cache *chunkCache, ready *readySet, src Source) error {
	t, liveLayout := d.tree, d.liveTree
	if t == nil || t.id != rec.ID {
		var err error
		if t, liveLayout, err = d.planTree(ctx, rec, live, cache); err != nil {
			return err
		}
	}
	// Where the live deploy keeps the content of an unchanged path, and whether that
	// source is confirmed before use (it is not the live deploy's tree).
	liveFrom, confirm := func(o Object) string { return liveLayout.key(o.Path) }, false
	if liveLayout == nil {
		var err error
		if liveFrom, err = d.contentOf(ctx, live, cache); err != nil {
			return err
		}
		confirm = true
	}
	changed := make(map[string]bool, len(plan.Writes))
	for _, o := range plan.Writes {
		changed[o.Path] = true
	}
	put := func(ctx context.Context, o Object) error {
		f, size, err := src.Open(o.Path)
		if err != nil {
			return fmt.Errorf("read built file %s: %w", o.Path, err)
		}
		defer f.Close()
		if _, err := d.Store.Put(ctx, TreeKey(rec.ID, o.Path), f, size, store.PutOptions{Meta: objectMeta(o), SHA256: o.SHA256}); err != nil {
			return fmt.Errorf("write %s into tree %s: %w", o.Path, rec.ID, err)
		}
		d.Progress.Add(size)
		if d.StepHook != nil {
			return d.StepHook("put")
		}
		return nil
	}
	objs := rec.Objects
	if t.layer != nil {
		objs = make([]Object, 0, len(t.layer))
		for _, o := range rec.Objects {
			if t.layer[o.Path] {
				objs = append(objs, o)
			}
		}
	}
	return each(ctx, d.Workers, len(objs)+len(t.tombs), func(gctx context.Context, i int) error {
		if err := lk.ensure(gctx); err != nil {
			return err
		}
		if i >= len(objs) {
			return d.putTombstone(gctx, rec.ID, t.tombs[i-len(objs)])
		}
		o := objs[i]
		var from string
		switch {
		case o.Class == manifest.Immutable:
			from = o.Path
			if err := ready.wait(gctx, from); err != nil {
				return err
			}
		case changed[o.Path]:
			return put(gctx, o)
		default:
			from = liveFrom(o)
			if confirm {
				sum, _, err := store.Checksum(gctx, d.Store, from)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("check %s: %w", from, err)
				}
				if err != nil || sum != o.SHA256 {
					if src == nil {
						return fmt.Errorf("the stored content of %s (%s) is missing or corrupted; publish with --repair to upload it again: %w", o.Path, o.SHA256[:12], store.ErrNotFound)
					}
					d.Log.Warn("stored content is missing or corrupted in the target; uploading it again from the build", "site", d.Site, "key", from, "path", o.Path)
					d.repairedBlobs.Add(1)
					return put(gctx, o)
				}
			}
		}
		if err := d.Store.Copy(gctx, from, TreeKey(rec.ID, o.Path), store.PutOptions{Meta: objectMeta(o)}); err != nil {
			return fmt.Errorf("write %s into tree %s: %w", o.Path, rec.ID, err)
		}
		if d.StepHook != nil {
			return d.StepHook("copy")
		}
		return nil
	})
}

// blobSource is where a record whose content is in blobs stores o's bytes: a
// fingerprinted asset at its own path, anything else in the blob of its hash.
func blobSource(o Object) string {
	if o.Class == manifest.Immutable {
		return o.Path
	}
	return blobKey(o.SHA256)
}

// contentOf returns where rec's objects' bytes are stored (Record.Content): for a
// deploy whose content is in its tree, where the tree resolves each path (reading the
// base's record of a layer, from cache where it can); otherwise (rec == nil too) its
// blobs. Fingerprinted assets are at their own path either way.
func (d *Deployer) contentOf(ctx context.Context, rec *Record, cache *chunkCache) (func(Object) string, error) {
	if rec == nil || rec.Content != ContentTree {
		return blobSource, nil
	}
	lay, err := d.layout(ctx, rec, cache)
	if err != nil {
		return nil, err
	}
	return func(o Object) string {
		if o.Class == manifest.Immutable {
			return o.Path
		}
		return lay.key(o.Path)
	}, nil
}

// putTombstone writes the tombstone of path p into deploy id's layer.
func (d *Deployer) putTombstone(ctx context.Context, id, p string) error {
	_, err := store.PutBytes(ctx, d.Store, TreeKey(id, p), nil, store.PutOptions{Meta: store.Meta{
		ContentType: "text/plain; charset=utf-8", CacheControl: "no-cache",
		Metadata: map[string]string{tombstoneMeta: "1", "surrogate-key": d.Site},
	}})
	if err != nil {
		return fmt.Errorf("write the tombstone of %s into tree %s: %w", p, id, err)
	}
	return nil
}

// writeMarker writes the marker of rec's complete tree.
func (d *Deployer) writeMarker(ctx context.Context, lk *lock, rec *Record) error {
	if lk != nil {
		if err := lk.ensure(ctx); err != nil {
			return err
		}
	}
	meta := map[string]string{"deploy": rec.ID, "base": baseOf(rec)}
	body := fmt.Sprintf("{\"deploy\":%q,\"base\":%q,\"layer\":%d}\n", rec.ID, baseOf(rec), rec.Layer)
	if _, err := store.PutBytes(ctx, d.Store, layersKey(rec.ID), []byte(body), store.PutOptions{Meta: store.Meta{ContentType: "application/json", CacheControl: "public, max-age=31536000, immutable", Metadata: meta}}); err != nil {
		return fmt.Errorf("write %s: %w", layersKey(rec.ID), err)
	}
	return nil
}

// treeComplete reports whether deploy rec's tree (and its base's) can be served: their
// markers are there (a tree made before markers existed is probed by its first path).
func (d *Deployer) treeComplete(ctx context.Context, rec *Record) error {
	for _, id := range []string{rec.ID, rec.Base} {
		if id == "" {
			continue
		}
		if _, err := d.Store.Head(ctx, layersKey(id)); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if id == rec.ID && rec.Base == "" && len(rec.Objects) > 0 {
			if _, err := d.Store.Head(ctx, TreeKey(rec.ID, rec.Objects[0].Path)); err == nil {
				continue
			}
		}
		return fmt.Errorf("the tree of deploy %s is incomplete or was garbage-collected: %w", id, store.ErrNotFound)
	}
	return nil
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
	if err := lk.fenced(ctx, func(ctx context.Context) error { return d.writeLive(ctx, rec.ID, baseOf(rec)) }); err != nil {
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

// purgeAgain purges the changed URLs of a switch a second time, after RepurgeDelay: a
// visitor's request that read the old pointer (atomic) or the old bytes of a live path
// (in place) just before the purge can still be fetching the old page when the URL is
// purged, and would cache it under the URL after the purge. The second purge removes what such requests stored. It
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

// writeLive writes _stump/live naming deploy id and the full tree base its tree reads
// through (id itself for a full tree), for the edge.
func (d *Deployer) writeLive(ctx context.Context, id, base string) error {
	_, err := store.PutBytes(ctx, d.Store, liveKey, []byte(id+"\n"), store.PutOptions{Meta: store.Meta{
		ContentType:  "text/plain; charset=utf-8",
		CacheControl: "public, max-age=5, s-maxage=5",
		Metadata:     map[string]string{"deploy": id, "base": base, "surrogate-key": PointerKey(d.Site) + " " + d.Site},
	}})
	if err != nil {
		return fmt.Errorf("write %s: %w", liveKey, err)
	}
	return nil
}

// ReadLive returns the deploy id _stump/live names ("" when absent).
func ReadLive(ctx context.Context, s store.Store) (string, error) {
	id, _, err := readLiveTree(ctx, s)
	return id, err
}

// readLiveTree returns the deploy _stump/live names and the full tree its tree reads
// through (the deploy itself for a full tree, or when _stump/live predates layers).
func readLiveTree(ctx context.Context, s store.Store) (id, base string, err error) {
	b, info, err := store.GetBytes(ctx, s, liveKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	id = info.Meta.Metadata["deploy"]
	if id == "" {
		id = strings.TrimSpace(string(b))
	}
	base = info.Meta.Metadata["base"]
	if base == "" {
		base = id
	}
	return id, base, nil
}

// rollbackTree makes target live in atomic mode: its tree (and its base) are already
// there, so this is a pointer write (after checking their markers).
func (d *Deployer) rollbackTree(ctx context.Context, lk *lock, ptr Pointer, tag string, live, target *Record) error {
	if err := d.treeComplete(ctx, target); err != nil {
		return err
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
			rec, err := readRecord(ctx, d.Store, ptr.Live, false, nil)
			if err != nil {
				return err
			}
			if err := lk.fenced(ctx, func(ctx context.Context) error { return d.writeLive(ctx, ptr.Live, baseOf(rec)) }); err != nil {
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
