package build

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want/ sections of testdata/render/*.txtar")

// TestGolden builds each workspace in testdata/render/*.txtar in memory and compares the
// files named by its "want/<path>" sections. Run one case with -run TestGolden/<name>;
// rewrite expectations with -update.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/render/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			site := ""
			for _, f := range ar.Files {
				if strings.HasPrefix(f.Name, "want/") {
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(f.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
				if parts := strings.Split(f.Name, "/"); len(parts) == 3 && parts[0] == "sites" && parts[2] == "site.yaml" {
					site = parts[1]
				}
			}
			ws, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ws.Build(context.Background(), site, Options{NoWrite: true, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			changed := false
			for i, f := range ar.Files {
				p, ok := strings.CutPrefix(f.Name, "want/")
				if !ok {
					continue
				}
				got, ok := res.Tree[p]
				if !ok {
					t.Errorf("%s: not built; built: %v", p, keys(res.Tree))
					continue
				}
				// txtar ends every file with a newline; a file without one matches too.
				if string(got) != string(f.Data) && string(got)+"\n" != string(f.Data) {
					if *update {
						ar.Files[i].Data = got
						changed = true
						continue
					}
					t.Errorf("%s differs:\n%s", p, diffLines(string(f.Data), string(got)))
				}
			}
			if changed {
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// diffLines is a small line diff: lines only in want with "-", only in got with "+".
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			i++
			j++
		case j < len(g) && (i >= len(w) || !contains(w[i:], g[j])):
			b.WriteString("+ " + g[j] + "\n")
			j++
		default:
			b.WriteString("- " + w[i] + "\n")
			i++
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
