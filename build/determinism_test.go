package build

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sort"
	"testing"

	"github.com/stump-dev/stump/internal/codecorpus"
)

// codeSite is a workspace of two sites whose pages are mostly fenced code blocks in many
// languages (package codecorpus): "code" has every sample twice, "codeln" (highlighted
// with line numbers and a named style) once.
func codeSite() map[string]string {
	files := map[string]string{
		"stump.yaml":                     "output: public\n",
		"sites/code/site.yaml":           "title: Code\nbaseURL: https://code.example.org/\n",
		"sites/codeln/site.yaml":         "title: Code LN\nbaseURL: https://ln.example.org/\nmarkdown:\n  highlight:\n    style: monokai\n    lineNumbers: true\n",
		"sites/code/content/_index.md":   "---\ntitle: Home\n---\nCode samples.\n",
		"sites/codeln/content/_index.md": "---\ntitle: Home\n---\nCode samples.\n",
	}
	n := len(codecorpus.Samples())
	for i := range n {
		page := fmt.Sprintf("---\ntitle: Page %d\ndate: 2026-01-%02d\ntags: [t%d]\n---\n%s", i, i+1, i%3, codecorpus.Page(i, 2))
		files[fmt.Sprintf("sites/code/content/code/p%02d.md", i)] = page
		if i%2 == 0 { // every sample once
			files[fmt.Sprintf("sites/codeln/content/code/p%02d.md", i)] = page
		}
	}
	return files
}

// TestBuildSameBytesWithAnyWorkers builds the repository's example sites and a
// code-heavy workspace with one render worker and with many, and checks that every
// output file (and the manifest) is byte for byte the same: the number of workers, and
// how the scheduler interleaves them, must not show in the output. Highlighting used to
// (chroma cut regular-expression matches off by wall-clock time, see package markdown);
// run it with -race.
func TestBuildSameBytesWithAnyWorkers(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, codeSite())
	code, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := Open("..")
	if err != nil {
		t.Fatal(err)
	}
	exampleSites, err := examples.Sites()
	if err != nil || len(exampleSites) < 2 {
		t.Fatalf("example sites: %v %v", exampleSites, err)
	}
	many := max(64, 8*runtime.GOMAXPROCS(0))
	for _, c := range []struct {
		ws    *Workspace
		sites []string
	}{{examples, exampleSites}, {code, []string{"code", "codeln"}}} {
		for _, site := range c.sites {
			t.Run(site, func(t *testing.T) {
				build := func(workers int) *Result {
					res, err := c.ws.Build(context.Background(), site, Options{NoWrite: true, Now: now, Workers: workers})
					if err != nil {
						t.Fatalf("%d workers: %v", workers, err)
					}
					return res
				}
				one, par := build(1), build(many)
				if diffs := treeDiffs(one, par); len(diffs) > 0 {
					t.Errorf("1 worker and %d workers built different trees:\n%s", many, diffs)
				}
				if site == "code" && !bytes.Contains(one.Tree["code/p00/index.html"], []byte(`<span class="nb">puts</span>`)) {
					t.Errorf("code/p00/index.html does not highlight Ruby's puts as a builtin:\n%s", one.Tree["code/p00/index.html"])
				}
			})
		}
	}
}

// treeDiffs lists the files that differ between two builds (missing, extra or with
// other bytes), and the manifests if they differ; empty when the builds are equal.
func treeDiffs(a, b *Result) string {
	var diffs []string
	for p, data := range a.Tree {
		other, ok := b.Tree[p]
		switch {
		case !ok:
			diffs = append(diffs, "only in the first: "+p)
		case !bytes.Equal(data, other):
			diffs = append(diffs, "differs: "+p)
		}
	}
	for p := range b.Tree {
		if _, ok := a.Tree[p]; !ok {
			diffs = append(diffs, "only in the second: "+p)
		}
	}
	ma, errA := a.Manifest.Marshal()
	mb, errB := b.Manifest.Marshal()
	if errA != nil || errB != nil || !bytes.Equal(ma, mb) {
		diffs = append(diffs, fmt.Sprintf("manifests differ (%v, %v)", errA, errB))
	}
	sort.Strings(diffs)
	var out bytes.Buffer
	for _, d := range diffs {
		out.WriteString(d + "\n")
	}
	return out.String()
}
