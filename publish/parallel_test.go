package publish

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// goid is the running goroutine's number, from its stack header.
func goid() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	return string(f[1])
}

// TestEachReusesItsWorkers: each calls f once per index, on at most workers
// goroutines (so a stack grown by one request serves the next), never more than
// workers at once; the first error stops it.
func TestEachReusesItsWorkers(t *testing.T) {
	const n, workers = 500, 8
	var mu sync.Mutex
	seen := map[int]int{}
	gs := map[string]bool{}
	var running, peak atomic.Int64
	err := each(context.Background(), workers, n, func(_ context.Context, i int) error {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		mu.Lock()
		seen[i]++
		gs[goid()] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("index %d ran %d times", i, seen[i])
		}
	}
	if len(gs) > workers || peak.Load() > workers {
		t.Errorf("%d calls ran on %d goroutines, %d at once; want at most %d", n, len(gs), peak.Load(), workers)
	}

	boom := errors.New("boom")
	var calls atomic.Int64
	err = each(context.Background(), 1, n, func(_ context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() != 4 {
		t.Errorf("after an error at the fourth of %d calls on one worker: %v after %d calls", n, err, calls.Load())
	}
}
