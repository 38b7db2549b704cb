package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stump-dev/stump/publish/store"
)

// TestConditionalWriteFlushesOnlyWhatWasWritten: a conditional write makes the objects
// written before it durable by fsyncing just those files and their folders, not the
// whole file system; nothing twice; a syncfs when many were written or some deleted.
func TestConditionalWriteFlushesOnlyWhatWasWritten(t *testing.T) {
	for _, files := range []bool{false, true} {
		t.Run(fmt.Sprintf("sidefiles=%v", files), func(t *testing.T) {
			old := forceSideFiles
			forceSideFiles = files
			t.Cleanup(func() { forceSideFiles = old })
			testConditionalWriteFlushes(t)
		})
	}
}

func testConditionalWriteFlushes(t *testing.T) {
	var syncfs, fsyncs atomic.Int64
	oldFS, oldFile, oldMax := syncFS, fsyncFile, dirtyMax
	syncFS = func(*os.File) error { syncfs.Add(1); return nil }
	fsyncFile = func(f *os.File) error { fsyncs.Add(1); return f.Sync() }
	dirtyMax = 16
	t.Cleanup(func() { syncFS, fsyncFile, dirtyMax = oldFS, oldFile, oldMax })

	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// per is what a write makes: its data file, and its sidecar file when not in an
	// attribute.
	per := 1
	if !s.attrs {
		per = 2
	}
	ctx := context.Background()
	put := func(key string, opts store.PutOptions) string {
		t.Helper()
		etag, err := s.Put(ctx, key, bytes.NewReader([]byte(key)), -1, opts)
		if err != nil {
			t.Fatal(err)
		}
		return etag
	}
	put("a/1.html", store.PutOptions{})
	put("a/2.html", store.PutOptions{})
	if err := s.Copy(ctx, "a/1.html", "b/1.html", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	etag := put("_stump/current.json", store.PutOptions{IfNoneMatch: true})
	// Before its renames: 3 objects (3 data files and 3 sidecar files, in folders a,
	// b and two sidecar ones) and its own temporary files; after: its folders.
	if want := int64(3*per + 2*per + per + per); syncfs.Load() != 0 || fsyncs.Load() != want {
		t.Fatalf("after 3 writes and a conditional one: %d syncfs, %d fsyncs; want 0 and %d", syncfs.Load(), fsyncs.Load(), want)
	}
	fsyncs.Store(0)
	put("_stump/current.json", store.PutOptions{IfMatch: etag})
	if syncfs.Load() != 0 || fsyncs.Load() != int64(2*per) {
		t.Fatalf("nothing written since: %d syncfs, %d fsyncs; want its own %d files and folders", syncfs.Load(), fsyncs.Load(), 2*per)
	}
	fsyncs.Store(0)
	for i := range dirtyMax + 1 {
		put(fmt.Sprintf("many/%d", i), store.PutOptions{})
	}
	put("lock", store.PutOptions{IfNoneMatch: true})
	if syncfs.Load() != 1 || fsyncs.Load() != int64(per) {
		t.Fatalf("after %d writes: %d syncfs, %d fsyncs; want one syncfs, then the %d folders of the conditional write", dirtyMax+1, syncfs.Load(), fsyncs.Load(), per)
	}
	// A deferred create-only write flushes nothing; the next conditional write
	// makes it durable with the rest.
	syncfs.Store(0)
	fsyncs.Store(0)
	put("blob", store.PutOptions{IfNoneMatch: true, Deferred: true})
	if syncfs.Load() != 0 || fsyncs.Load() != 0 {
		t.Fatalf("a deferred conditional write: %d syncfs, %d fsyncs; want none", syncfs.Load(), fsyncs.Load())
	}
	if _, err := s.Put(ctx, "blob", bytes.NewReader([]byte("again")), -1, store.PutOptions{IfNoneMatch: true, Deferred: true}); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("a deferred IfNoneMatch over an existing key: %v", err)
	}
	put("lock3", store.PutOptions{IfNoneMatch: true})
	if want := int64(per + per + 2*per); syncfs.Load() != 0 || fsyncs.Load() != want {
		t.Fatalf("the conditional write after a deferred one: %d syncfs, %d fsyncs; want 0 and %d (the deferred write's files and folders, then its own)", syncfs.Load(), fsyncs.Load(), want)
	}
	if err := s.Delete(ctx, "a/2.html"); err != nil {
		t.Fatal(err)
	}
	put("lock2", store.PutOptions{IfNoneMatch: true})
	if syncfs.Load() != 1 {
		t.Fatalf("after a delete: %d syncfs, want one", syncfs.Load())
	}
}

// TestDurableShared: callers that arrive while a flush runs share the next one, and
// each returns only after a flush that started after its call.
func TestDurableShared(t *testing.T) {
	oldFS, oldMax := syncFS, dirtyMax
	var calls atomic.Int64
	release := make(chan struct{})
	syncFS = func(*os.File) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	}
	dirtyMax = -1 // syncfs for every flush
	var waiting atomic.Int64
	waitHook = func() { waiting.Add(1) }
	t.Cleanup(func() { syncFS, dirtyMax, waitHook = oldFS, oldMax, nil })

	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.markDirty(true, "first")
	first := make(chan error)
	go func() { first <- s.durable() }()
	for calls.Load() == 0 { // the first flush is under way
		runtime.Gosched()
	}
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s.markDirty(true, fmt.Sprint("later", i))
			errs <- s.durable()
		}()
	}
	for waiting.Load() < n {
		runtime.Gosched()
	}
	// None of them may return on the flush that started before they came.
	select {
	case err := <-errs:
		t.Fatalf("durable returned (%v) during a flush that started before its call", err)
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d flushes for 1 + %d callers, want 2 (the later callers share one)", c, n)
	}
}

// TestDurableError: a failed flush fails its callers and leaves its files to the next.
func TestDurableError(t *testing.T) {
	oldFS, oldMax := syncFS, dirtyMax
	var calls atomic.Int64
	syncFS = func(*os.File) error {
		if calls.Add(1) == 1 {
			return errors.New("disk gone")
		}
		return nil
	}
	dirtyMax = -1
	t.Cleanup(func() { syncFS, dirtyMax = oldFS, oldMax })
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.markDirty(true, "x")
	if err := s.durable(); err == nil {
		t.Fatal("durable: no error from a failed flush")
	}
	if err := s.durable(); err != nil || calls.Load() != 2 {
		t.Fatalf("durable after a failed flush: %v, %d flushes; want the files flushed again", err, calls.Load())
	}
	if err := s.durable(); err != nil || calls.Load() != 2 {
		t.Fatalf("durable with nothing to flush: %v, %d flushes", err, calls.Load())
	}
}
