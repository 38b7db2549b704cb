//go:build bench

package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/stump-dev/stump/internal/testenv"
)

// TestPublishBench is the publish benchmark (see bench/README.md). It is built only with
// the "bench" tag (go test -tags bench -run TestPublishBench); bench/publish.sh runs it. Settings: STUMP_BENCH_PAGES
// (10000), STUMP_BENCH_RUNS (3), STUMP_BENCH_SEED (1), STUMP_BENCH_OUT (a file the
// Markdown report is also written to), STUMP_BENCH_DIR (where the site is generated and
// built; default a temporary folder).
func TestPublishBench(t *testing.T) {
	pages := envInt(t, "STUMP_BENCH_PAGES", 10000)
	runs := envInt(t, "STUMP_BENCH_RUNS", 3)
	seed := envInt(t, "STUMP_BENCH_SEED", 1)
	env := testenv.S3(t)
	dir := os.Getenv("STUMP_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	loadBefore := loadAvg()
	b := prepare(t, dir, pages, uint64(seed))
	var all []map[string]sample
	for i := 1; i <= runs; i++ {
		all = append(all, runOnce(t, env, b, i))
	}
	md := report(b, pages, runs, all, loadBefore, loadAvg())
	fmt.Println(md)
	if out := os.Getenv("STUMP_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
