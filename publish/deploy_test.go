package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
)

// site is a built site in memory: path → content.
type site map[string]string

type memSource map[string]string

type rsc struct{ *bytes.Reader }

func (rsc) Close() error { return nil }

func (m memSource) Open(p string) (io.ReadSeekCloser, int64, error) {
	s, ok := m[p]
	if !ok {
		return nil, 0, fmt.Errorf("no %s in the build", p)
	}
	return rsc{bytes.NewReader([]byte(s))}, int64(len(s)), nil
}

func (s site) objects(t testing.TB) ([]Object, Source) {
	t.Helper()
	m := &manifest.Manifest{Version: manifest.Version, Site: "t"}
	for p, c := range s {
		sum := sha256.Sum256([]byte(c))
		class := manifest.Page
		switch {
		case strings.HasPrefix(p, "assets/"):
			class = manifest.Immutable
		case strings.HasSuffix(p, ".png"):
			class = manifest.Static
		}
		e := manifest.Entry{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(c)), ContentType: "text/html", Class: class}
		if strings.HasPrefix(c, "redirect:") {
			e.Redirect = strings.TrimPrefix(c, "redirect:")
		}
		m.Files = append(m.Files, e)
	}
	m.Sort()
	objs, err := Objects(m, DefaultCache, nil)
	if err != nil {
		t.Fatal(err)
	}
	return objs, memSource(s)
}

// v1, v2 are two versions of a site: v2 changes one page and the CSS (a new
// fingerprinted asset the changed page names), removes a page and adds one.
var (
	v1 = site{
		"index.html":       `<a href="/about/">about</a><link href="/assets/s.1.css">`,
		"about/index.html": `<link href="/assets/s.1.css">about v1`,
		"gone/index.html":  `<link href="/assets/s.1.css">gone`,
		"same/index.html":  `<link href="/assets/s.1.css">same`,
		"img/a.png":        "png",
		"assets/s.1.css":   "body{color:red}",
		"old/index.html":   "redirect:/about/",
	}
	v2 = site{
		"index.html":       `<a href="/about/">about</a><link href="/assets/s.2.css">`,
		"about/index.html": `<link href="/assets/s.2.css">about v2`,
		"same/index.html":  `<link href="/assets/s.1.css">same`,
		"new/index.html":   `<link href="/assets/s.2.css"><img src="/img/a.png">new`,
		"img/a.png":        "png",
		"assets/s.2.css":   "body{color:blue}",
		"old/index.html":   "redirect:/about/",
	}
)

func newDeployer(s store.Store) *Deployer {
	return &Deployer{Store: s, Site: "t", Workers: 4, Lock: LockOptions{TTL: time.Minute}}
}

func publishSite(t *testing.T, d *Deployer, s site, opts Options) (*Result, error) {
	t.Helper()
	objs, src := s.objects(t)
	return d.Publish(context.Background(), objs, src, opts)
}

// liveTree reads every live object (outside _stump/).
func liveTree(t *testing.T, s store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := context.Background()
	err := s.List(ctx, "", func(i store.Info) error {
		if strings.HasPrefix(i.Key, "_stump/") {
			return nil
		}
		b, _, err := store.GetBytes(ctx, s, i.Key)
		if err != nil {
			return err
		}
		out[i.Key] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantLive checks that the live tree serves exactly s (plus fingerprinted assets of
// earlier deploys, which stay until gc).
func wantLive(t *testing.T, st store.Store, s site) {
	t.Helper()
	got := liveTree(t, st)
	for p, c := range s {
		if got[p] != c {
			t.Errorf("live %s = %q, want %q", p, got[p], c)
		}
	}
	for p := range got {
		if _, ok := s[p]; !ok && !strings.HasPrefix(p, "assets/") {
			t.Errorf("live tree has %s, which this deploy does not", p)
		}
	}
}

var refRE = regexp.MustCompile(`(?:href|src)="(/[^"]*)"`)

// brokenRefs crawls the live tree: every root-relative reference of every page must
// resolve to a live object. This is the invariant "no live page names a missing asset".
func brokenRefs(t *testing.T, s store.Store) []string {
	t.Helper()
	tree := liveTree(t, s)
	var bad []string
	for p, c := range tree {
		for _, m := range refRE.FindAllStringSubmatch(c, -1) {
			ref := strings.TrimPrefix(m[1], "/")
			if ref == "" || strings.HasSuffix(ref, "/") {
				ref += "index.html"
			}
			if _, ok := tree[ref]; !ok {
				bad = append(bad, p+" → "+m[1])
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func TestPublishFirstNoopAndUpdate(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	res, err := publishSite(t, d, v1, Options{Message: "first"})
	if err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v1)
	if res.Plan.NewBlobs != 6 || res.Plan.AssetCount != 1 {
		t.Errorf("first plan: %+v", res.Plan)
	}
	ptr, _, _ := ReadPointer(context.Background(), m)
	if ptr.Live != res.Deploy || ptr.State != StateLive {
		t.Errorf("pointer %+v", ptr)
	}
	if info, err := m.Head(context.Background(), "old/index.html"); err != nil || info.Meta.RedirectLocation != "/about/" {
		t.Errorf("alias redirect not stored: %+v %v", info.Meta, err)
	}
	if info, _ := m.Head(context.Background(), "assets/s.1.css"); info.Meta.CacheControl != Immutable {
		t.Errorf("asset cache-control %q", info.Meta.CacheControl)
	}
	if _, err := m.Head(context.Background(), "_stump/lock"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lock not released: %v", err)
	}

	// Nothing changed: read the pointer and the live record, nothing else.
	cnt.Reset()
	res, err = publishSite(t, d, v1, Options{})
	if err != nil || !res.Noop {
		t.Fatalf("no-op publish: %+v %v", res, err)
	}
	if c := cnt.Counts(); c["Get"] != 2 || c["Put"] != 0 || c["Head"] != 0 || c["Copy"] != 0 || c["List"] != 0 {
		t.Errorf("no-op publish made requests %v, want 2 gets", c)
	}

	cnt.Reset()
	res, err = publishSite(t, d, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v2)
	if bad := brokenRefs(t, m); len(bad) > 0 {
		t.Errorf("broken refs: %v", bad)
	}
	// Changed: index, about, new (3 blobs), one new asset; gone deleted.
	c := cnt.Counts()
	if res.Plan.NewBlobs != 3 || res.Plan.AssetCount != 1 || res.Plan.DeleteCount != 1 || c["Copy"] != 3 {
		t.Errorf("update plan %+v requests %v", res.Plan, c)
	}
	if _, err := m.Head(context.Background(), "assets/s.1.css"); err != nil {
		t.Errorf("an earlier deploy's asset was deleted by publish (only gc may): %v", err)
	}
	recs, err := ListRecords(context.Background(), m, false)
	if err != nil || len(recs) != 2 || recs[0].ID != res.Deploy || recs[1].Message != "first" {
		t.Errorf("records %v %v", recs, err)
	}
}

// TestWriteOrder checks the invariant of the package doc on the store's own log of
// writes: blobs and assets, record, pointer (materializing), static, pages, redirects,
// pointer (live), deletes, pointer (clean).
func TestWriteOrder(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	m.SetHook(func(op, key string) error {
		if op == mem.OpPut || op == mem.OpCopy || op == mem.OpDelete {
			mu.Lock()
			log = append(log, op+" "+key)
			mu.Unlock()
		}
		return nil
	})
	if _, err := publishSite(t, d, v2, Options{}); err != nil {
		t.Fatal(err)
	}
	phase := func(e string) int {
		switch {
		case e == "Put _stump/lock" || e == "Delete _stump/lock":
			return -1
		case strings.HasPrefix(e, "Put _stump/objects/") || strings.HasPrefix(e, "Put assets/"):
			return 0
		case strings.HasPrefix(e, "Put _stump/deploys/") || strings.HasPrefix(e, "Put _stump/chunks/"):
			return 1
		case e == "Put _stump/current.json":
			return -2 // checked below
		case strings.HasPrefix(e, "Copy") && strings.HasSuffix(e, ".png"):
			return 3
		case strings.HasPrefix(e, "Copy old/"):
			return 5
		case strings.HasPrefix(e, "Copy"):
			return 4
		case strings.HasPrefix(e, "Delete"):
			return 7
		}
		t.Fatalf("unexpected write %s", e)
		return 0
	}
	last, pointers := 0, 0
	for _, e := range log {
		p := phase(e)
		if p == -1 {
			continue
		}
		if p == -2 {
			pointers++
			switch pointers {
			case 1:
				p = 2 // materializing
			case 2:
				p = 6 // committed
			default:
				p = 8 // cleaned
			}
		}
		if p < last {
			t.Fatalf("write order broken at %q (phase %d after %d):\n%s", e, p, last, strings.Join(log, "\n"))
		}
		last = p
	}
	if pointers != 3 {
		t.Errorf("pointer written %d times, want 3", pointers)
	}
}

var errKilled = errors.New("killed")

// TestInterruptedAtEveryStep fails a deploy at each step (and half-way through the
// copies) and checks: the live tree never has a broken reference; a failure before the
// commit is undone when the store lets it, else status reports the interruption; the
// next publish finishes the job, or a rollback undoes it. (Real kills, where no undo
// runs, are tested with the CLI in publish/e2e.)
func TestInterruptedAtEveryStep(t *testing.T) {
	steps := []string{"lock", "upload", "record", "mark", "copy:2", "materialize", "commit", "purge"}
	for _, step := range steps {
		for _, recover := range []string{"publish", "rollback"} {
			t.Run(step+"/"+recover, func(t *testing.T) {
				m := mem.New()
				d := newDeployer(m)
				if _, err := publishSite(t, d, v1, Options{}); err != nil {
					t.Fatal(err)
				}
				copies := 0
				if n, ok := strings.CutPrefix(step, "copy:"); ok {
					limit := int(n[0] - '0')
					m.SetHook(func(op, key string) error {
						if op == mem.OpCopy {
							copies++
							if copies > limit {
								return errKilled
							}
						}
						return nil
					})
				} else {
					d.StepHook = func(name string) error {
						if name == step {
							return errKilled
						}
						return nil
					}
				}
				_, err := publishSite(t, d, v2, Options{})
				if !errors.Is(err, errKilled) {
					t.Fatalf("publish did not stop at %s: %v", step, err)
				}
				d.StepHook = nil
				m.SetHook(nil)
				if bad := brokenRefs(t, m); len(bad) > 0 {
					t.Fatalf("after a stop at %s, live pages name missing files: %v", step, bad)
				}
				st, err := d.ReadStatus(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				// A failure after materializing undoes the deploy (the store works
				// again); a failure in the copies cannot (the store still fails them), and
				// a stop right after marking leaves the pointer marked.
				midway := step == "mark" || step == "copy:2"
				if midway != (st.Interrupted != "") {
					t.Errorf("status after a stop at %s: interrupted=%q", step, st.Interrupted)
				}
				switch recover {
				case "publish":
					if _, err := publishSite(t, d, v2, Options{}); err != nil {
						t.Fatal(err)
					}
					wantLive(t, m, v2)
				case "rollback":
					res, err := d.Rollback(context.Background(), "")
					committed := step == "commit" || step == "purge"
					if !committed && !midway {
						// v2 never went live, so there is nothing to undo, and v1 has no
						// earlier deploy to go back to.
						if err == nil || !strings.Contains(err.Error(), "has no earlier deploy") {
							t.Fatalf("rollback after a stop at %s: %+v %v", step, res, err)
						}
					} else if err != nil {
						t.Fatal(err)
					}
					wantLive(t, m, v1)
				}
				if bad := brokenRefs(t, m); len(bad) > 0 {
					t.Errorf("broken refs after recovery: %v", bad)
				}
				probs, err := d.Verify(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range probs {
					if !p.Warning {
						t.Errorf("verify after recovery: %+v", p)
					}
				}
			})
		}
	}
}

func TestConcurrentPublishesOneCommits(t *testing.T) {
	m := mem.New()
	if _, err := publishSite(t, newDeployer(m), v1, Options{}); err != nil {
		t.Fatal(err)
	}
	// Slow the store down so the two publishes overlap.
	m.SetHook(func(op, key string) error {
		if op == mem.OpCopy {
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []site{v2, {"index.html": "third"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = publishSite(t, newDeployer(m), s, Options{Force: true})
		}()
	}
	wg.Wait()
	ok, locked := 0, 0
	for _, err := range errs {
		var le *LockedError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &le):
			locked++
			if !strings.Contains(err.Error(), "locked by ") || !strings.Contains(err.Error(), " since ") {
				t.Errorf("lock message %q", err)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || locked != 1 {
		t.Fatalf("ok=%d locked=%d: %v", ok, locked, errs)
	}
}

func TestWaitForLock(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	lk, err := acquire(context.Background(), m, LockOptions{TTL: time.Minute}, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		lk.release(context.Background())
	}()
	d.Lock.Wait = true
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatalf("--wait did not get the lock: %v", err)
	}
}

func TestStaleLockBreaksOnlyWhenAsked(t *testing.T) {
	m := mem.New()
	past := time.Now().Add(-time.Hour)
	// A lease taken an hour ago with a one-minute TTL, by a process that died.
	if _, err := writeJSON(context.Background(), m, lockKey, Lease{Holder: "ghost", Host: "h", PID: 1, Token: "x", Acquired: past, Expires: past.Add(time.Minute)}, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	d := newDeployer(m)
	_, err := publishSite(t, d, v1, Options{})
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || !strings.Contains(err.Error(), "--break-lock") {
		t.Fatalf("stale lock: %v", err)
	}
	d.Lock.Break = true
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatalf("break-lock: %v", err)
	}
	// A fresh lease is never broken.
	if _, err := writeJSON(context.Background(), m, lockKey, Lease{Holder: "alive", Token: "y", Acquired: time.Now(), Expires: time.Now().Add(time.Hour)}, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := publishSite(t, d, v2, Options{}); !errors.As(err, &le) || le.Stale {
		t.Fatalf("a live lease was broken: %v", err)
	}
}

func TestRollbackToAndGC(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	d := newDeployer(cnt)
	r1, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishSite(t, d, v2, Options{}); err != nil {
		t.Fatal(err)
	}
	cnt.Reset()
	res, err := d.Rollback(context.Background(), r1.Deploy)
	if err != nil {
		t.Fatal(err)
	}
	wantLive(t, m, v1)
	if c := cnt.Counts(); c["Put"] != 4 { // lock and the pointer three times; no blob, no asset
		t.Errorf("rollback uploaded content: %v", c)
	}
	if res.Deploy != r1.Deploy {
		t.Errorf("rollback result %+v", res)
	}
	// v3 reuses nothing of v2; keep 1 deploy: v2's blobs and asset go, v1's stay (live).
	v3 := site{"index.html": "v3 <link href=\"/assets/s.3.css\">", "assets/s.3.css": "x"}
	if _, err := publishSite(t, d, v3, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	gc, err := d.GC(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if gc.DeletedDeploys != 1 || gc.KeptDeploys != 2 {
		t.Errorf("gc %+v", gc)
	}
	if _, err := m.Head(context.Background(), "assets/s.2.css"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("v2's asset survived gc: %v", err)
	}
	if _, err := m.Head(context.Background(), "assets/s.1.css"); err != nil {
		t.Errorf("v1 (previous, kept) lost its asset: %v", err)
	}
	// The previous deploy is kept, so rolling back still works with no upload.
	if _, err := d.Rollback(context.Background(), ""); err != nil {
		t.Fatalf("rollback after gc: %v", err)
	}
	wantLive(t, m, v1)
	if probs, err := d.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Errorf("verify: %v %v", probs, err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store.PutBytes(ctx, m, "about/index.html", []byte("defaced"), store.PutOptions{})
	store.PutBytes(ctx, m, "same/index.html", []byte(v1["same/index.html"]), store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}})
	m.Delete(ctx, "img/a.png")
	store.PutBytes(ctx, m, "stray.html", []byte("x"), store.PutOptions{})
	probs, err := d.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range probs {
		got[p.Path] = true
	}
	for _, want := range []string{"about/index.html", "same/index.html", "img/a.png", "stray.html"} {
		if !got[want] {
			t.Errorf("verify missed %s: %+v", want, probs)
		}
	}
}

func TestDeleteLimit(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	tiny := site{"index.html": "only"}
	before := liveTree(t, m)
	_, err := publishSite(t, d, tiny, Options{})
	if err == nil || !strings.Contains(err.Error(), "would delete 5 of the 7 live files") {
		t.Fatalf("delete limit: %v", err)
	}
	if after := liveTree(t, m); len(after) != len(before) {
		t.Error("a refused publish changed the live tree")
	}
	if _, err := publishSite(t, d, tiny, Options{MaxDeletes: 5}); err != nil {
		t.Fatalf("--max-deletes 5: %v", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	m := mem.New()
	cnt := store.Count(m)
	res, err := publishSite(t, newDeployer(cnt), v1, Options{DryRun: true})
	if err != nil || !res.DryRun || res.Plan.WriteCount != 6 {
		t.Fatalf("%+v %v", res, err)
	}
	if c := cnt.Counts(); c["Put"]+c["Copy"]+c["Delete"] != 0 {
		t.Errorf("dry run wrote: %v", c)
	}
}

func TestFailingStoreLeavesLiveSite(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	before := liveTree(t, m)
	// Every upload fails (as after retries gave up): nothing of v2 goes live.
	m.SetHook(func(op, key string) error {
		if op == mem.OpPut && strings.HasPrefix(key, "_stump/objects/") {
			return errors.New("503 SlowDown")
		}
		return nil
	})
	if _, err := publishSite(t, d, v2, Options{}); err == nil {
		t.Fatal("publish succeeded on a failing store")
	}
	m.SetHook(nil)
	after := liveTree(t, m)
	for p, c := range before {
		if after[p] != c {
			t.Errorf("%s changed after a failed publish", p)
		}
	}
	if _, err := m.Head(context.Background(), "_stump/lock"); !errors.Is(err, store.ErrNotFound) {
		t.Error("the lock was not released after a failure")
	}
}

// TestGiveUpUndoes: when the store keeps failing the page copies, the deploy gives up
// and puts back what it had changed (the new static file), so the live tree is exactly
// as it was and the pointer is not left marked.
func TestGiveUpUndoes(t *testing.T) {
	m := mem.New()
	d := newDeployer(m)
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	w := site{}
	for k, v := range v2 {
		w[k] = v
	}
	w["img/b.png"] = "new png"
	before := liveTree(t, m)
	m.SetHook(func(op, key string) error {
		if op == mem.OpCopy && strings.HasSuffix(key, ".html") {
			return errors.New("500 InternalError")
		}
		return nil
	})
	_, err := publishSite(t, d, w, Options{})
	if err == nil || !strings.Contains(err.Error(), "the live site is as it was") {
		t.Fatalf("publish: %v", err)
	}
	m.SetHook(nil)
	after := liveTree(t, m)
	for p, c := range before {
		if after[p] != c {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !strings.HasPrefix(p, "assets/") {
			t.Errorf("%s was left by the failed deploy", p)
		}
	}
	st, _ := d.ReadStatus(context.Background())
	if st.Interrupted != "" {
		t.Errorf("pointer left marked: %+v", st.Pointer)
	}
}

// recPurger records the purges publish asks for.
type recPurger struct {
	mu    sync.Mutex
	calls [][2]int // len(from), len(to)
	keys  []string
}

func (r *recPurger) Purge(_ context.Context, _ string, from, to []Object, _ []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, [2]int{len(from), len(to)})
	return nil, nil
}

func (r *recPurger) PurgeKeys(_ context.Context, _ string, keys []string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, keys...)
	return nil, nil
}

// TestPurgeOwedAfterKill: a publish stopped right after its commit has not purged; the
// next publish, though it has nothing to upload, runs that purge (and in atomic mode
// rewrites _stump/live).
func TestPurgeOwedAfterKill(t *testing.T) {
	for _, mode := range []string{ModeInPlace, ModeAtomic} {
		t.Run(mode, func(t *testing.T) {
			m := mem.New()
			p := &recPurger{}
			d := newDeployer(m)
			d.Mode, d.Purger = mode, p
			d.RepurgeDelay = -1 // one purge per switch here: this test counts them
			if _, err := publishSite(t, d, v1, Options{}); err != nil {
				t.Fatal(err)
			}
			publishStoppedAfterCommit(t, d, v2)
			before := len(p.calls)
			// In place, the stopped deploy left its deletes pending, so this publish
			// has work; in atomic mode it has none. Either way it purges v1 → v2.
			if _, err := publishSite(t, d, v2, Options{}); err != nil {
				t.Fatalf("second publish: %v", err)
			}
			// It starts from v1 and v2 both (the edge may hold either's pages).
			if len(p.calls) != before+1 || p.calls[len(p.calls)-1][0] < len(v1) {
				t.Errorf("the owed purge (v1 → v2) did not run: %v", p.calls)
			}
			ptr, _, _ := ReadPointer(context.Background(), m)
			if ptr.PurgeOwed != "" {
				t.Errorf("purge still owed: %+v", ptr)
			}
			if mode == ModeAtomic {
				wantTree(t, m, v2)
			}
			// Settled: a third publish purges nothing.
			if _, err := publishSite(t, d, v2, Options{}); err != nil || len(p.calls) != before+1 {
				t.Errorf("a settled site purged again: %v %v", p.calls, err)
			}
		})
	}
}

// TestSwitchPurgesTwice: every switch, in place as in atomic mode, purges the changed
// URLs a second time after RepurgeDelay. A visitor's request that read a live path just
// before it was rewritten can store the old page after the first purge (TestKillStorm
// found it in place, on a rollback).
func TestSwitchPurgesTwice(t *testing.T) {
	for _, mode := range []string{ModeInPlace, ModeAtomic} {
		t.Run(mode, func(t *testing.T) {
			m := mem.New()
			p := &recPurger{}
			d := newDeployer(m)
			d.Mode, d.Purger, d.RepurgeDelay = mode, p, time.Millisecond
			if _, err := publishSite(t, d, v1, Options{}); err != nil {
				t.Fatal(err)
			}
			before := len(p.calls)
			if _, err := publishSite(t, d, v2, Options{}); err != nil {
				t.Fatal(err)
			}
			calls := p.calls[before:]
			if len(calls) != 2 || calls[0] != calls[1] || calls[0][0] != len(v1) {
				t.Fatalf("purges of the v1 → v2 switch: %v, want the same purge twice", calls)
			}
		})
	}
}

// publishStoppedAfterCommit publishes s and stops it right after its commit, before
// its purge (as a kill there would).
func publishStoppedAfterCommit(t *testing.T, d *Deployer, s site) {
	t.Helper()
	d.StepHook = func(name string) error {
		if name == "commit" {
			return errKilled
		}
		return nil
	}
	defer func() { d.StepHook = nil }()
	if _, err := publishSite(t, d, s, Options{}); !errors.Is(err, errKilled) {
		t.Fatalf("stop at commit: %v", err)
	}
}

// fromPurger records the objects each purge starts from.
type fromPurger struct {
	mu    sync.Mutex
	froms [][]Object
}

func (f *fromPurger) Purge(_ context.Context, _ string, from, _ []Object, _ []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.froms = append(f.froms, from)
	return nil, nil
}

// TestRollbackAfterUnpurgedCommitPurgesWhatTheEdgeHolds: a publish killed after its
// commit and before its purge leaves the edge holding pages of the deploy before it
// (never purged) and of itself (cached since the commit). A rollback to the deploy
// before it must purge the pages that differ, though they are the same as the target's
// in the deploy the purge was owed from (found by TestKillStorm in place: it purged
// nothing and the killed deploy's pages stayed).
func TestRollbackAfterUnpurgedCommitPurgesWhatTheEdgeHolds(t *testing.T) {
	m := mem.New()
	p := &fromPurger{}
	d := newDeployer(m)
	d.Purger, d.RepurgeDelay = p, -1
	if _, err := publishSite(t, d, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	publishStoppedAfterCommit(t, d, v2)
	if ptr, _, _ := ReadPointer(context.Background(), m); ptr.PurgeOwed == "" {
		t.Fatalf("no purge owed after a stop at commit: %+v", ptr)
	}
	before := len(p.froms)
	if _, err := d.Rollback(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if len(p.froms) == before {
		t.Fatal("the rollback purged nothing")
	}
	v1Objs, _ := v1.objects(t)
	want := map[string]string{}
	for _, o := range v1Objs {
		want[o.Path] = o.SHA256
	}
	for _, o := range p.froms[len(p.froms)-1] {
		if o.Path == "about/index.html" && o.SHA256 == want[o.Path] {
			t.Fatalf("the rollback's purge starts from v1's about/index.html: the edge's copy of v2's is not purged")
		}
	}
}
