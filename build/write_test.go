package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/manifest"
)

// treeState is what a folder holds: every file's bytes and inode, every folder.
type treeState struct {
	files  map[string]string
	inodes map[string]uint64
	dirs   map[string]bool
}

func snapshot(t *testing.T, dir string) treeState {
	t.Helper()
	s := treeState{files: map[string]string{}, inodes: map[string]uint64{}, dirs: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			s.dirs[rel] = true
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		s.files[rel] = string(b)
		s.inodes[rel] = fi.Sys().(*syscall.Stat_t).Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s treeState) equal(t *testing.T, o treeState, what string) {
	t.Helper()
	if !maps.Equal(s.files, o.files) {
		for p := range s.files {
			if s.files[p] != o.files[p] {
				t.Errorf("%s: %s differs", what, p)
			}
		}
		for p := range o.files {
			if _, ok := s.files[p]; !ok {
				t.Errorf("%s: %s is extra", what, p)
			}
		}
	}
	if !maps.Equal(s.dirs, o.dirs) {
		t.Errorf("%s: folders differ:\n%v\n%v", what, s.dirs, o.dirs)
	}
}

func writeSite() map[string]string {
	files := goodSite()
	files["sites/x/content/news/b.md"] = "---\ntitle: B\ndate: 2026-01-03\n---\nBody of B.\n"
	files["sites/x/content/news/c.md"] = "---\ntitle: C\ndate: 2026-01-04\n---\nBody of C.\n"
	files["sites/x/static/img/logo.txt"] = "logo\n"
	return files
}

// TestWriteOnlyChanged: a rebuild writes only the files whose bytes changed (the others
// keep their inode), deletes what is gone, repairs a file edited in the output, and
// ends with the same tree as a clean build.
func TestWriteOnlyChanged(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, writeSite())
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := ws.OutDir("x")
	res, err := ws.Build(context.Background(), "x", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != res.Files || res.Unchanged != 0 {
		t.Fatalf("clean build: written %d unchanged %d of %d", res.Written, res.Unchanged, res.Files)
	}
	before := snapshot(t, out)

	// Nothing changed: nothing written, not even the manifest.
	res, err = ws.Build(context.Background(), "x", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Unchanged != res.Files {
		t.Fatalf("no-op rebuild: written %d unchanged %d of %d", res.Written, res.Unchanged, res.Files)
	}
	again := snapshot(t, out)
	before.equal(t, again, "no-op rebuild")
	if !maps.Equal(before.inodes, again.inodes) {
		t.Error("a no-op rebuild replaced files")
	}

	// One body edited, one page removed, one output file tampered with.
	writeFiles(t, dir, map[string]string{"sites/x/content/news/b.md": "---\ntitle: B\ndate: 2026-01-03\n---\nBody of B, edited.\n"})
	if err := os.Remove(filepath.Join(dir, "sites/x/content/news/c.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "img/logo.txt"), []byte("LOGO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = ws.Build(context.Background(), "x", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, out)
	if res.Written == 0 || res.Written >= res.Files/2 {
		t.Errorf("one page edited: %d of %d files written", res.Written, res.Files)
	}
	if after.inodes["news/a/index.html"] != before.inodes["news/a/index.html"] {
		t.Error("an unchanged page was rewritten")
	}
	if !strings.Contains(after.files["news/b/index.html"], "edited") {
		t.Error("the edited page was not written")
	}
	if after.files["img/logo.txt"] != "logo\n" {
		t.Error("a file edited in the output was not repaired")
	}
	if after.dirs["news/c"] {
		t.Error("the removed page's folder is still there")
	}
	clean, err := ws.Build(context.Background(), "x", Options{Now: now, OutDir: filepath.Join(t.TempDir(), "clean")})
	if err != nil {
		t.Fatal(err)
	}
	snapshot(t, clean.Dir).equal(t, after, "incremental vs clean build")
	if left, _ := filepath.Glob(filepath.Join(dir, "public", ".stump-[tj]*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestWriteFailureRollsBack: a build failing while it writes (here: at the manifest,
// after every changed page was written in place) leaves the previous output exactly as
// it was, and so does a build killed mid-write, once the next build starts.
func TestWriteFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, writeSite())
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := ws.OutDir("x")
	if _, err := ws.Build(context.Background(), "x", Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)

	// Edits that replace, add and remove files and folders.
	writeFiles(t, dir, map[string]string{
		"sites/x/content/news/b.md":     "---\ntitle: B\ndate: 2026-01-03\n---\nBody of B, edited.\n",
		"sites/x/content/fresh/deep.md": "---\ntitle: Deep\ndate: 2026-01-05\n---\nNew.\n",
	})
	if err := os.Remove(filepath.Join(dir, "sites/x/content/news/c.md")); err != nil {
		t.Fatal(err)
	}
	boom := failManifestWrite(t)
	if _, err := ws.Build(context.Background(), "x", Options{Now: now}); !errors.Is(err, boom) {
		t.Fatalf("build error %v, want the injected one", err)
	}
	before.equal(t, snapshot(t, out), "after a failed write")
	if left, _ := filepath.Glob(filepath.Join(dir, "public", ".stump-[tj]*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	// Killed mid-write: the writer stops without commit or abort; its journal stays.
	journalFault = nil
	st, ls, err := ws.load(context.Background(), "x", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	wr, err := newWriter(out, 2, st.cfg.CheckLinks == config.LinksOff) // as Build: pages stay in memory for the link check
	if err != nil {
		t.Fatal(err)
	}
	st.out.onAdd = wr.put
	if err := st.render(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	if err := wr.wait(); err != nil {
		t.Fatal(err)
	}
	wr.unlock() // a killed process's lock goes with it
	st.close()
	if snapshot(t, out).files["news/b/index.html"] == before.files["news/b/index.html"] {
		t.Fatal("the interrupted writer changed nothing; the test tests nothing")
	}
	if err := recoverJournal(out); err != nil {
		t.Fatal(err)
	}
	before.equal(t, snapshot(t, out), "after recovering a killed build")

	// A torn last journal line (killed while appending) is skipped.
	wr, err = newWriter(out, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	j, err := wr.journal()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.replace(out, "news/a/index.html", []byte("half")); err != nil {
		t.Fatal(err)
	}
	_, _ = j.log.WriteString(`N -1 "news/a/ind`)
	_ = wr.wait()
	wr.unlock()
	if err := recoverJournal(out); err != nil {
		t.Fatal(err)
	}
	before.equal(t, snapshot(t, out), "after a torn journal")

	// The next build finishes normally.
	if _, err := ws.Build(context.Background(), "x", Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	clean, err := ws.Build(context.Background(), "x", Options{Now: now, OutDir: filepath.Join(t.TempDir(), "clean")})
	if err != nil {
		t.Fatal(err)
	}
	snapshot(t, clean.Dir).equal(t, snapshot(t, out), "rebuild vs clean build")
}

// TestConcurrentBuildsTakeTurns: builds of one output folder at the same time (two
// terminals, a script and an editor hook) take turns instead of meeting in the folder
// or undoing each other's journal; each succeeds and the result is a clean build's.
func TestConcurrentBuildsTakeTurns(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, writeSite())
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Build(context.Background(), "x", Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		writeFiles(t, dir, map[string]string{"sites/x/content/news/b.md": fmt.Sprintf("---\ntitle: B\ndate: 2026-01-03\n---\nRound %d.\n", round)})
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := ws.Build(context.Background(), "x", Options{Now: now})
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	clean, err := ws.Build(context.Background(), "x", Options{Now: now, OutDir: filepath.Join(t.TempDir(), "clean")})
	if err != nil {
		t.Fatal(err)
	}
	snapshot(t, clean.Dir).equal(t, snapshot(t, ws.OutDir("x")), "after concurrent builds")
}

// failManifestWrite makes the journal fail writing the manifest, a build's last write,
// until the test ends (or journalFault is reset), and returns the error it fails with.
func failManifestWrite(t *testing.T) error {
	boom := errors.New("disk full")
	journalFault = func(rel string) error {
		if rel == manifest.FileName {
			return boom
		}
		return nil
	}
	t.Cleanup(func() { journalFault = nil })
	return boom
}

// openSite writes files into a fresh workspace and opens it.
func openSite(t *testing.T, files map[string]string) (string, *Workspace) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ws
}
