//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
)

// serverFloor measures what the S3 server alone takes for the requests a first deploy
// makes per file: one PUT of each file of the build at dir (the key its path), then one
// server-side COPY of each of those objects to another key, each phase at the deploy's
// request concurrency (publish.DefaultWorkers), on a fresh bucket. In place, a first
// deploy needs both per file (the content-addressed blob, then the live copy, so that a
// rollback needs no rebuild); atomic mode needs the PUTs only.
func serverFloor(t *testing.T, env testenv.S3Env, dir string) (puts, copies time.Duration, n int) {
	t.Helper()
	bucket := testenv.NewBucket(t, env)
	dropLater(t, env, bucket)
	tg := openTarget(t, env, bucket)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	data := make([][]byte, len(files))
	keys := make([]string, len(files))
	for i, p := range files {
		if data[i], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		keys[i] = filepath.ToSlash(rel)
	}
	run := func(op func(ctx context.Context, i int) error) time.Duration {
		start := time.Now()
		g, ctx := errgroup.WithContext(context.Background())
		g.SetLimit(publish.DefaultWorkers)
		for i := range files {
			g.Go(func() error { return op(ctx, i) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	puts = run(func(ctx context.Context, i int) error {
		_, err := tg.store.Put(ctx, "put/"+keys[i], bytes.NewReader(data[i]), int64(len(data[i])), store.PutOptions{})
		return err
	})
	copies = run(func(ctx context.Context, i int) error {
		return tg.store.Copy(ctx, "put/"+keys[i], "copy/"+keys[i], store.PutOptions{})
	})
	return puts, copies, len(files)
}

// floorReport runs serverFloor once and says what it means beside hugo deploy's
// first deploy (0: no hugo figure).
func floorReport(t *testing.T, env testenv.S3Env, dir string, hugoFirst time.Duration) string {
	puts, copies, n := serverFloor(t, env, dir)
	var w strings.Builder
	fmt.Fprintf(&w, "The server alone (one run, %d concurrent requests, load average before %s): %d PUTs of the build's files in %s, then %d server-side COPYs of them in %s. A first deploy in place needs one of each per file, a floor of %s; in atomic mode, the PUTs alone.",
		publish.DefaultWorkers, loadAvg(), n, secs(puts), n, secs(copies), secs(puts+copies))
	if hugoFirst > 0 {
		fmt.Fprintf(&w, " Against hugo deploy's first deploy (%s): PUTs and COPYs %.2f×, PUTs alone %.2f×.",
			secs(hugoFirst), (puts+copies).Seconds()/hugoFirst.Seconds(), puts.Seconds()/hugoFirst.Seconds())
	}
	w.WriteString("\n\n")
	return w.String()
}
