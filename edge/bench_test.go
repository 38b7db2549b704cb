//go:build bench

package edge

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/sitegen"
	"github.com/stump-dev/stump/internal/testenv"
)

// benchEnv reads a benchmark setting from the environment.
func benchEnv(t *testing.T, name, def string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func benchInt(t *testing.T, name string, def, lo, hi int) int {
	t.Helper()
	s := benchEnv(t, name, strconv.Itoa(def))
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s=%q: want a number in %d..%d", name, s, lo, hi)
	}
	return n
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// TestEdgeLoad is the edge benchmark (docs/edge.md): a generated site of a few thousand
// pages published with the CLI to versitygw, served by Varnish with the generated VCL,
// loaded at a constant rate over loopback while a deploy that changes some pages, and
// its purge, run in the middle of the window. It is built only with the "bench" build tag.
//
// Settings: STUMP_BENCH_EDGE_RATE (requests/s, default 2500), STUMP_BENCH_EDGE_DURATION
// (default 60s, at most 10m), STUMP_BENCH_EDGE_PAGES (default 3000),
// STUMP_BENCH_EDGE_CONNS (default 64), STUMP_BENCH_EDGE_MODE (atomic, the default, or
// inplace).
func TestEdgeLoad(t *testing.T) {
	rate := benchInt(t, "STUMP_BENCH_EDGE_RATE", 2500, 1, maxLoadRate)
	pages := benchInt(t, "STUMP_BENCH_EDGE_PAGES", 3000, 10, 20000)
	conns := benchInt(t, "STUMP_BENCH_EDGE_CONNS", 64, 1, maxLoadConns)
	duration, err := time.ParseDuration(benchEnv(t, "STUMP_BENCH_EDGE_DURATION", "60s"))
	if err != nil || duration <= 0 || duration > maxLoadDuration {
		t.Fatalf("STUMP_BENCH_EDGE_DURATION: want a duration up to %s (%v)", maxLoadDuration, err)
	}
	mode := benchEnv(t, "STUMP_BENCH_EDGE_MODE", "atomic")
	if mode != "atomic" && mode != "inplace" {
		t.Fatalf("STUMP_BENCH_EDGE_MODE=%q: want atomic or inplace", mode)
	}

	b := setupBench(t, mode, pages, "")
	ws, bin, cenv, v, proxy, host, paths := b.ws, b.bin, b.cenv, b.v, b.proxy, b.host, b.paths

	// The deploy in the middle: 2% of the content pages change (and with them their
	// lists and term pages).
	var content []string
	filepath.WalkDir(filepath.Join(ws, "sites", "gen", "content"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") && !strings.HasSuffix(p, "_index.md") {
			content = append(content, p)
		}
		return nil
	})
	changed := map[string]string{}
	for i := 0; i < len(content); i += 50 {
		b, err := os.ReadFile(content[i])
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(ws, content[i])
		changed[filepath.ToSlash(rel)] = string(b) + "\nUpdated while the edge was under load.\n"
	}

	t.Logf("%d URLs (%d content pages), %s mode, %d req/s for %s over %d connections; load average before: %s; %d CPUs",
		len(paths), pages, mode, rate, duration, conns, loadavg(), runtime.NumCPU())
	before := proxy.requests.Load()
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var res *LoadResult
	var lerr error
	go func() {
		defer close(done)
		res, lerr = Load(ctx, LoadOptions{URL: v.URL, Host: host, Paths: paths, Zipf: 1.1,
			Rate: rate, Duration: duration, Conns: conns, Seed: 1})
	}()
	time.Sleep(duration / 3)
	writeWS(t, ws, changed)
	deployStart := time.Now()
	dep := runStump(t, bin, ws, cenv, duration+time.Minute, "publish", "--site", "gen", "--json")
	deployOf(t, dep)
	deployTook := time.Since(deployStart)
	<-done
	loadAfter := loadavg()
	if lerr != nil {
		t.Fatalf("load: %v", lerr)
	}
	origin := proxy.requests.Load() - before

	t.Logf("deploy of %d changed content pages (build, upload, %s switch, purge) during the load: %s, starting at +%s",
		len(changed), mode, deployTook.Round(time.Millisecond), (duration / 3).Round(time.Second))
	t.Logf("\n| metric | value |\n| --- | --- |\n"+
		"| target rate | %d req/s, %d connections, %s |\n"+
		"| achieved throughput | %.0f req/s (%d requests in %s) |\n"+
		"| latency p50 / p90 / p99 / p99.9 / max | %s / %s / %s / %s / %s |\n"+
		"| errors | %d (statuses %v) |\n"+
		"| requests sent >10 ms late | %d |\n"+
		"| origin requests / client requests | %d / %d = %.2f%% |\n"+
		"| load average after | %s |",
		rate, conns, duration, res.Throughput, res.Requests, res.Elapsed.Round(time.Millisecond),
		res.P50, res.P90, res.P99, res.P999, res.Max, res.Errors, res.Statuses, res.Late,
		origin, res.Requests, 100*float64(origin)/float64(max(res.Requests, 1)), loadAfter)
	if res.Errors > 0 {
		t.Errorf("%d errors, the first: %s", res.Errors, res.FirstError)
	}
	if res.Throughput < 0.97*float64(rate) {
		t.Errorf("achieved %.0f req/s, under the target %d", res.Throughput, rate)
	}
	if want := int64(rate) * int64(duration/time.Second); res.Requests != want {
		t.Errorf("%d requests completed, want %d", res.Requests, want)
	}
}

// benchSite is a generated site published to versitygw, served by Varnish with the
// generated VCL.
type benchSite struct {
	ws, bin, host string
	cenv          []string
	v             testenv.VarnishEnv
	proxy         *switchProxy
	paths         []string // every page and fingerprinted file
}

// setupBench generates a site of pages content pages, publishes it in mode with the
// CLI, and starts Varnish in front of it with extraEdge added to its edge: section.
func setupBench(t *testing.T, mode string, pages int, extraEdge string) *benchSite {
	t.Helper()
	env := testenv.S3(t)
	varnishd(t)
	bucket := testenv.NewBucket(t, env)
	testenv.EnableWebsite(t, env, bucket, "")
	proxy := newSwitchProxy(t, env.Website)
	bin := buildStump(t)
	cenv := cliEnv(env, "STUMP_PURGE_TOKEN="+testPurgeToken)

	ws := filepath.Join(t.TempDir(), "ws")
	if err := sitegen.Generate(ws, sitegen.Options{Pages: pages, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	sitePath := filepath.Join(ws, "sites", "gen", "site.yaml")
	base, err := os.ReadFile(sitePath)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(sitegen.BaseURL, "https://"), "/")
	siteYAML := string(base) + "target: " + cliTarget(env, bucket) + "\ndeploy: { mode: " + mode + " }\n" +
		"edge:\n  origin: http://" + proxy.addr + "\n  website_domain: " + env.WebsiteDomain + "\n  purgers: [127.0.0.1]\n" + extraEdge
	writeWS(t, ws, map[string]string{"sites/gen/site.yaml": siteYAML})
	loaded, err := config.ReadSite(&config.Workspace{}, "gen", sitePath, "sites/gen/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vcl, err := VCL(&config.Workspace{}, loaded)
	if err != nil {
		t.Fatal(err)
	}
	first := runStump(t, bin, ws, cenv, 10*time.Minute, "publish", "--site", "gen", "--json")
	deployOf(t, first)
	t.Logf("first publish: %s", first.elapsed.Round(time.Millisecond))

	v := testenv.VarnishWith(t, string(vcl), testenv.VarnishOptions{Env: []string{"STUMP_PURGE_TOKEN=" + testPurgeToken}})
	writeWS(t, ws, map[string]string{"sites/gen/site.yaml": siteYAML +
		"cdn:\n  - varnish: { endpoints: [\"" + v.URL + "\"], mode: xkey }\n"})

	// Every page of the build, and the site's fingerprinted files.
	out := filepath.Join(ws, "public", "gen")
	var paths []string
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, out))
		switch {
		case strings.HasSuffix(rel, "/index.html"):
			// Aliases (stored as redirects, answered 301) are left out.
			if b, err := os.ReadFile(p); err != nil || strings.Contains(string(b), `http-equiv="refresh"`) {
				return err
			}
			paths = append(paths, strings.TrimSuffix(rel, "index.html"))
		case strings.HasSuffix(rel, ".css") || strings.HasSuffix(rel, ".svg"):
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	return &benchSite{ws: ws, bin: bin, host: host, cenv: cenv, v: v, proxy: proxy, paths: paths}
}

// TestEdgeAttack runs the normal load (STUMP_BENCH_EDGE_RATE, default 2500 req/s, Zipf
// over the site's pages, from 127.0.0.1 as a trusted proxy of 5,000 visitors) alone,
// then alongside each attack profile from another loopback address (127.0.0.2, an
// untrusted client): a flood of random query strings on the site's pages, and a flood
// of random missing paths, each STUMP_BENCH_EDGE_ATTACK_RATE (default 1000) req/s. Each
// run lasts STUMP_BENCH_EDGE_DURATION (default 30s here). It reports, for each run, the
// normal traffic's latency and errors and the requests that reached the origin. It is
// built only with the "bench" build tag.
func TestEdgeAttack(t *testing.T) {
	rate := benchInt(t, "STUMP_BENCH_EDGE_RATE", 2500, 1, maxLoadRate)
	attackRate := benchInt(t, "STUMP_BENCH_EDGE_ATTACK_RATE", 1000, 1, maxLoadRate)
	pages := benchInt(t, "STUMP_BENCH_EDGE_PAGES", 3000, 10, 20000)
	conns := benchInt(t, "STUMP_BENCH_EDGE_CONNS", 64, 1, maxLoadConns)
	duration, err := time.ParseDuration(benchEnv(t, "STUMP_BENCH_EDGE_DURATION", "30s"))
	if err != nil || duration <= 0 || duration > maxLoadDuration {
		t.Fatalf("STUMP_BENCH_EDGE_DURATION: want a duration up to %s (%v)", maxLoadDuration, err)
	}
	b := setupBench(t, "atomic", pages, "  trusted_proxies: [127.0.0.1]\n  defenses:\n    rate_limit: { requests: 100, per: 10s }\n")

	// Warm the cache the way visitors would: every URL once, each from its own visitor.
	warm := func() {
		tr := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		work := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					req, _ := http.NewRequest("GET", b.v.URL+b.paths[i], nil)
					req.Host = b.host
					req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.200.%d.%d", i>>8&0xff, i&0xff))
					if resp, err := client.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		for i := range b.paths {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	warm()

	type run struct {
		name           string
		normal, attack *LoadResult
		origin         int64
		load           string
	}
	var runs []run
	// The no-attack run comes first and last: the machine is shared, and the two show
	// how much of a difference is the attack and how much the machine.
	for i, profile := range []string{"", "query", "path", ""} {
		ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
		before := b.proxy.requests.Load()
		var wg sync.WaitGroup
		var attack *LoadResult
		var aerr error
		if profile != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				attack, aerr = Load(ctx, LoadOptions{URL: b.v.URL, Host: b.host, Paths: b.paths, Rate: attackRate,
					Duration: duration, Conns: 32, Seed: uint64(100 + i), LocalIP: "127.0.0.2", Vary: profile,
					OK: func(int) bool { return true }})
			}()
		}
		normal, err := Load(ctx, LoadOptions{URL: b.v.URL, Host: b.host, Paths: b.paths, Zipf: 1.1, Rate: rate,
			Duration: duration, Conns: conns, Seed: uint64(1 + i), LocalIP: "127.0.0.1", ClientIPs: 5000})
		wg.Wait()
		cancel()
		if err != nil || aerr != nil {
			t.Fatalf("load (%s): %v %v", profile, err, aerr)
		}
		name := "no attack"
		if i > 0 && profile == "" {
			name = "no attack, again"
		}
		if profile != "" {
			name = profile + " flood"
		}
		runs = append(runs, run{name: name, normal: normal, attack: attack, origin: b.proxy.requests.Load() - before, load: loadavg()})
		if normal.Errors > 0 {
			t.Errorf("%s: %d errors in the normal traffic, the first: %s", name, normal.Errors, normal.FirstError)
		}
	}

	var tab strings.Builder
	fmt.Fprintf(&tab, "\n| run (%s each) | normal p50 | normal p99 | normal errors | normal req/s | attack req/s (statuses) | origin requests | load avg after |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n", duration)
	for _, r := range runs {
		att := "-"
		if r.attack != nil {
			att = fmt.Sprintf("%.0f %v", r.attack.Throughput, r.attack.Statuses)
		}
		fmt.Fprintf(&tab, "| %s | %s | %s | %d | %.0f | %s | %d | %s |\n", r.name,
			r.normal.P50.Round(10*time.Microsecond), r.normal.P99.Round(10*time.Microsecond), r.normal.Errors, r.normal.Throughput, att, r.origin, r.load)
	}
	t.Logf("%d URLs, normal %d req/s over %d connections from 5,000 visitors, attacks %d req/s from one client; %d CPUs%s",
		len(b.paths), rate, conns, attackRate, runtime.NumCPU(), tab.String())
}
