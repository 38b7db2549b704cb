package publish

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// each runs f(ctx, i) for every i in [0, n) on at most workers goroutines, each taking
// the next index until none is left. The goroutines live as long as the work, so a
// stack grown once by the store client's deep call chain serves every request of its
// goroutine: a goroutine per request (errgroup with a limit) grew a fresh stack for
// each one, which cost more client CPU than anything stump itself did per request.
// The first error cancels the context of the calls still running, stops the workers,
// and is returned.
func each(ctx context.Context, workers, n int, f func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(max(workers, 1), n) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := f(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}
