package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
	s3store "github.com/stump-dev/stump/publish/store/s3"
)

// HTTP client timeouts of the stores: short where a test injects timeouts (a "timeout"
// fault holds a request until it runs out), long elsewhere, so that a slow moment of a
// busy machine is not taken for a fault.
const (
	shortTimeout = 500 * time.Millisecond
	longTimeout  = 20 * time.Second
)

// builtSite is a built workspace's objects and files, as the CLI hands them to a
// Deployer.
type builtSite struct {
	objs []publish.Object
	src  *publish.DirSource
}

func loadSite(t testing.TB, ws string) builtSite {
	t.Helper()
	dir := filepath.Join(ws, "public", "k")
	m, err := manifest.Read(filepath.Join(dir, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := publish.Objects(m, publish.DefaultCache, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := publish.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return builtSite{objs: objs, src: src}
}

// assets are the live paths of a site's fingerprinted assets.
func (b builtSite) assets() map[string]bool {
	out := map[string]bool{}
	for _, o := range b.objs {
		if o.Class == manifest.Immutable {
			out[o.Path] = true
		}
	}
	return out
}

// retryCounter is a slog handler that counts store.Retry's retries.
type retryCounter struct{ n *atomic.Int64 }

func (h retryCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h retryCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "store: retrying" {
		h.n.Add(1)
	}
	return nil
}
func (h retryCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h retryCounter) WithGroup(string) slog.Handler      { return h }

// openStore opens bucket through endpoint (the server or a proxy) the way the CLI does:
// the S3 adapter wrapped in store.Retry, here with no waits between attempts.
func openStore(t testing.TB, env testenv.S3Env, bucket, endpoint string, timeout time.Duration, retries *atomic.Int64) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := s3store.Open(ctx, s3store.Config{
		Bucket: bucket, Region: env.Region, Endpoint: endpoint, PathStyle: true,
		HTTPClient: &http.Client{Timeout: timeout},
	})
	if err != nil {
		t.Fatalf("open %s through %s: %v", bucket, endpoint, err)
	}
	if retries == nil {
		retries = new(atomic.Int64)
	}
	return store.Retry(s, store.RetryOptions{
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Log:   slog.New(retryCounter{retries}),
	})
}

func deployer(s store.Store) *publish.Deployer {
	return &publish.Deployer{Store: s, Site: "k", Workers: 8}
}

func publishCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustVerify runs Verify on s and fails the test on any problem (notes are logged).
func mustVerify(t testing.TB, s store.Store) {
	t.Helper()
	probs, err := deployer(s).Verify(publishCtx(t))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range probs {
		if p.Warning {
			t.Logf("verify note: %s: %s", p.Path, p.What)
			continue
		}
		t.Errorf("verify: %s: %s", p.Path, p.What)
	}
}

// sameTree fails the test unless every object of before is in after with the same
// bytes and headers, and after adds nothing but allowed keys (the failed deploy's
// fingerprinted assets, which are written under their own content-hashed names before
// anything goes live, are removed only by gc, and that no page of the live tree names).
func sameTree(t testing.TB, before, after map[string]objSnap, allowed map[string]bool) {
	t.Helper()
	var changed, gone, appeared []string
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			gone = append(gone, k)
		case a != b:
			what := "bytes"
			if a.Sum == b.Sum {
				what = fmt.Sprintf("headers %+v, were %+v", a, b)
			}
			changed = append(changed, k+" ("+what+")")
		}
	}
	for k := range after {
		if _, ok := before[k]; ok {
			continue
		}
		if allowed[k] {
			t.Logf("note: the failed deploy left its fingerprinted asset %s (unreferenced; gc removes it)", k)
			continue
		}
		appeared = append(appeared, k)
	}
	for _, l := range []struct {
		what string
		keys []string
	}{{"changed", changed}, {"gone", gone}, {"appeared", appeared}} {
		if len(l.keys) > 0 {
			sort.Strings(l.keys)
			t.Errorf("the live tree is not as it was: %d paths %s: %s", len(l.keys), l.what, strings.Join(l.keys, ", "))
		}
	}
}

// faultSetup is a bucket with v1 live (published directly), and a proxy in front of the
// server.
type faultSetup struct {
	env     testenv.S3Env
	bucket  string
	direct  store.Store
	proxy   *faultProxy
	proxied store.Store
	retries *atomic.Int64
	v1, v2  builtSite
	v1ID    string
	before  map[string]objSnap
}

func newFaultSetup(t *testing.T, env testenv.S3Env, timeout time.Duration) *faultSetup {
	t.Helper()
	f := &faultSetup{env: env, bucket: testenv.NewBucket(t, env), retries: new(atomic.Int64)}
	f.v1, f.v2 = loadSite(t, wsV1), loadSite(t, wsV2)
	f.direct = openStore(t, env, f.bucket, env.Endpoint, longTimeout, nil)
	res, err := deployer(f.direct).Publish(publishCtx(t), f.v1.objs, f.v1.src, publish.Options{})
	if err != nil {
		t.Fatalf("publish v1: %v", err)
	}
	f.v1ID = res.Deploy
	f.proxy = newFaultProxy(t, env.Endpoint)
	f.proxied = openStore(t, env, f.bucket, f.proxy.URL, timeout, f.retries)
	f.before = snapshotLive(t, env, f.bucket)
	return f
}

// publishV2 publishes v2 through the proxy.
func (f *faultSetup) publishV2(t testing.TB) (*publish.Result, error) {
	return deployer(f.proxied).Publish(publishCtx(t), f.v2.objs, f.v2.src, publish.Options{})
}

func (f *faultSetup) status(t testing.TB) *publish.Status {
	t.Helper()
	st, err := deployer(f.direct).ReadStatus(publishCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkV2Live checks that v2 is live, verified, the lock free and the pointer clean.
func (f *faultSetup) checkV2Live(t testing.TB, id string) {
	t.Helper()
	st := f.status(t)
	if st.Pointer.Live != id || st.Pointer.Live == f.v1ID || st.Pointer.State != publish.StateLive || st.Interrupted != "" {
		t.Errorf("want deploy %s live and settled, pointer is %+v", id, st.Pointer)
	}
	if st.Lock != nil {
		t.Errorf("the lock is still held: %+v", *st.Lock)
	}
	mustVerify(t, f.direct)
	checkLive(t, f.env, f.bucket, "after the publish")
}

// checkFailedCleanly checks what a publish that gave up must leave: the live tree as it
// was, the lock released (or else status showing its holder), and an interrupted deploy
// shown by status if the pointer was marked; then a publish without faults finishes.
func (f *faultSetup) checkFailedCleanly(t testing.TB, pubErr error) {
	t.Helper()
	sameTree(t, f.before, snapshotLive(t, f.env, f.bucket), f.v2.assets())
	checkLive(t, f.env, f.bucket, "after the failed publish")
	st := f.status(t)
	if st.Lock != nil {
		t.Errorf("the failed publish left the lock held (status shows %s@%s pid %d); it should release it", st.Lock.Holder, st.Lock.Host, st.Lock.PID)
	}
	if st.Pointer.Live != f.v1ID {
		t.Errorf("after the failed publish, deploy %s is live, want v1 %s (error was: %v)", st.Pointer.Live, f.v1ID, pubErr)
	}
	if st.Pointer.State == publish.StateMaterializing && st.Interrupted == "" {
		t.Errorf("the pointer is materializing but status shows no interrupted deploy: %+v", st)
	}
	t.Logf("after the failure: pointer %s/%s, interrupted %q", st.Pointer.Live, st.Pointer.State, st.Interrupted)
	// Faults gone: the next publish finishes (or redoes) the job.
	f.proxy.set(nil, nil)
	res, err := f.publishV2(t)
	if err != nil {
		t.Fatalf("the publish after the faults stopped failed: %v", err)
	}
	if st.Interrupted != "" && res.Repaired != st.Interrupted {
		t.Errorf("the next publish did not say it rolled the interrupted deploy %s forward: %+v", st.Interrupted, res)
	}
	f.checkV2Live(t, res.Deploy)
}

// TestStoreFaults publishes through a proxy that injects S3 faults, with the S3 adapter
// wrapped in store.Retry under a Deployer, as the CLI does.
func TestStoreFaults(t *testing.T) {
	env := testenv.S3(t)

	t.Run("intermittent", func(t *testing.T) {
		t.Parallel()
		// One request in three fails (5xx, throttling or a reset), whatever it is:
		// retries absorb them all and the publish succeeds, while a crawler checks
		// the live site.
		f := newFaultSetup(t, env, longTimeout)
		cr := startCrawler(t, env, f.bucket)
		kinds := []fault{internal, reset, internal, slowDown, reset, internal}
		slow := 0
		f.proxy.set(func(r request) fault {
			if r.Seq%3 != 0 {
				return pass
			}
			k := kinds[(r.Seq/3)%len(kinds)]
			if k == slowDown {
				// SlowDown costs the SDK's throttling backoff (up to 1 s): two are enough.
				if slow >= 2 {
					return internal
				}
				slow++
			}
			return k
		}, nil)
		res, err := f.publishV2(t)
		f.proxy.set(nil, nil)
		cr.stop(t)
		_, inj, total := f.proxy.counts()
		t.Logf("%s; store.Retry retries: %d", f.proxy.summary(), f.retries.Load())
		if err != nil {
			t.Fatalf("the publish failed under intermittent faults: %v", err)
		}
		if total == 0 || inj[internal] == 0 || inj[reset] == 0 || inj[slowDown] == 0 {
			t.Errorf("the proxy injected too few faults to mean anything: %v", inj)
		}
		f.checkV2Live(t, res.Deploy)
	})

	// A fault that lasts longer than the SDK's own attempts (3) on one request: only
	// store.Retry's retries can carry the publish through.
	for _, k := range []fault{internal, reset, hang} {
		t.Run("burst/"+strings.ReplaceAll(k.String(), " ", "-"), func(t *testing.T) {
			t.Parallel()
			timeout := longTimeout
			if k == hang {
				timeout = shortTimeout
			}
			f := newFaultSetup(t, env, timeout)
			var copyKey string
			f.proxy.set(func(r request) fault {
				if r.Op != "CopyObject" {
					return pass
				}
				if copyKey == "" {
					copyKey = r.Key
				}
				if r.Key == copyKey && f.proxy.injected[k] < 4 {
					return k
				}
				return pass
			}, nil)
			res, err := f.publishV2(t)
			f.proxy.set(nil, nil)
			t.Logf("%s; store.Retry retries: %d", f.proxy.summary(), f.retries.Load())
			if err != nil {
				t.Fatalf("one copy failing 4 times in a row (%s) then working: want the publish to succeed through store.Retry, got: %v", k, err)
			}
			f.checkV2Live(t, res.Deploy)
		})
	}

	// One timeout (no answer within the client's timeout; the server never saw the
	// request) on one write: it is retried like any transient failure.
	oneTimeout := []struct {
		name string
		op   string
		n    int
	}{
		{"lock", "PutLock", 1},
		{"blob", "PutBlob", 1},
		{"asset", "PutObject", 1},
		{"record", "PutRecord", 1},
		{"mark", "PutPointer", 1},
		{"copy", "CopyObject", 1},
		{"commit", "PutPointer", 2},
	}
	for _, tc := range oneTimeout {
		t.Run("one-timeout/"+tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFaultSetup(t, env, shortTimeout)
			f.proxy.set(func(r request) fault {
				if r.Op == tc.op && r.N == tc.n {
					return hang
				}
				return pass
			}, nil)
			res, err := f.publishV2(t)
			f.proxy.set(nil, nil)
			t.Logf("%s; store.Retry retries: %d", f.proxy.summary(), f.retries.Load())
			if _, inj, _ := f.proxy.counts(); inj[hang] != 1 {
				t.Fatalf("the proxy held %d requests, want 1", inj[hang])
			}
			if err != nil {
				t.Errorf("one timeout on %s #%d: want it retried and the publish to succeed, got: %v", tc.op, tc.n, err)
				f.checkFailedCleanly(t, err)
				return
			}
			f.checkV2Live(t, res.Deploy)
		})
	}

	// Persistent faults: the publish gives up, and the live tree is exactly as it was.
	persistent := []struct {
		name string
		rule func(request) fault
	}{
		{"every-copy-500", func(r request) fault {
			if r.Op == "CopyObject" {
				return internal
			}
			return pass
		}},
		{"every-blob-put-500", func(r request) fault {
			if r.Op == "PutBlob" {
				return internal
			}
			return pass
		}},
		{"every-blob-put-reset", func(r request) fault {
			if r.Op == "PutBlob" {
				return reset
			}
			return pass
		}},
		{"every-request-reset", func(request) fault { return reset }},
		// Failing once materializing has begun: static files are live, pages fail.
		{"every-page-copy-500", func(r request) fault {
			if r.Op == "CopyObject" && strings.HasSuffix(r.Key, ".html") {
				return internal
			}
			return pass
		}},
		// Failing at the commit: the whole new tree is materialized, the pointer
		// cannot be committed.
		{"every-commit-500", func(r request) fault {
			if r.Op == "PutPointer" && r.N >= 2 {
				return internal
			}
			return pass
		}},
		{"every-copy-timeout", func(r request) fault {
			if r.Op == "CopyObject" {
				return hang
			}
			return pass
		}},
	}
	for _, tc := range persistent {
		t.Run("persistent/"+tc.name, func(t *testing.T) {
			t.Parallel()
			timeout := longTimeout
			if strings.HasSuffix(tc.name, "timeout") {
				timeout = shortTimeout
			}
			f := newFaultSetup(t, env, timeout)
			f.proxy.set(tc.rule, nil)
			start := time.Now()
			_, err := f.publishV2(t)
			f.proxy.set(nil, nil)
			t.Logf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
			t.Logf("%s; store.Retry retries: %d", f.proxy.summary(), f.retries.Load())
			if err == nil {
				t.Fatal("the publish succeeded through a persistent fault")
			}
			if _, _, total := f.proxy.counts(); total < 2 {
				t.Errorf("the failing request was not retried (%d faults injected)", total)
			}
			f.checkFailedCleanly(t, err)
		})
	}

	// A write the server did but whose answer was lost (the connection reset after
	// the server answered): the publish must either recognise its own write and go
	// on, or fail with the live tree exactly as it was.
	lost := []struct {
		name string
		op   string
		n    int
	}{
		{"lock", "PutLock", 1},
		{"blob", "PutBlob", 1},
		{"record", "PutRecord", 1},
		{"mark", "PutPointer", 1},
		{"copy", "CopyObject", 1},
		{"commit", "PutPointer", 2},
	}
	for _, tc := range lost {
		t.Run("lost-answer/"+tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFaultSetup(t, env, longTimeout)
			f.proxy.set(func(r request) fault {
				if r.Op == tc.op && r.N == tc.n {
					return lostAnswer
				}
				return pass
			}, nil)
			res, err := f.publishV2(t)
			f.proxy.set(nil, nil)
			t.Logf("%s; store.Retry retries: %d", f.proxy.summary(), f.retries.Load())
			if _, inj, _ := f.proxy.counts(); inj[lostAnswer] != 1 {
				t.Fatalf("the proxy lost %d answers, want 1", inj[lostAnswer])
			}
			if err == nil {
				f.checkV2Live(t, res.Deploy)
				return
			}
			t.Logf("the publish failed: %v", err)
			f.checkFailedCleanly(t, err)
		})
	}
}
