package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/stump-dev/stump/publish/store"
)

// Diagnosis is what Doctor found on a target, and what it fixed.
type Diagnosis struct {
	Site   string `json:"site"`
	Target string `json:"target"`
	// Pointer is the pointer as read (nil when missing or unreadable).
	Pointer *Pointer `json:"pointer,omitempty"`
	// Records are the deploy records, newest first, with their state.
	Records []RecordState `json:"records"`
	Lock    *Lease        `json:"lock,omitempty"`
	// Findings are plain sentences: what is wrong (or "ok" lines).
	Findings []string `json:"findings"`
	// Fixes are what --fix did (or, without --fix, would do).
	Fixes []string `json:"fixes,omitempty"`
	// Healthy is true when nothing needs fixing.
	Healthy bool `json:"healthy"`
}

// RecordState is one deploy record as the doctor sees it.
type RecordState struct {
	ID      string `json:"id"`
	Time    string `json:"time,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Preview bool   `json:"preview,omitempty"`
	// Problem is "" for a readable record whose content is all in the store.
	Problem string `json:"problem,omitempty"`
	rec     *Record
}

// doctorKey is where Doctor keeps a copy of metadata it replaces: it never deletes.
func doctorKey(name string) string { return path.Join(internalPrefix, "doctor", name) }

// Doctor explains the state of a target: the pointer, the deploy records, the lock,
// and the blobs and trees the records need. With fix it rebuilds what can be rebuilt,
// holding the lock: a missing or unreadable record of the live deploy from the live
// tree and current (the objects of the current build; nil when there is no build);
// a missing or unreadable pointer from the newest complete record; an unreadable
// lock is moved aside. It never deletes anything: what it replaces is copied to
// _stump/doctor/ first.
func (d *Deployer) Doctor(ctx context.Context, fix bool, current []Object) (*Diagnosis, error) {
	d.init()
	dg := &Diagnosis{Site: d.Site, Target: d.Store.String()}
	say := func(format string, args ...any) { dg.Findings = append(dg.Findings, fmt.Sprintf(format, args...)) }
	do := func(format string, args ...any) { dg.Fixes = append(dg.Fixes, fmt.Sprintf(format, args...)) }
	stamp := strings.ToLower(d.Now().UTC().Format("20060102T150405Z"))

	// The lock first: an unreadable lock blocks every command.
	lockRaw, _, lerr := store.GetBytes(ctx, d.Store, lockKey)
	lockBad := false
	switch {
	case errors.Is(lerr, store.ErrNotFound):
	case lerr != nil:
		return nil, fmt.Errorf("read %s: %w", lockKey, lerr)
	default:
		var l Lease
		if err := json.Unmarshal(lockRaw, &l); err != nil || l.Token == "" {
			lockBad = true
			say("the lock %s is unreadable (%d bytes that are not a lease): every command that takes the lock fails", lockKey, len(lockRaw))
		} else {
			dg.Lock = &l
			say("the lock is held by %s since %s (lease until %s)", l.who(), l.Acquired.UTC().Format("2006-01-02 15:04:05Z"), l.Expires.UTC().Format("2006-01-02 15:04:05Z"))
		}
	}
	if lockBad {
		if fix {
			if _, err := store.PutBytes(ctx, d.Store, doctorKey("lock-"+stamp), lockRaw, store.PutOptions{}); err != nil {
				return nil, err
			}
			if err := d.Store.Delete(ctx, lockKey); err != nil {
				return nil, err
			}
		}
		do("moved the unreadable lock aside to %s", doctorKey("lock-"+stamp))
	}
	var lk *lock
	if fix {
		var err error
		if lk, err = acquire(ctx, d.Store, d.Lock, "doctor", ""); err != nil {
			return nil, err
		}
		defer lk.release(context.WithoutCancel(ctx))
	}

	// Records, newest first.
	var ids []string
	err := d.Store.List(ctx, path.Join(internalPrefix, "deploys")+"/", func(i store.Info) error {
		if strings.HasSuffix(i.Key, ".json") {
			ids = append(ids, strings.TrimSuffix(path.Base(i.Key), ".json"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids))) // ids sort by time
	byID := map[string]*RecordState{}
	for _, id := range ids {
		rs := RecordState{ID: id}
		rec, err := ReadRecord(ctx, d.Store, id)
		if err != nil {
			rs.Problem = "unreadable: " + err.Error()
		} else {
			rs.rec, rs.Time, rs.Mode, rs.Preview = rec, rec.Time.UTC().Format("2006-01-02 15:04:05Z"), rec.Mode, rec.Preview
			if missing := d.missingContent(ctx, rec); missing != "" {
				rs.Problem = missing
			}
		}
		dg.Records = append(dg.Records, rs)
	}
	// Newest first by the time in the record (ids of one second differ only by their
	// random part); unreadable records last.
	sort.SliceStable(dg.Records, func(i, j int) bool {
		a, b := dg.Records[i].rec, dg.Records[j].rec
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case !a.Time.Equal(b.Time):
			return a.Time.After(b.Time)
		}
		return a.ID > b.ID
	})
	for i := range dg.Records {
		byID[dg.Records[i].ID] = &dg.Records[i]
	}
	for _, rs := range dg.Records {
		if rs.Problem != "" {
			say("deploy %s: %s", rs.ID, rs.Problem)
		}
	}

	// The pointer.
	ptrRaw, _, perr := store.GetBytes(ctx, d.Store, pointerKey)
	var ptr Pointer
	ptrOK := false
	switch {
	case errors.Is(perr, store.ErrNotFound):
		if len(ids) == 0 {
			say("nothing was ever deployed here")
		} else {
			say("the pointer %s is missing, but %d deploy records exist: no command knows which deploy is live", pointerKey, len(ids))
		}
	case perr != nil:
		return nil, fmt.Errorf("read %s: %w", pointerKey, perr)
	default:
		if err := json.Unmarshal(ptrRaw, &ptr); err != nil {
			say("the pointer %s is unreadable (not JSON: %v): no command knows which deploy is live", pointerKey, err)
		} else {
			ptrOK = true
			dg.Pointer = &ptr
			say("the pointer names deploy %q as live (state %s, mode %s)", ptr.Live, ptr.State, orDefault(ptr.Mode, ModeInPlace))
		}
	}
	if ptrOK && ptr.Live != "" {
		rs, ok := byID[ptr.Live]
		switch {
		case !ok || rs.rec == nil:
			why := "has no record"
			if ok {
				why = "has an unreadable record"
			}
			say("the live deploy %s %s: publish, rollback, status, verify and gc cannot work from it", ptr.Live, why)
			if current == nil {
				say("a record can be rebuilt from the live tree and the current build: run stump doctor --fix where the site builds")
			} else {
				rec, n, err := d.rebuildRecord(ctx, lk, fix, ptr, current)
				if err != nil {
					return nil, err
				}
				if fix {
					if ok {
						if raw, _, err := store.GetBytes(ctx, d.Store, recordKey(ptr.Live)); err == nil {
							if _, err := store.PutBytes(ctx, d.Store, doctorKey("deploy-"+ptr.Live+"-"+stamp+".json"), raw, store.PutOptions{}); err != nil {
								return nil, err
							}
						}
					}
					if err := lk.ensure(ctx); err != nil {
						return nil, err
					}
					chunks, err := recordChunks(rec.Objects, 0)
					if err != nil {
						return nil, err
					}
					if _, _, err := writeRecord(ctx, d.Store, rec, chunks, nil, d.Workers, true); err != nil {
						return nil, err
					}
				}
				do("rebuilt the record of deploy %s from the live tree and the current build (%d files; %d differ from the build and were taken from the live tree)", ptr.Live, len(rec.Objects), n)
			}
		case rs.Problem != "":
			say("the live deploy %s: %s; stump publish --repair uploads it again from the build", ptr.Live, rs.Problem)
		default:
			say("the live deploy %s has its record and its content", ptr.Live)
		}
		if ptr.State == StateMaterializing {
			say("deploy %s was interrupted while going live: stump publish finishes it, stump rollback undoes it", ptr.Pending)
		}
	}
	if !ptrOK && len(ids) > 0 {
		// A layer goes live only where the edge reads layers (edge.go).
		layersOK, err := d.edgeReadsLayers(ctx)
		if err != nil {
			return nil, err
		}
		var best *RecordState
		for i := range dg.Records {
			rs := &dg.Records[i]
			if rs.rec != nil && rs.Problem == "" && !rs.Preview && (layersOK || rs.rec.Base == "") {
				best = rs
				break
			}
		}
		if best == nil {
			say("no deploy record is complete: publish the site again (stump publish --repair)")
		} else {
			np := Pointer{Live: best.ID, State: StateLive, Mode: orDefault(best.Mode, ModeInPlace), Since: d.Now().UTC()}
			if fix {
				if len(ptrRaw) > 0 {
					if _, err := store.PutBytes(ctx, d.Store, doctorKey("current-"+stamp+".json"), ptrRaw, store.PutOptions{}); err != nil {
						return nil, err
					}
				}
				if err := lk.ensure(ctx); err != nil {
					return nil, err
				}
				if _, err := writeJSON(ctx, d.Store, pointerKey, np, store.PutOptions{}); err != nil {
					return nil, err
				}
				if np.Mode == ModeAtomic {
					if err := d.writeLive(ctx, np.Live, baseOf(best.rec)); err != nil {
						return nil, err
					}
				}
			}
			do("pointed the site at %s, the newest complete deploy (%s); stump verify then shows whether the live tree matches it, and stump verify --repair rewrites what differs", best.ID, best.Time)
		}
	}
	dg.Healthy = len(dg.Fixes) == 0
	for _, rs := range dg.Records {
		if rs.Problem != "" && ptrOK && rs.ID == ptr.Live {
			dg.Healthy = false
		}
	}
	return dg, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// missingContent checks that the store holds every blob and asset of rec (one HEAD
// each; a deploy whose content is in its tree has assets only) and, for an atomic
// deploy or a preview, its tree (the markers of its tree and its base's); it returns
// "" or what is missing.
func (d *Deployer) missingContent(ctx context.Context, rec *Record) string {
	missing := 0
	seen := map[string]bool{}
	for _, o := range rec.Objects {
		key := blobKey(o.SHA256)
		if o.Class == "immutable" {
			key = o.Path
		} else if rec.Content == ContentTree {
			continue // in its tree, checked below
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if _, err := d.Store.Head(ctx, key); err != nil {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Sprintf("%d of its contents are missing from the store (garbage-collected or deleted)", missing)
	}
	if (rec.Mode == ModeAtomic || rec.Content == ContentTree) && len(rec.Objects) > 0 {
		if err := d.treeComplete(ctx, rec); err != nil {
			return "its tree under " + TreeKey(rec.ID, "") + " (or its base's) is missing"
		}
	}
	return ""
}

// rebuildRecord makes a record for the live deploy from the live tree (its bytes and
// headers) and current (the build's objects, for classes and surrogate keys): each
// path of the build whose live bytes match is taken as built; one whose live bytes
// differ is taken as it is live (and its blob is made from the live object, when fix).
// It returns the record and how many paths differed from the build.
func (d *Deployer) rebuildRecord(ctx context.Context, lk *lock, fix bool, ptr Pointer, current []Object) (*Record, int, error) {
	user, host := whoami()
	rec := &Record{ID: ptr.Live, Site: d.Site, Time: d.Now().UTC(), User: user, Host: host, Parent: ptr.Previous,
		Message: "record rebuilt by stump doctor from the live tree and the current build", Mode: orDefault(ptr.Mode, ModeInPlace)}
	differ := 0
	base := ptr.Live
	if rec.Mode == ModeAtomic {
		// The tree's marker (or _stump/live) says which full tree it overlays.
		if info, err := d.Store.Head(ctx, layersKey(ptr.Live)); err == nil && info.Meta.Metadata["base"] != "" {
			base = info.Meta.Metadata["base"]
		} else if id, b, err := readLiveTree(ctx, d.Store); err == nil && id == ptr.Live {
			base = b
		}
		if base != ptr.Live {
			rec.Base = base
		}
	}
	for _, o := range forStore(current, ptr.RedirectMeta) {
		key := o.Path
		if rec.Mode == ModeAtomic && o.Class != "immutable" {
			key = TreeKey(ptr.Live, o.Path)
		}
		rc, info, err := d.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) && key != o.Path && base != ptr.Live {
			key = TreeKey(base, o.Path)
			rc, info, err = d.Store.Get(ctx, key)
		}
		if errors.Is(err, store.ErrNotFound) {
			continue // not live: not part of the live deploy
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", key, err)
		}
		if IsTombstone(info.Meta) {
			rc.Close()
			continue // removed by the live deploy
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", key, err)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if sum != o.SHA256 {
			differ++
			o.SHA256, o.Size = sum, n
			o.ContentType, o.CacheControl, o.Redirect = info.Meta.ContentType, info.Meta.CacheControl, info.Meta.RedirectLocation
		}
		if fix && o.Class != "immutable" {
			if _, err := d.Store.Head(ctx, blobKey(o.SHA256)); errors.Is(err, store.ErrNotFound) {
				if err := lk.ensure(ctx); err != nil {
					return nil, 0, err
				}
				if err := d.Store.Copy(ctx, key, blobKey(o.SHA256), store.PutOptions{Meta: store.Meta{ContentType: "application/octet-stream"}}); err != nil {
					return nil, 0, fmt.Errorf("keep the live content of %s as a blob: %w", o.Path, err)
				}
			}
		}
		rec.Objects = append(rec.Objects, o)
		rec.Bytes += o.Size
	}
	rec.Files = len(rec.Objects)
	return rec, differ, nil
}
