//go:build bench

package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// TestSessionLatency measures watch-mode rebuild times on a generated site: a body edit,
// a title edit (structural) and a template edit, against the first full build. It is built
// only with the "bench" tag; STUMP_BENCH_WATCH names a workspace made by cmd/sitegen
// (site "gen"):
//
//	go run ./cmd/sitegen -pages 10000 -out /tmp/gen10k
//	STUMP_BENCH_WATCH=/tmp/gen10k go test -tags bench -run TestSessionLatency -v ./build/
func TestSessionLatency(t *testing.T) {
	dir := os.Getenv("STUMP_BENCH_WATCH")
	if dir == "" {
		t.Fatal("set STUMP_BENCH_WATCH to a sitegen workspace (go run ./cmd/sitegen -pages 10000 -out DIR)")
	}
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := ws.NewSession("gen", Options{})
	defer s.Close()
	start := time.Now()
	u, err := s.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fullTime := time.Since(start)
	// Pick pages to edit.
	var files []string
	filepath.WalkDir(filepath.Join(ws.SiteDir("gen"), "content"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".md" && filepath.Base(p) != "_index.md" {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	measure := func(name string, n int, edit func(i int) string) {
		var ds []time.Duration
		var rendered int
		for i := range n {
			p := edit(i)
			t0 := time.Now()
			u, err := s.Apply(context.Background(), []string{p})
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
			rendered = u.Rendered
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		p50, p95 := ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*95/100)]
		fmt.Printf("| %s | %d | %s | %s | %d |\n", name, n, p50.Round(100*time.Microsecond), p95.Round(100*time.Microsecond), rendered)
	}
	fmt.Printf("full build: %d pages rendered in %s\n\n| edit | runs | p50 | p95 | pages rendered |\n| --- | ---: | ---: | ---: | ---: |\n", u.Rendered, fullTime.Round(time.Millisecond))
	appendTo := func(p, text string) {
		b, _ := os.ReadFile(p)
		os.WriteFile(p, append(b, []byte(text)...), 0o644)
	}
	measure("content body", 50, func(i int) string {
		p := files[(i*7919)%len(files)]
		appendTo(p, "\nEdit "+strconv.Itoa(i)+".\n")
		return p
	})
	measure("title (structural)", 10, func(i int) string {
		p := files[(i*104729)%len(files)]
		b, _ := os.ReadFile(p)
		b = []byte(replaceOnce(string(b), "title: ", "title: Edited "))
		os.WriteFile(p, b, 0o644)
		return p
	})
	measure("template", 3, func(i int) string {
		p := filepath.Join(ws.SiteDir("gen"), "layouts", "_default", "single.html")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(`{{ define "main" }}<h1>{{ .Title }}</h1>{{ .Content }}<!-- `+strconv.Itoa(i)+` -->{{ end }}`), 0o644)
		return p
	})
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}
