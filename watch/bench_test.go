//go:build bench

package watch

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stump-dev/stump/build"
)

// TestWatchLatency measures `stump watch` end to end on a generated site: from a file
// saved on disk to the rebuild done and the event received on a live-reload stream
// (a real SSE client over loopback), for content and template edits, against a full
// build. It runs only when STUMP_BENCH_WATCH names a workspace made by cmd/sitegen
// (site "gen"); it edits that workspace's files:
//
//	go run ./cmd/sitegen -pages 10000 -out /tmp/gen10k
//	STUMP_BENCH_WATCH=/tmp/gen10k go test -tags bench -run TestWatchLatency -v ./watch/
//
// STUMP_BENCH_EDITS sets the number of content edits (default 50). It also measures
// save → new text served: the edited page fetched over HTTP (every half millisecond)
// until it holds the new text; with STUMP_BENCH_HUGO (a hugo binary) and
// STUMP_BENCH_HUGO_SITE (the same content as a Hugo site: sitegen -hugo DIR), the same
// for `hugo server` in the same run.
func TestWatchLatency(t *testing.T) {
	dir := os.Getenv("STUMP_BENCH_WATCH")
	if dir == "" {
		t.Fatal("set STUMP_BENCH_WATCH to a sitegen workspace (go run ./cmd/sitegen -pages 10000 -out DIR)")
	}
	edits := 50
	if n, err := strconv.Atoi(os.Getenv("STUMP_BENCH_EDITS")); err == nil && n > 0 {
		edits = n
	}
	ws, err := build.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	siteDir := ws.SiteDir("gen")
	layout := filepath.Join(siteDir, "layouts", "_default", "single.html")
	os.Remove(layout)
	defer os.Remove(layout)

	// Full builds, for comparison: in memory (what watch does first) and to disk.
	var mem, disk []time.Duration
	pages := 0
	for range 3 {
		s := ws.NewSession("gen", build.Options{})
		t0 := time.Now()
		u, err := s.Build(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mem = append(mem, time.Since(t0))
		pages = u.Rendered
		s.Close()
		t0 = time.Now()
		if _, err := ws.Build(context.Background(), "gen", build.Options{OutDir: filepath.Join(t.TempDir(), "out")}); err != nil {
			t.Fatal(err)
		}
		disk = append(disk, time.Since(t0))
	}

	h := startWatchAt(t, dir, "gen", nil)
	stream := openStream(t, h.url+"_stump/events")
	if ev, _ := stream.next(10 * time.Second); ev.name != "hello" {
		t.Fatalf("first event %+v", ev)
	}

	var files []string
	filepath.WalkDir(filepath.Join(siteDir, "content"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".md" && filepath.Base(p) != "_index.md" {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)

	type sample struct {
		toEvent, rebuild, toBatch time.Duration
		rendered                  int
		event                     string
	}
	// measure runs n edits: edit writes the file(s) and returns when it wrote them.
	measure := func(name string, n int, want string, edit func(i int)) []sample {
		var out []sample
		for i := range n {
			// Let the previous change settle (no batch pending).
			time.Sleep(150 * time.Millisecond)
			t0 := time.Now()
			edit(i)
			var ev sseEvent
			for {
				e, ok := stream.next(2 * time.Minute)
				if !ok {
					t.Fatalf("%s #%d: no event", name, i)
				}
				if e.name != "hello" {
					ev = e
					break
				}
			}
			got := time.Since(t0)
			r := h.rebuilt()
			if r.Err != nil || ev.name != want {
				t.Fatalf("%s #%d: event %q (want %q), err %v", name, i, ev.name, want, r.Err)
			}
			out = append(out, sample{toEvent: got, rebuild: r.Update.Duration, toBatch: r.Received.Sub(t0), rendered: r.Update.Rendered, event: ev.name})
		}
		return out
	}
	appendTo := func(p, text string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(b, text...), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	type row struct {
		name    string
		samples []sample
	}
	var rows []row
	rows = append(rows, row{"content body edit", measure("content", edits, "reload", func(i int) {
		appendTo(files[(i*7919)%len(files)], "\nEdit "+strconv.Itoa(i)+".\n")
	})})
	rows = append(rows, row{"content title edit (structural)", measure("title", 10, "reload", func(i int) {
		p := files[(i*104729)%len(files)]
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), "title: ", "title: Edited ", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	})})
	rows = append(rows, row{"template edit (layout override)", measure("template", 5, "reload", func(i int) {
		os.MkdirAll(filepath.Dir(layout), 0o755)
		text := `{{ define "main" }}<article><h1>{{ .Title }}</h1>{{ .Content }}<p hidden>edit ` + strconv.Itoa(i) + `</p></article>{{ end }}`
		if err := os.WriteFile(layout, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	})})

	// Save → new text served: the same content files (relative to content/) in both.
	served := func(name, base, contentDir string, n int) []time.Duration {
		var out []time.Duration
		for i := range n {
			time.Sleep(150 * time.Millisecond)
			rel, _ := filepath.Rel(filepath.Join(siteDir, "content"), files[(i*6151+3)%len(files)])
			f := filepath.Join(contentDir, rel)
			url := base + strings.TrimSuffix(filepath.ToSlash(rel), ".md") + "/"
			marker := fmt.Sprintf("Served%sEdit%d", name, i)
			t0 := time.Now()
			appendTo(f, "\n"+marker+"\n")
			if !waitServed(url, marker, 2*time.Minute) {
				t.Fatalf("%s #%d: %s never served the new text", name, i, url)
			}
			out = append(out, time.Since(t0))
		}
		return out
	}
	stumpServed := served("stump", h.url, filepath.Join(siteDir, "content"), edits)
	var hugoServed []time.Duration
	if bin, hsite := os.Getenv("STUMP_BENCH_HUGO"), os.Getenv("STUMP_BENCH_HUGO_SITE"); bin != "" && hsite != "" {
		base, stop := startHugoServer(t, bin, hsite)
		hugoServed = served("hugo", base, filepath.Join(hsite, "content"), edits)
		stop()
	}

	pct := func(ds []time.Duration, p int) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, len(s)*p/100)]
	}
	r := func(d time.Duration) string { return roundDur(d).String() }
	fmt.Printf("\nsite: %s, %d pages rendered by a full build\n", dir, pages)
	fmt.Printf("full build in memory (what watch does first): p50 %s (3 runs); full build to disk (stump build): p50 %s\n\n", r(pct(mem, 50)), r(pct(disk, 50)))
	fmt.Println("| edit | runs | save → event on the SSE stream p50 | p95 | rebuild (engine) p50 | p95 | save → batch (watcher) p50 | pages rendered |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, row := range rows {
		var te, rb, tb []time.Duration
		for _, s := range row.samples {
			te, rb, tb = append(te, s.toEvent), append(rb, s.rebuild), append(tb, s.toBatch)
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %d |\n", row.name, len(row.samples),
			r(pct(te, 50)), r(pct(te, 95)), r(pct(rb, 50)), r(pct(rb, 95)), r(pct(tb, 50)), row.samples[len(row.samples)-1].rendered)
	}
	fmt.Println("\n| save → new text served over HTTP | runs | p50 | p95 |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	fmt.Printf("| stump watch | %d | %s | %s |\n", len(stumpServed), r(pct(stumpServed, 50)), r(pct(stumpServed, 95)))
	if len(hugoServed) > 0 {
		fmt.Printf("| hugo server | %d | %s | %s |\n", len(hugoServed), r(pct(hugoServed, 50)), r(pct(hugoServed, 95)))
		fmt.Printf("\nstump/hugo (p50): %.3f×\n", float64(pct(stumpServed, 50))/float64(pct(hugoServed, 50)))
	} else {
		fmt.Println("\n(hugo server not measured: set STUMP_BENCH_HUGO and STUMP_BENCH_HUGO_SITE)")
	}
}

// waitServed fetches url until its body contains marker.
func waitServed(url, marker string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), marker) {
				return true
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return false
}

// startHugoServer runs `hugo server` for site on a free loopback port and waits until it
// serves the home page.
func startHugoServer(t *testing.T, bin, site string) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "server", "-s", site, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--baseURL", "http://127.0.0.1:"+strconv.Itoa(port)+"/", "--appendPort=false", "--cacheDir", filepath.Join(t.TempDir(), "cache"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, stop
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	t.Fatal("hugo server did not come up")
	return "", nil
}
