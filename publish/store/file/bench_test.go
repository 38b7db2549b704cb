//go:build linux

package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// BenchmarkPublishPage is what a deploy does for each changed page: a conditional Put
// of the page's blob, then its Copy to the page's path. The first write of a deploy
// is the lock (IfNoneMatch), whose flush finds nothing to do.
func BenchmarkPublishPage(b *testing.B) {
	for _, impl := range []string{"beneath", "root"} {
		b.Run(impl, func(b *testing.B) {
			if impl == "root" {
				forceRoot = true
				defer func() { forceRoot = false }()
			} else if forceRoot {
				b.Skip("no openat2 here")
			}
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				i++
				body := fmt.Appendf(bytes.Repeat([]byte("<p>page</p>"), 500), "%d", i)
				h := sha256.Sum256(body)
				sum := hex.EncodeToString(h[:])
				blob := "_stump/objects/sha256/" + sum
				if _, err := s.Put(ctx, blob, bytes.NewReader(body), int64(len(body)), store.PutOptions{SHA256: sum, IfNoneMatch: true}); err != nil {
					b.Fatal(err)
				}
				if err := s.Copy(ctx, blob, fmt.Sprintf("news/p%d/index.html", i), store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCopyPage is the Copy alone (the blob is there already: a page whose
// bytes an earlier deploy uploaded).
func BenchmarkCopyPage(b *testing.B) {
	for _, impl := range []string{"beneath", "root"} {
		b.Run(impl, func(b *testing.B) {
			if impl == "root" {
				forceRoot = true
				defer func() { forceRoot = false }()
			}
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			blob := "_stump/objects/sha256/x"
			if _, err := store.PutBytes(ctx, s, blob, bytes.Repeat([]byte("<p>page</p>"), 500), store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				i++
				if err := s.Copy(ctx, blob, fmt.Sprintf("news/p%d/index.html", i%200), store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time (user and system) per op, which other
// work on the machine changes less than the wall time.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e3, "cpu-µs/op")
	}
}

// BenchmarkPublishPageParallel is BenchmarkPublishPage from 16 goroutines, as a
// deploy's workers run it, with the flush done by fsyncs of the files written or by
// syncfs.
func BenchmarkPublishPageParallel(b *testing.B) {
	for _, flush := range []string{"fsync", "syncfs"} {
		b.Run(flush, func(b *testing.B) {
			if flush == "syncfs" {
				old := dirtyMax
				dirtyMax = -1
				defer func() { dirtyMax = old }()
			}
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			var n atomic.Int64
			defer reportCPU(b)()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Appendf(bytes.Repeat([]byte("<p>page</p>"), 500), "%d", i)
					h := sha256.Sum256(body)
					sum := hex.EncodeToString(h[:])
					blob := "_stump/objects/sha256/" + sum
					if _, err := s.Put(ctx, blob, bytes.NewReader(body), int64(len(body)), store.PutOptions{SHA256: sum, IfNoneMatch: true}); err != nil {
						b.Error(err)
						return
					}
					if err := s.Copy(ctx, blob, fmt.Sprintf("news/p%d/index.html", i), store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
