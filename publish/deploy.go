package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// Source gives the bytes of a built file by its path in the manifest.
type Source interface {
	Open(path string) (io.ReadSeekCloser, int64, error)
}

// DirSource reads a built site's folder through os.Root, so nothing outside it is read.
type DirSource struct{ root *os.Root }

// OpenDir opens a built site folder as a Source.
func OpenDir(dir string) (*DirSource, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open built site: %w", err)
	}
	return &DirSource{root: r}, nil
}

// Open opens a file of the built tree.
func (d *DirSource) Open(p string) (io.ReadSeekCloser, int64, error) {
	f, err := d.root.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Close releases the folder.
func (d *DirSource) Close() error { return d.root.Close() }

// MemSource serves a build held in memory (build.Result.Tree): a publish that reads
// from it cannot be disturbed by another process writing the build output folder.
type MemSource map[string][]byte

// Open returns a reader over the file's bytes.
func (m MemSource) Open(p string) (io.ReadSeekCloser, int64, error) {
	b, ok := m[p]
	if !ok {
		return nil, 0, fmt.Errorf("%s is not in the build: %w", p, os.ErrNotExist)
	}
	return nopCloser{bytes.NewReader(b)}, int64(len(b)), nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Progress is told about upload bytes (a progress bar on a terminal, lines in CI).
type Progress interface {
	Start(label string, total int64)
	Add(n int64)
	Done()
}

type noProgress struct{}

func (noProgress) Start(string, int64) {}
func (noProgress) Add(int64)           {}
func (noProgress) Done()               {}

// Purger is handed the diff of a committed deploy (package purge implements it) and the
// purge work earlier deploys left pending, which it retries. It returns the work still
// pending. A failed purge does not fail the deploy: it is kept in the pointer.
type Purger interface {
	Purge(ctx context.Context, site string, from, to []Object, pending []byte) ([]byte, error)
}

// PathPurger is an optional extension of Purger: it purges the URLs of given paths.
// Publish purges deleted paths once more after deleting them (an edge may have cached
// them again between the purge and the delete); repair purges the paths it rewrote.
type PathPurger interface {
	PurgePaths(ctx context.Context, site string, paths []string) ([]byte, error)
}

// Deployer publishes one site to one store.
type Deployer struct {
	Store store.Store
	Site  string
	// Workers bounds parallel requests (default DefaultWorkers).
	Workers      int
	Log          *slog.Logger
	Progress     Progress
	Purger       Purger
	Lock         LockOptions
	purgePending bool
	// repairedBlobs counts stored blobs and assets found missing or corrupted and
	// uploaded again by the last operation.
	repairedBlobs atomic.Int64
	// Mode is ModeInPlace (default: the live tree is the target's root) or ModeAtomic
	// (every deploy is a tree under _stump/trees/<id>/ and the edge follows
	// _stump/live; see atomic.go).
	Mode string
	// FullPreviewTrees makes previews write full trees: for an edge that reads a live
	// deploy's layer through _stump/live but not a preview's (the generated Fastly
	// VCL, which has no restart to spare for a preview's marker).
	FullPreviewTrees bool
	// NeedEdgeStamp: the edge reads layers only once the target's edge stamp says so
	// (edge.go). Without it, deploys write full trees and rollback refuses a layer.
	NeedEdgeStamp bool
	edgeLayers    *bool
	// Pins are paths every layer holds when its deploy has them, even unchanged from
	// the base: the edge's 404 page, which the Fastly VCL fetches from the live
	// deploy's own tree (its restarts are spent by then).
	Pins []string
	// Order lists path globs made live right after static files, before other pages.
	Order []string
	// RepurgeDelay is how long after a switch's purge (atomic or in place) the changed
	// URLs are purged a second time (see purgeAgain); 0 means one second, < 0 never.
	RepurgeDelay time.Duration
	Now          func() time.Time
	// tree and liveTree are the layouts of the atomic deploy being made and of the
	// live one (planTree), set by Publish before it writes the record.
	tree, liveTree *treeLayout
	// chunks memoizes the record chunks of the last objects chunked (recordChunksOf).
	chunks struct {
		of  []Object
		n   int
		out []chunk
	}
	// StepHook, when set, is called after each protocol step by name ("lock",
	// "upload", "record", "mark", "materialize", "commit", "purge", "clean") and after
	// each upload of new content ("put": a blob in place, an object put into the
	// deploy's tree in atomic mode) and each copy to the live tree or into the
	// deploy's tree ("copy"). Its error
	// stops the deploy there. Fault-injection tests use it to fail or kill a deploy
	// at a chosen point.
	StepHook func(name string) error
}

// Options control one publish.
type Options struct {
	DryRun bool
	// MaxDeletes bounds deletes; 0 means a quarter of the live site; Force lifts it.
	MaxDeletes int
	Force      bool
	Message    string
	Revision   string
	// Preview uploads and materializes the deploy under _stump/trees/<id>/ without
	// making it live (an edge serves it at <id>.<preview host>).
	Preview bool
	// Repair verifies the live tree after the deploy and rewrites (and purges) every
	// live object that differs from the live deploy (see Repair).
	Repair bool
}

// Result says what a publish did.
type Result struct {
	Site     string  `json:"site"`
	Deploy   string  `json:"deploy,omitempty"`
	Previous string  `json:"previous,omitempty"`
	Plan     *Plan   `json:"plan"`
	DryRun   bool    `json:"dryRun,omitempty"`
	Noop     bool    `json:"noop,omitempty"`
	Repaired string  `json:"repaired,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Preview is set for a deploy made with Options.Preview (not live).
	Preview bool `json:"preview,omitempty"`
	// Warning is something a dry run found that a real publish would refuse.
	Warning string `json:"warning,omitempty"`
	// PurgePending is set when the deploy went live but its purge did not finish.
	PurgePending bool `json:"purgePending,omitempty"`
	// RepairedBlobs counts stored blobs and assets found missing or corrupted and
	// uploaded again from the build.
	RepairedBlobs int `json:"repairedBlobs,omitempty"`
	// RepairedPaths are live paths --repair rewrote because they differed from the
	// live deploy.
	RepairedPaths []string `json:"repairedPaths,omitempty"`
	// RecordChunks and RecordBytes are what writing the deploy record sent: the
	// chunks of objects it did not share with the live record, and their bytes with
	// the record's own.
	RecordChunks int   `json:"recordChunks,omitempty"`
	RecordBytes  int64 `json:"recordBytes,omitempty"`
	// Uploaded and UploadedBytes are what the deploy sent from the build: new blobs
	// (in place), or the objects put straight into its tree (atomic mode, previews),
	// and new fingerprinted assets.
	Uploaded      int   `json:"uploaded,omitempty"`
	UploadedBytes int64 `json:"uploadedBytes,omitempty"`
	// Base and Layer (atomic mode): the full tree the deploy's tree overlays ("" for
	// a full tree) and the objects written into the deploy's tree.
	Base  string `json:"base,omitempty"`
	Layer int    `json:"layer,omitempty"`
}

// DefaultWorkers is a Deployer's request concurrency unless Workers says otherwise:
// against versitygw on two cores, 32 was no faster (bench/publish.sh's WORKERS curve).
const DefaultWorkers = 16

func (d *Deployer) init() {
	if d.Workers <= 0 {
		d.Workers = DefaultWorkers
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Progress == nil {
		d.Progress = noProgress{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Lock.Now == nil {
		d.Lock.Now = d.Now
	}
	d.edgeLayers = nil // the edge stamp is read again by each operation
}

func (d *Deployer) stepDone(name string) error {
	d.Log.Debug("deploy step", "site", d.Site, "step", name)
	if d.StepHook != nil {
		return d.StepHook(name)
	}
	return nil
}

// live reads the pointer and the live record (nil before the first deploy).
func (d *Deployer) live(ctx context.Context) (Pointer, string, *Record, error) {
	return d.liveFor(ctx, nil, nil)
}

// liveFor is live for a publish of objects: the live record's chunks that are the same
// as objects' (adapted to the store, split as the live record is) are taken from
// objects, not read, and cached in cache with every chunk read. A no-op publish reads
// the pointer and the record's header, nothing else.
func (d *Deployer) liveFor(ctx context.Context, objects []Object, cache *chunkCache) (Pointer, string, *Record, error) {
	ptr, etag, err := ReadPointer(ctx, d.Store)
	if err != nil {
		return Pointer{}, "", nil, err
	}
	if ptr.Live == "" {
		return ptr, etag, nil, nil
	}
	hdr, err := readRecord(ctx, d.Store, ptr.Live, false, nil)
	if err != nil {
		return Pointer{}, "", nil, err
	}
	if hdr.Format < 2 {
		rec, err := ReadRecord(ctx, d.Store, ptr.Live)
		return ptr, etag, rec, err
	}
	if objects != nil {
		chunks, err := d.recordChunksOf(forStore(objects, ptr.RedirectMeta), hdr.Buckets)
		if err != nil {
			return Pointer{}, "", nil, err
		}
		cache.add(chunks)
	}
	rec, err := loadObjects(ctx, d.Store, hdr, cache)
	if err != nil {
		return Pointer{}, "", nil, err
	}
	return ptr, etag, rec, nil
}

// recordChunksOf is recordChunks, memoized for the last objects chunked.
func (d *Deployer) recordChunksOf(objects []Object, prev int) ([]chunk, error) {
	n := bucketsFor(len(objects), prev)
	c := &d.chunks
	if c.out != nil && c.n == n && len(c.of) == len(objects) && (len(objects) == 0 || &c.of[0] == &objects[0]) {
		return c.out, nil
	}
	out, err := chunkObjects(objects, n)
	if err != nil {
		return nil, err
	}
	c.of, c.n, c.out = objects, n, out
	return out, nil
}

// unknownPaths are the paths an interrupted deploy may have changed: where its objects
// and the live ones differ.
func (d *Deployer) unknownPaths(ctx context.Context, ptr Pointer, live *Record) (map[string]bool, *Record, error) {
	if ptr.State != StateMaterializing || ptr.Pending == "" {
		return nil, nil, nil
	}
	pend, err := ReadRecord(ctx, d.Store, ptr.Pending)
	if err != nil {
		return nil, nil, fmt.Errorf("an interrupted deploy %s left the site half-written and its record cannot be read: %w", ptr.Pending, err)
	}
	var liveObjs []Object
	if live != nil {
		liveObjs = live.Objects
	}
	diff := Diff(liveObjs, pend.Objects, nil)
	unknown := map[string]bool{}
	for _, o := range diff.Writes {
		unknown[o.Path] = true
	}
	for _, p := range diff.Deletes {
		unknown[p] = true
	}
	return unknown, pend, nil
}

// Publish deploys objects (read from src) and makes them live. See the package doc for
// the protocol. An interrupted earlier deploy is rolled forward to this one.
func (d *Deployer) Publish(ctx context.Context, objects []Object, src Source, opts Options) (*Result, error) {
	d.init()
	start := d.Now()
	res := &Result{Site: d.Site, DryRun: opts.DryRun}
	d.tree, d.liveTree = nil, nil
	cache := &chunkCache{}
	ptr, firstTag, live, err := d.liveFor(ctx, objects, cache)
	if err != nil {
		return nil, err
	}
	objects = forStore(objects, ptr.RedirectMeta)
	unknown, _, err := d.unknownPaths(ctx, ptr, live)
	if err != nil {
		return nil, err
	}
	plan := d.plan(live, objects, unknown, ptr, rootPlan(d, opts))
	res.Plan = plan
	if err := d.checkDeletes(plan, live, opts); err != nil {
		if opts.DryRun {
			res.Warning = err.Error()
			return res, nil
		}
		return res, err
	}
	if opts.DryRun {
		return res, nil
	}
	if d.noop(ptr, plan, opts) {
		res.Noop = true
		res.Deploy = ptr.Live
		if ptr.Live != "" {
			// A deploy killed between its commit and its purge (and, in atomic mode,
			// before _stump/live) is finished here.
			if err := d.settle(ctx, ptr); err != nil {
				return res, err
			}
			res.PurgePending = d.purgePending
		}
		if d.Lock.Break {
			// Asked to break a stale lease: do it even though nothing changed, so the
			// next publish is not stopped by it.
			if l, err := ReadLock(ctx, d.Store); err == nil && l != nil {
				lk, err := acquire(ctx, d.Store, d.Lock, "publish", "")
				if err != nil {
					return res, err
				}
				if err := lk.release(context.WithoutCancel(ctx)); err != nil {
					return res, err
				}
			}
		}
		if opts.Repair {
			if err := d.repairAfter(ctx, res, src); err != nil {
				return res, err
			}
		}
		res.Seconds = d.Now().Sub(start).Seconds()
		return res, nil
	}
	id := newID(d.Now())
	lk, err := acquire(ctx, d.Store, d.Lock, "publish", id)
	if err != nil {
		return res, err
	}
	defer func() {
		if rerr := lk.release(context.WithoutCancel(ctx)); rerr != nil {
			d.Log.Warn("could not release the lock", "err", rerr)
		}
	}()
	if err := d.stepDone("lock"); err != nil {
		return res, err
	}
	// Someone may have committed between our read and the lock (or fenced the pointer
	// when we broke a stale lease): read the pointer again and, only if it changed,
	// plan again from what we now hold the lock for.
	ptrTag := firstTag
	if again, tag, err := ReadPointer(ctx, d.Store); err != nil {
		return res, err
	} else if tag != firstTag {
		if ptr, ptrTag, live, err = d.liveFor(ctx, objects, cache); err != nil {
			return res, err
		}
		objects = forStore(objects, ptr.RedirectMeta)
		if unknown, _, err = d.unknownPaths(ctx, ptr, live); err != nil {
			return res, err
		}
		plan = d.plan(live, objects, unknown, ptr, rootPlan(d, opts))
		res.Plan = plan
		if err := d.checkDeletes(plan, live, opts); err != nil {
			return res, err
		}
		if d.noop(ptr, plan, opts) {
			res.Noop = true
			res.Deploy = ptr.Live
			return res, nil
		}
	} else {
		ptr = again
	}
	if ptr.State == StateMaterializing {
		res.Repaired = ptr.Pending
		d.Log.Info("rolling an interrupted deploy forward", "site", d.Site, "interrupted", ptr.Pending)
	}
	if ptr.RedirectMeta == "" && hasRedirects(objects) {
		// Learn once per target whether its store keeps website redirects.
		if ptr.RedirectMeta, err = d.probeRedirects(ctx, lk); err != nil {
			return res, err
		}
		if ptr.RedirectMeta == RedirectDropped {
			res.Warning = "this target's store drops website redirect metadata (x-amz-website-redirect-location); aliases and redirects are served by their redirect pages instead"
			d.Log.Warn(res.Warning, "site", d.Site)
			objects = forStore(objects, ptr.RedirectMeta)
			plan = d.plan(live, objects, unknown, ptr, rootPlan(d, opts))
			res.Plan = plan
		}
	}
	treeMode := opts.Preview || d.mode() == ModeAtomic
	// In place, content is uploaded before the record. In atomic mode the record
	// comes first, then the deploy's tree is written (changed paths put from the
	// build, no blob): nothing of it is live until the switch, and a deploy killed
	// half-way is a record whose tree has no marker.
	uploadedFiles, uploadedBytes := plan.NewBlobs+plan.AssetCount, plan.BlobBytes+plan.AssetBytes
	if !treeMode {
		n, b, err := d.upload(ctx, lk, plan, src, nil, nil)
		if err != nil {
			return res, err
		}
		uploadedFiles, uploadedBytes = n, b
		res.RepairedBlobs = int(d.repairedBlobs.Load())
		if err := d.stepDone("upload"); err != nil {
			return res, err
		}
	}
	user, host := whoami()
	now := d.Now()
	rec := &Record{
		ID: id, Site: d.Site, Time: now.UTC(), User: user, Host: host, Revision: opts.Revision, Message: opts.Message,
		Parent: ptr.Live, Files: len(objects), UploadedFiles: uploadedFiles, UploadedBytes: uploadedBytes, Objects: objects,
		Preview: opts.Preview, Mode: d.mode(),
	}
	for _, o := range objects {
		rec.Bytes += o.Size
	}
	if treeMode {
		// Where the tree goes (a layer over the live deploy's base, or a full tree)
		// is part of the record, and so is where its content is: in the tree alone.
		if d.tree, d.liveTree, err = d.planTree(ctx, rec, live, cache); err != nil {
			return res, err
		}
		rec.Content = ContentTree
		w := treeWrites(plan, d.tree)
		rec.UploadedFiles, rec.UploadedBytes = len(w)+plan.AssetCount, plan.AssetBytes
		for _, o := range w {
			rec.UploadedBytes += o.Size
		}
	}
	var liveChunks []string
	prevBuckets := 0
	if live != nil {
		liveChunks, prevBuckets = live.Chunks, live.Buckets
	}
	chunks, err := d.recordChunksOf(objects, prevBuckets)
	if err != nil {
		return res, err
	}
	if res.RecordChunks, res.RecordBytes, err = writeRecord(ctx, d.Store, rec, chunks, liveChunks, d.Workers, false); err != nil {
		// Ids are random: an existing record of this id is our own write whose answer
		// was lost.
		var got Record
		if _, ok, rerr := readJSON(ctx, d.Store, recordKey(rec.ID), &got); !errors.Is(err, store.ErrPrecondition) || rerr != nil || !ok || got.ID != rec.ID || !got.Time.Equal(rec.Time) {
			return res, err
		}
	}
	if err := d.stepDone("record"); err != nil {
		return res, err
	}
	res.Deploy, res.Previous = rec.ID, ptr.Live
	res.Uploaded, res.UploadedBytes = rec.UploadedFiles, rec.UploadedBytes
	if treeMode {
		res.Preview = opts.Preview
		err := d.publishTree(ctx, lk, ptr, ptrTag, rec, live, plan, opts.Preview, cache, src)
		res.RepairedBlobs = int(d.repairedBlobs.Load())
		if err != nil {
			return res, err
		}
		res.Base, res.Layer = rec.Base, rec.Layer
		if opts.Preview {
			res.Previous = ""
		}
	} else if err := d.switchTo(ctx, lk, ptr, ptrTag, rec, plan, live); err != nil {
		return res, err
	}
	res.PurgePending = d.purgePending
	if opts.Repair && !opts.Preview {
		if err := lk.release(context.WithoutCancel(ctx)); err != nil {
			d.Log.Warn("could not release the lock", "err", err)
		}
		if err := d.repairAfter(ctx, res, src); err != nil {
			return res, err
		}
	}
	res.Seconds = d.Now().Sub(start).Seconds()
	return res, nil
}

// repairAfter is publish --repair: verify the live deploy and rewrite what differs,
// using the build for any blob that must be uploaded again.
func (d *Deployer) repairAfter(ctx context.Context, res *Result, src Source) error {
	rep, err := d.Repair(ctx, src)
	if err != nil {
		return fmt.Errorf("published, but the repair failed: %w", err)
	}
	res.RepairedPaths = rep.Paths
	res.RepairedBlobs += rep.Blobs
	if rep.PurgePending {
		res.PurgePending = true
	}
	return nil
}

// noop reports a publish with nothing to do: the plan is empty and the live deploy is
// settled in the mode this deployer writes (a preview always makes a deploy).
func (d *Deployer) noop(ptr Pointer, plan *Plan, opts Options) bool {
	return !opts.Preview && ptr.Mode == d.mode() && plan.Empty() && ptr.State == StateLive
}

// rootPlan reports whether a publish with opts writes the live tree at the target's
// root (in place, not a preview).
func rootPlan(d *Deployer, opts Options) bool { return !opts.Preview && d.mode() == ModeInPlace }

// plan is Diff plus the deletes a committed deploy left pending. root says that the
// plan is for the live tree at the target's root: when the live deploy is atomic (a
// switch back to in place), the root does not hold the live deploy, so every path is
// written (and every live path the new deploy lacks is deleted) as for an interrupted
// deploy. Content the live deploy holds only in its tree (Record.Content) is planned
// as new blobs, so a publish in place uploads it instead of looking for a blob.
func (d *Deployer) plan(live *Record, objects []Object, unknown map[string]bool, ptr Pointer, root bool) *Plan {
	var liveObjs []Object
	liveBlobs := true
	if live != nil {
		liveObjs = live.Objects
		liveBlobs = live.Content != ContentTree
	}
	copied := false
	add := func(p string) {
		if !copied {
			// The caller's map is left as it was: it plans again with it.
			m := make(map[string]bool, len(unknown))
			for k := range unknown {
				m[k] = true
			}
			unknown, copied = m, true
		}
		unknown[p] = true
	}
	for _, p := range ptr.PendingDeletes {
		add(p)
	}
	if root && ptr.Mode == ModeAtomic {
		for _, o := range liveObjs {
			add(o.Path)
		}
		for _, o := range objects {
			add(o.Path)
		}
	}
	p := diff(liveObjs, liveBlobs, objects, unknown)
	p.Tree = !root
	return p
}

// checkDeletes refuses a plan that deletes more than allowed.
func (d *Deployer) checkDeletes(plan *Plan, live *Record, opts Options) error {
	if opts.Force || live == nil {
		return nil
	}
	limit := opts.MaxDeletes
	if limit <= 0 {
		limit = max(1, len(live.Objects)/4)
	}
	if len(plan.Deletes) > limit {
		return fmt.Errorf("this deploy would delete %d of the %d live files, more than the limit of %d; check the build, then raise --max-deletes or use --force", len(plan.Deletes), len(live.Objects), limit)
	}
	return nil
}

// upload makes every blob and fingerprinted asset the plan's writes need present and
// confirmed, in parallel: new content is put create-only with its SHA-256, so the store
// verifies every byte; content the store already holds (an older deploy's blob, an
// asset) is confirmed by its checksum as the store has it now (store.Checksum), and a
// blob that is missing or whose bytes no longer match its name is uploaded again from
// the build. With src == nil (rollback) nothing can be uploaded: a missing or corrupted
// blob fails the deploy before anything live changes.
//
// from says where the content of a write is stored (nil: its blob); a rollback in
// place to a deploy whose content is in its tree confirms the tree's objects.
func (d *Deployer) upload(ctx context.Context, lk *lock, plan *Plan, src Source, ready *readySet, from func(Object) string) (int, int64, error) {
	type job struct {
		key, from, sum string
		size           int64
		meta           store.Meta
		isNew          bool // content the live deploy does not reference
	}
	if from == nil {
		from = blobSource
	}
	var jobs []job
	var total int64
	seen := map[string]bool{}
	for _, o := range plan.Writes {
		key := from(o)
		if seen[key] {
			continue
		}
		seen[key] = true
		_, isNew := plan.Blobs[o.SHA256]
		jobs = append(jobs, job{key: key, from: o.Path, sum: o.SHA256, size: o.Size, meta: blobMeta(o), isNew: isNew})
		if isNew {
			total += o.Size
		}
	}
	for _, a := range plan.Assets {
		jobs = append(jobs, job{key: a.Path, from: a.Path, sum: a.SHA256, size: a.Size, meta: objectMeta(a), isNew: true})
		total += a.Size
	}
	if len(jobs) == 0 {
		return 0, 0, nil
	}
	if src != nil && ready == nil {
		// (With ready, atomic mode, publishTree reports the progress of the whole tree.)
		d.Progress.Start("uploading", total)
		defer d.Progress.Done()
	}
	var files, bytes atomic.Int64
	put := func(ctx context.Context, j job, overwrite bool) error {
		f, size, err := src.Open(j.from)
		if err != nil {
			return fmt.Errorf("read built file %s: %w", j.from, err)
		}
		defer f.Close()
		// Blobs and assets are made durable by the record and pointer writes after
		// them (conditional writes): no flush of their own.
		opts := store.PutOptions{Meta: j.meta, SHA256: j.sum, IfNoneMatch: !overwrite, Deferred: true}
		if _, err := d.Store.Put(ctx, j.key, f, size, opts); err != nil {
			return err
		}
		files.Add(1)
		bytes.Add(size)
		return nil
	}
	err := each(ctx, d.Workers, len(jobs), func(gctx context.Context, i int) (err error) {
		j := jobs[i]
		defer func() {
			if err == nil {
				ready.done(j.key)
			}
		}()
		if lk != nil {
			if err := lk.ensure(gctx); err != nil {
				return err
			}
		}
		if j.isNew && src != nil {
			// Keys are content-addressed, so a key that exists already should
			// hold these bytes: a create-only write costs one request, and only
			// when it finds the key taken is the content confirmed.
			err := put(gctx, j, false)
			if err == nil {
				if d.StepHook != nil {
					if err := d.StepHook("put"); err != nil {
						return err
					}
				}
				d.Progress.Add(j.size)
				return nil
			}
			if !errors.Is(err, store.ErrPrecondition) {
				return fmt.Errorf("upload %s: %w", j.from, err)
			}
			defer d.Progress.Add(j.size)
		}
		sum, _, err := store.Checksum(gctx, d.Store, j.key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("check %s: %w", j.key, err)
		}
		if err == nil && sum == j.sum {
			return nil
		}
		what := "is missing from the target (was it garbage-collected?)"
		if err == nil {
			what = "is corrupted in the target (its bytes hash to " + sum[:min(12, len(sum))] + ")"
		}
		if src == nil {
			return fmt.Errorf("the content of %s (%s) %s; nothing was changed: rebuild and publish that content instead (stump publish --repair): %w", j.from, j.sum[:12], what, store.ErrNotFound)
		}
		d.Log.Warn("stored content "+what+"; uploading it again from the build", "site", d.Site, "key", j.key, "path", j.from)
		if err := put(gctx, j, true); err != nil {
			return fmt.Errorf("upload %s again: %w", j.from, err)
		}
		d.repairedBlobs.Add(1)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return int(files.Load()), bytes.Load(), nil
}

// readySet lets the copy of a new fingerprinted asset into an atomic deploy's tree
// wait for the asset's upload to its own key: one channel per asset the plan uploads
// or confirms, closed when it is. A nil *readySet waits for nothing.
type readySet struct{ m map[string]chan struct{} }

func newReadySet(plan *Plan) *readySet {
	r := &readySet{m: map[string]chan struct{}{}}
	for _, a := range plan.Assets {
		r.m[a.Path] = make(chan struct{})
	}
	return r
}

func (r *readySet) done(key string) {
	if r == nil {
		return
	}
	if ch, ok := r.m[key]; ok {
		close(ch)
	}
}

// wait returns once key is uploaded (at once for a key the plan does not upload), or
// with ctx's error.
func (r *readySet) wait(ctx context.Context, key string) error {
	if r == nil {
		return nil
	}
	ch, ok := r.m[key]
	if !ok {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// blobMeta is the Meta a blob is stored with: that of the first path that needs its
// content, less any redirect (a blob redirects nowhere). The live copy of that path
// then has the blob's Meta, which lets a file target make the copy a hard link with
// nothing beside it (see store/file); S3 replaces the Meta when it copies.
func blobMeta(o Object) store.Meta {
	m := objectMeta(o)
	m.RedirectLocation = ""
	return m
}

// objectMeta is the stored metadata of a live object.
func objectMeta(o Object) store.Meta {
	m := store.Meta{ContentType: o.ContentType, CacheControl: o.CacheControl, Metadata: map[string]string{}}
	for k, v := range o.Metadata {
		m.Metadata[k] = v
	}
	if o.Redirect != "" {
		m.RedirectLocation = o.Redirect
	}
	return m
}

// switchTo marks the pointer materializing, writes the live tree, commits the pointer,
// purges, then deletes. It is shared by Publish and Rollback. Every write is fenced by
// the lease (lk.ensure) and every pointer write is a compare-and-swap.
func (d *Deployer) switchTo(ctx context.Context, lk *lock, ptr Pointer, ptrTag string, rec *Record, plan *Plan, live *Record) error {
	if err := lk.ensure(ctx); err != nil {
		return d.lostBefore(err, "mark", rec.ID, 0, len(plan.Writes))
	}
	mark := ptr
	mark.State, mark.Pending, mark.Since = StateMaterializing, rec.ID, d.Now().UTC()
	tag, err := d.putPointer(ctx, mark, ptrTag)
	if err != nil {
		return err
	}
	if err := d.stepDone("mark"); err != nil {
		return err
	}
	from, err := d.contentOf(ctx, rec, nil)
	var done []Object
	if err == nil {
		done, err = d.materialize(ctx, lk, plan, from)
	}
	if err == nil {
		err = d.stepDone("materialize")
	}
	if err == nil {
		err = lk.ensure(ctx)
	}
	commit := Pointer{Live: rec.ID, Previous: ptr.Live, State: StateLive, Mode: ModeInPlace, Since: d.Now().UTC(), PendingDeletes: plan.Deletes, PendingPurge: ptr.PendingPurge, RedirectMeta: ptr.RedirectMeta}
	if d.Purger != nil {
		commit.PurgeOwed = owed(ptr)
	}
	if err == nil {
		tag, err = d.putPointer(ctx, commit, tag)
	}
	if err != nil {
		if errors.Is(err, ErrLeaseLost) || errors.Is(err, errPointerMoved) {
			// Another process holds the site now and repairs what this one wrote
			// (the pointer told it which deploy was interrupted): writing anything
			// more, even an undo, could overwrite its work.
			return d.lostBefore(err, "commit", rec.ID, len(done), len(plan.Writes))
		}
		// Giving up before the commit: put back what this deploy changed, so the live
		// site is as it was. If that fails too, the pointer still says
		// "materializing" and the next publish or rollback repairs the site.
		if uerr := d.undo(ctx, lk, done, live, ptr, tag); uerr != nil {
			d.Log.Warn("could not undo a failed deploy; the next publish or rollback repairs it", "site", d.Site, "err", uerr)
			return fmt.Errorf("%w (undoing it failed too: %v; stump publish or stump rollback repairs the site)", err, uerr)
		}
		return fmt.Errorf("%w (the changes were undone: the live site is as it was)", err)
	}
	if err := d.stepDone("commit"); err != nil {
		return err
	}
	if d.Purger != nil {
		from := d.purgeFrom(ctx, ptr, live)
		pending, err := d.Purger.Purge(ctx, d.Site, from, rec.Objects, ptr.PendingPurge)
		if err != nil {
			d.Log.Warn("purge failed; recorded as pending", "site", d.Site, "err", err)
		}
		commit.PendingPurge = pending
		commit.PurgeOwed = ""
		if len(pending) > 0 {
			// Record it now: a kill before the clean step must not lose it.
			if tag, err = d.putPointer(ctx, commit, tag); err != nil {
				return err
			}
		}
		// A visitor's request that read a live path just before it was rewritten can
		// store the old page after that purge (found by TestKillStorm in place, on a
		// rollback): purge the changed URLs once more, as an atomic switch does.
		if more := d.purgeAgain(ctx, from, rec.Objects); len(more) > 0 {
			commit.PendingPurge = d.mergePending(commit.PendingPurge, more)
			if tag, err = d.putPointer(ctx, commit, tag); err != nil {
				return err
			}
		}
	}
	if err := d.stepDone("purge"); err != nil {
		return err
	}
	if len(plan.Deletes) > 0 {
		if err := d.deleteBatched(ctx, lk, plan.Deletes); err != nil {
			return err
		}
		if pp, ok := d.Purger.(PathPurger); ok {
			more, err := pp.PurgePaths(ctx, d.Site, plan.Deletes)
			if err != nil {
				d.Log.Warn("purging deleted paths failed; recorded as pending", "site", d.Site, "err", err)
				commit.PendingPurge = d.mergePending(commit.PendingPurge, more)
			}
		}
	}
	commit.PendingDeletes = nil
	if d.Purger != nil {
		// Whether publish is "published, purge pending" (exit code 3).
		d.purgePending = len(commit.PendingPurge) > 0
	}
	if _, err := d.putPointer(ctx, commit, tag); err != nil {
		return err
	}
	return d.stepDone("clean")
}

// errPointerMoved is wrapped when a compare-and-swap of the pointer fails: someone
// else wrote it (a process that broke this one's lease fences it).
var errPointerMoved = errors.New("the pointer changed under this operation")

// lostBefore explains an operation that stopped because it no longer holds the site:
// what it had written to the live tree and what it had not.
func (d *Deployer) lostBefore(err error, step, id string, written, total int) error {
	msg := fmt.Sprintf("stopped before %s: deploy %s did not go live", step, id)
	if written > 0 {
		msg += fmt.Sprintf("; %d of its %d changed paths had been written to the live tree before this publish lost the site, and the process that holds the site now rewrites them (the pointer names this deploy as interrupted); check with stump status and stump verify", written, total)
	} else {
		msg += "; nothing of it was written to the live tree"
	}
	return fmt.Errorf("%w; %s", err, msg)
}

func (d *Deployer) putPointer(ctx context.Context, p Pointer, etag string) (string, error) {
	opts := store.PutOptions{IfMatch: etag}
	if etag == "" {
		opts = store.PutOptions{IfNoneMatch: true}
	}
	tag, err := writeJSON(ctx, d.Store, pointerKey, p, opts)
	if errors.Is(err, store.ErrPrecondition) {
		// Only the lock holder writes the pointer: if it now says exactly what we
		// wrote, our write went through and only its answer was lost.
		var now Pointer
		if nowTag, ok, rerr := readJSON(ctx, d.Store, pointerKey, &now); rerr == nil && ok && samePointer(now, p) {
			return nowTag, nil
		}
	}
	if errors.Is(err, store.ErrPrecondition) {
		return "", fmt.Errorf("%w (another process took the site over, or wrote it without the lock); nothing more was made live: %w", errPointerMoved, err)
	}
	return tag, err
}

// purgeFrom is what the edge may still hold: the live deploy's objects and, when a
// killed publish owed a purge, those of the deploy before it too (never purged, while
// the edge has been caching the live one's since its commit). A path whose object
// differs between the two is given a content hash no deploy has, so that it counts as
// changed whatever the switch goes to (found by TestKillStorm: a rollback to the
// deploy before the killed one purged nothing, and the killed one's pages stayed).
func (d *Deployer) purgeFrom(ctx context.Context, ptr Pointer, live *Record) []Object {
	if ptr.PurgeOwed != "" && (live == nil || ptr.PurgeOwed != live.ID) {
		if r, err := ReadRecord(ctx, d.Store, ptr.PurgeOwed); err == nil {
			if live == nil {
				return r.Objects
			}
			return eitherOf(r.Objects, live.Objects)
		}
	}
	if live != nil {
		return live.Objects
	}
	return nil
}

// eitherOf is the objects of a and b by path; where both have a path with different
// objects, the result's object there has the SHA-256 "either", which no content has.
func eitherOf(a, b []Object) []Object {
	byPath := make(map[string]int, len(a))
	out := make([]Object, 0, len(a)+len(b))
	for _, o := range a {
		byPath[o.Path] = len(out)
		out = append(out, o)
	}
	for _, o := range b {
		i, ok := byPath[o.Path]
		switch {
		case !ok:
			out = append(out, o)
		case !same(out[i], o):
			out[i].SHA256 = "either"
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// mergePending joins two pending-purge documents through the purger, which knows their
// shape; a purger that cannot merge keeps both by preferring the older (a superset
// after Purge merged it).
func (d *Deployer) mergePending(older, newer []byte) []byte {
	if len(newer) == 0 {
		return older
	}
	if len(older) == 0 {
		return newer
	}
	if m, ok := d.Purger.(interface {
		MergePending(older, newer []byte) ([]byte, error)
	}); ok {
		if merged, err := m.MergePending(older, newer); err == nil {
			return merged
		}
	}
	return older
}

func samePointer(a, b Pointer) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// undo restores the live deploy over the paths a failed deploy wrote (done) and puts
// the pointer back to "live". It runs even when ctx is cancelled (with a bound), since
// it repairs what the cancelled work changed.
func (d *Deployer) undo(ctx context.Context, lk *lock, done []Object, live *Record, ptr Pointer, tag string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	old := map[string]Object{}
	if live != nil {
		for _, o := range live.Objects {
			old[o.Path] = o
		}
	}
	var remove []string
	from, err := d.contentOf(ctx, live, nil)
	if err != nil {
		return err
	}
	// Pages first, static files last: the reverse of materialize.
	for i := len(done) - 1; i >= 0; i-- {
		o := done[i]
		prev, ok := old[o.Path]
		if !ok {
			remove = append(remove, o.Path)
			continue
		}
		if err := lk.fenced(ctx, func(ctx context.Context) error {
			return d.Store.Copy(ctx, from(prev), prev.Path, store.PutOptions{Meta: objectMeta(prev)})
		}); err != nil {
			return fmt.Errorf("restore %s: %w", o.Path, err)
		}
	}
	if len(remove) > 0 {
		if err := d.deleteBatched(ctx, lk, remove); err != nil {
			return err
		}
	}
	// The pointer as it was before this deploy marked it (still marked if an earlier
	// interrupted deploy had marked it).
	back := ptr
	if back.State != StateMaterializing {
		back.State, back.Pending = StateLive, ""
	}
	if _, err := d.putPointer(ctx, back, tag); err != nil {
		return fmt.Errorf("put the pointer back: %w", err)
	}
	return nil
}

// materialize copies each changed path from its blob with its headers: static files,
// then feeds, then pages, then redirects, each group finished before the next starts.
// It returns the objects it wrote, in order, even when it fails.
//
// from says where each write's content is stored (nil: its blob).
func (d *Deployer) materialize(ctx context.Context, lk *lock, plan *Plan, from func(Object) string) ([]Object, error) {
	if from == nil {
		from = blobSource
	}
	var mu sync.Mutex
	var done []Object
	groups := [][]Object{}
	last := -1
	writes := append([]Object(nil), plan.Writes...)
	rank := func(o Object) int {
		r := writeRank(o) * 2
		for _, g := range d.Order {
			if r > 0 && Match(g, o.Path) {
				return 1
			}
		}
		return r
	}
	sort.SliceStable(writes, func(i, j int) bool { return rank(writes[i]) < rank(writes[j]) })
	for _, o := range writes {
		r := rank(o)
		if r != last {
			groups = append(groups, nil)
			last = r
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], o)
	}
	for _, grp := range groups {
		err := each(ctx, d.Workers, len(grp), func(gctx context.Context, i int) error {
			o := grp[i]
			err := lk.fenced(gctx, func(ctx context.Context) error {
				return d.Store.Copy(ctx, from(o), o.Path, store.PutOptions{Meta: objectMeta(o)})
			})
			if errors.Is(err, ErrLeaseLost) {
				return err
			}
			if err != nil {
				return fmt.Errorf("make %s live: %w", o.Path, err)
			}
			mu.Lock()
			done = append(done, o)
			mu.Unlock()
			if d.StepHook != nil {
				return d.StepHook("copy")
			}
			return nil
		})
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (d *Deployer) deleteBatched(ctx context.Context, lk *lock, paths []string) error {
	for i := 0; i < len(paths); i += 1000 {
		if err := lk.fenced(ctx, func(ctx context.Context) error {
			return d.Store.Delete(ctx, paths[i:min(i+1000, len(paths))]...)
		}); err != nil {
			return fmt.Errorf("delete removed paths: %w", err)
		}
	}
	return nil
}
