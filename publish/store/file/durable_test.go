package file

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stump-dev/stump/publish/store"
)

// TestConditionalWriteFlushesOnlyWhatWasWritten: a conditional write makes the objects
// written before it durable by fsyncing just those files and their folders, not the
// whole file system; nothing twice; a syncfs when many were written or some deleted.
func TestConditionalWriteFlushesOnlyWhatWasWritten(t *testing.T) {
	var syncfs, fsyncs atomic.Int64
	oldFS, oldFile := syncFS, fsyncFile
	syncFS = func(*os.File) error { syncfs.Add(1); return nil }
	fsyncFile = func(f *os.File) error { fsyncs.Add(1); return f.Sync() }
	t.Cleanup(func() { syncFS, fsyncFile = oldFS, oldFile })

	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	// 3 objects: 3 data files and 3 sidecars, in 4 folders (a, b, and two sidecar ones).
	if syncfs.Load() != 0 || fsyncs.Load() != 10 {
		t.Fatalf("after 3 writes and a conditional one: %d syncfs, %d fsyncs; want 0 and 10", syncfs.Load(), fsyncs.Load())
	}
	fsyncs.Store(0)
	put("_stump/current.json", store.PutOptions{IfMatch: etag})
	if syncfs.Load() != 0 || fsyncs.Load() != 0 {
		t.Fatalf("nothing written since: %d syncfs, %d fsyncs", syncfs.Load(), fsyncs.Load())
	}
	for i := range dirtyMax + 1 {
		put(fmt.Sprintf("many/%d", i), store.PutOptions{})
	}
	put("lock", store.PutOptions{IfNoneMatch: true})
	if syncfs.Load() != 1 || fsyncs.Load() != 0 {
		t.Fatalf("after %d writes: %d syncfs, %d fsyncs; want one syncfs", dirtyMax+1, syncfs.Load(), fsyncs.Load())
	}
	if err := s.Delete(ctx, "a/2.html"); err != nil {
		t.Fatal(err)
	}
	put("lock2", store.PutOptions{IfNoneMatch: true})
	if syncfs.Load() != 2 {
		t.Fatalf("after a delete: %d syncfs, want another one", syncfs.Load())
	}
}
