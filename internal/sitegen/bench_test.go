package sitegen

import (
	"flag"
	"strings"
	"testing"

	"github.com/stump-dev/stump/build"
)

// TestGeneratedSiteBuilds checks that stump accepts what Generate writes.
func TestGeneratedSiteBuilds(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, Options{Pages: 40, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	ws, err := build.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ws.Build(t.Context(), "gen", build.Options{NoWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	// 40 pages, the home, 8 sections and their pagers, taxonomy and term pages.
	if res.Pages <= 40+1+8 {
		t.Errorf("built %d pages from 40 content pages, want more (lists and terms)", res.Pages)
	}
}

func BenchmarkBuild1k(b *testing.B) { benchBuild(b, 1000, false) }

// BenchmarkBuild1kShortcodes is BenchmarkBuild1k with a figure shortcode in every page.
func BenchmarkBuild1kShortcodes(b *testing.B) { benchBuild(b, 1000, true) }

// BenchmarkBuild10k runs only when -bench names it, as in -bench Build10k: generating
// and building 10,000 pages takes long for a routine -bench=. run.
func BenchmarkBuild10k(b *testing.B) {
	if !strings.Contains(flag.Lookup("test.bench").Value.String(), "10k") {
		b.Skip("10,000 pages: run with -bench Build10k")
	}
	benchBuild(b, 10000, false)
}

// BenchmarkBuild10kShortcodes is BenchmarkBuild10k with a figure shortcode in every page
// (compare the two: -bench 'Build10k').
func BenchmarkBuild10kShortcodes(b *testing.B) {
	if !strings.Contains(flag.Lookup("test.bench").Value.String(), "10k") {
		b.Skip("10,000 pages: run with -bench Build10k")
	}
	benchBuild(b, 10000, true)
}

// benchBuild generates a site of n pages once, then times clean builds of it (written to
// disk, as `stump build` does), reporting content pages built per second.
func benchBuild(b *testing.B, n int, shortcodes bool) {
	dir := b.TempDir()
	if err := Generate(dir, Options{Pages: n, Seed: 1, Shortcodes: shortcodes}); err != nil {
		b.Fatal(err)
	}
	ws, err := build.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ws.Build(b.Context(), "gen", build.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
