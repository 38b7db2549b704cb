//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

// TestPublishBench is the publish benchmark (see bench/README.md). It is built only with
// the "bench" tag (go test -tags bench -run TestPublishBench); bench/publish.sh runs it.
// Settings: STUMP_BENCH_PAGES (10000), STUMP_BENCH_RUNS (3), STUMP_BENCH_SEED (1),
// STUMP_BENCH_OUT (a file the Markdown report is also written to), STUMP_BENCH_DIR
// (where the site is generated and built; default a temporary folder),
// STUMP_BENCH_HUGO (a hugo binary built with -tags withdeploy: `hugo deploy` of the same
// builds to the same versitygw, in the same runs), STUMP_BENCH_WORKERS (a list such as
// "4,8,16,32,64": the first deploy and the stylesheet change at each Deployer.Workers,
// in both modes, for the concurrency curve), STUMP_BENCH_FASTLY (set: also atomic mode as
// on Fastly, modeFastly).
func TestPublishBench(t *testing.T) {
	pages := envInt(t, "STUMP_BENCH_PAGES", 10000)
	runs := envInt(t, "STUMP_BENCH_RUNS", 3)
	seed := envInt(t, "STUMP_BENCH_SEED", 1)
	hugo := os.Getenv("STUMP_BENCH_HUGO")
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
	all := map[string][]map[string]sample{}
	var hugoRuns []map[string]sample
	measured := modes
	if os.Getenv("STUMP_BENCH_FASTLY") != "" {
		measured = append(measured, modeFastly)
	}
	for i := 1; i <= runs; i++ {
		for _, mode := range measured {
			all[mode] = append(all[mode], runOnce(t, env, b, i, mode))
		}
		if hugo != "" {
			hugoRuns = append(hugoRuns, runHugo(t, env, b, i, hugo, dir))
		}
	}
	loadAfter := loadAvg()
	var md strings.Builder
	for _, mode := range measured {
		md.WriteString(report(b, pages, runs, mode, all[mode], loadBefore, loadAfter))
		md.WriteString("\n")
	}
	md.WriteString(compareHugo(all, hugoRuns, hugo))
	var hugoFirst time.Duration
	if len(hugoRuns) > 0 {
		hugoFirst = medianRun(hugoRuns, scFirst).wall
	}
	md.WriteString(floorReport(t, env, b.base, hugoFirst))
	if ws := os.Getenv("STUMP_BENCH_WORKERS"); ws != "" {
		md.WriteString(workersCurve(t, env, b, ws))
	}
	fmt.Println(md.String())
	if out := os.Getenv("STUMP_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runHugo deploys the same three builds with `hugo deploy` to a fresh bucket of the
// same versitygw, through a counting proxy, in the scenarios stump runs.
func runHugo(t *testing.T, env testenv.S3Env, b builds, run int, hugo, dir string) map[string]sample {
	t.Helper()
	bucket := testenv.NewBucket(t, env)
	dropLater(t, env, bucket)
	tr := &Transport{Base: http.DefaultTransport, PathStyle: true}
	up, err := url.Parse(env.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	rp.Transport = tr
	srv := httptest.NewServer(rp)
	defer srv.Close()
	project := filepath.Join(dir, "hugo-deploy")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	deploy := func(out string) sample {
		cfg := fmt.Sprintf("baseURL = 'https://example.org/'\npublishDir = %q\n\n[deployment]\n[[deployment.targets]]\nname = 'bench'\nURL = 's3://%s?region=%s&endpoint=%s&use_path_style=true'\n",
			out, bucket, env.Region, srv.URL)
		if err := os.WriteFile(filepath.Join(project, "hugo.toml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		tr.Reset()
		start := time.Now()
		cmd := exec.Command(hugo, "deploy", "--source", project, "--target", "bench", "--maxDeletes", "-1")
		cmd.Env = append(os.Environ(), "AWS_REGION="+env.Region)
		outb, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("hugo deploy %s: %v\n%s", filepath.Base(out), err, outb)
		}
		return sample{wall: wall, wire: tr.Counts(), note: strings.TrimSpace(lastLine(string(outb)))}
	}
	res := map[string]sample{}
	res[scFirst] = deploy(b.base)
	res[scNoop] = deploy(b.base)
	res[scPage] = deploy(b.page)
	res[scCSS] = deploy(b.css)
	for _, sc := range []string{scFirst, scNoop, scPage, scCSS} {
		s := res[sc]
		t.Logf("run %d, hugo deploy: %-58s %8s  %6d requests  %s", run, sc, s.wall.Round(time.Millisecond), s.wire.Total(), compact(s.wire))
	}
	return res
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// compareHugo is the table of the issue: median wall time and requests of each
// scenario in both stump modes and with hugo deploy, and the ratios to hugo deploy.
func compareHugo(all map[string][]map[string]sample, hugoRuns []map[string]sample, hugo string) string {
	var w strings.Builder
	targets := map[string]string{scFirst: "≤ 0.40", scCSS: "≤ 0.40", scNoop: "≤ 0.10", scPage: "≤ 0.15"}
	order := []string{scFirst, scCSS, scNoop, scPage}
	if len(hugoRuns) == 0 {
		fmt.Fprintf(&w, "hugo deploy: not measured (%s).\n\n", orText(hugo, "no hugo binary built with -tags withdeploy; see bench/publish.sh"))
		w.WriteString("| scenario | in place | requests | atomic | requests |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, sc := range order {
			ip, at := medianRun(all[publish.ModeInPlace], sc), medianRun(all[publish.ModeAtomic], sc)
			fmt.Fprintf(&w, "| %s | %s | %d | %s | %d |\n", sc, secs(ip.wall), ip.wire.Total(), secs(at.wall), at.wire.Total())
		}
		return w.String() + "\n"
	}
	w.WriteString("stump against `hugo deploy` (same builds, same versitygw, same runs; medians):\n\n")
	w.WriteString("| scenario | in place | atomic | hugo deploy | in place ÷ hugo | atomic ÷ hugo | target | requests: in place / atomic / hugo |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range order {
		ip, at, hg := medianRun(all[publish.ModeInPlace], sc), medianRun(all[publish.ModeAtomic], sc), medianRun(hugoRuns, sc)
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %.2f | %.2f | %s | %d / %d / %d |\n", sc, secs(ip.wall), secs(at.wall), secs(hg.wall),
			ip.wall.Seconds()/hg.wall.Seconds(), at.wall.Seconds()/hg.wall.Seconds(), targets[sc], ip.wire.Total(), at.wire.Total(), hg.wire.Total())
	}
	w.WriteString("\nhugo deploy requests by operation (median run): ")
	var parts []string
	for _, sc := range order {
		parts = append(parts, sc+": "+compact(medianRun(hugoRuns, sc).wire))
	}
	w.WriteString(strings.Join(parts, "; ") + ".\n\n")
	return w.String()
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// workersCurve deploys the base build and then the stylesheet change to a fresh bucket
// at each Deployer.Workers of list, in both modes, and reports the wall times.
func workersCurve(t *testing.T, env testenv.S3Env, b builds, list string) string {
	t.Helper()
	var w strings.Builder
	fmt.Fprintf(&w, "Request concurrency (Deployer.Workers): wall time of a first deploy and of the stylesheet change, one run each, load average before %s\n\n", loadAvg())
	w.WriteString("| workers | in place: first | in place: stylesheet | atomic: first | atomic: stylesheet |\n| ---: | ---: | ---: | ---: | ---: |\n")
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("STUMP_BENCH_WORKERS: %q is not a positive whole number", f)
		}
		var cells []string
		for _, mode := range modes {
			bucket := testenv.NewBucket(t, env)
			tg := openTarget(t, env, bucket)
			tg.mode, tg.workers = mode, n
			first := tg.deploy(t, b.base, "base")
			css := tg.deploy(t, b.css, "css")
			dropLater(t, env, bucket)
			cells = append(cells, secs(first.wall), secs(css.wall))
			t.Logf("workers %d, %s: first %s, stylesheet %s", n, mode, secs(first.wall), secs(css.wall))
		}
		fmt.Fprintf(&w, "| %d | %s |\n", n, strings.Join(cells, " | "))
	}
	w.WriteString("\n")
	return w.String()
}
