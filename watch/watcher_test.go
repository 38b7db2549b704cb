package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestIgnored(t *testing.T) {
	for _, name := range []string{
		".x.md.swp", ".x.md.swx", "x.md.swp", "x.md.swo", "x.md.swx", "4913", "5036", "x.md~",
		"#x.md#", ".#x.md", "x.md___jb_tmp___", "x.md___jb_old___", "x.md.tmp",
		"x.md.1a2b.crswap", ".DS_Store", ".git", ".stump-tmp-123", "",
	} {
		if !Ignored(name) {
			t.Errorf("Ignored(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"x.md", "_index.md", "site.yaml", "stump.yaml", "site.css", "2024.md", "#hash.md", "swap.md", "a.sw"} {
		if Ignored(name) {
			t.Errorf("Ignored(%q) = true, want false", name)
		}
	}
}

// settleMode, as a poll interval, asks newTestTree for fsnotify with Settle on (what
// stump watch uses): every editor's save must still come as one batch.
const settleMode = -1

// watchModes runs a test with fsnotify, with fsnotify and Settle, and with polling.
func watchModes(t *testing.T, f func(t *testing.T, poll time.Duration)) {
	t.Run("fsnotify", func(t *testing.T) { f(t, 0) })
	t.Run("settle", func(t *testing.T) { f(t, settleMode) })
	t.Run("poll", func(t *testing.T) { f(t, 40*time.Millisecond) })
}

type testTree struct {
	t    *testing.T
	root string // the watched folder
	w    *Watcher
}

func newTestTree(t *testing.T, poll time.Duration, setup func(root string)) *testTree {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "site")
	if err := os.MkdirAll(filepath.Join(root, "content"), 0o755); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(root)
	}
	// Files written by the setup get an older modification time, so that polling sees a
	// rewrite of the same size within the same clock tick.
	old := time.Now().Add(-time.Hour)
	_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	opts := WatcherOptions{
		Dirs:  []string{root},
		Files: []string{filepath.Join(base, "stump.yaml")},
		Poll:  poll,
		Quiet: 150 * time.Millisecond, MaxWait: 2 * time.Second,
	}
	if poll == settleMode {
		opts.Poll, opts.Settle = 0, DefaultSettle
	}
	w, err := NewWatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if opts.Poll == 0 && w.Polling() {
		t.Fatal("fsnotify watcher fell back to polling")
	}
	return &testTree{t: t, root: root, w: w}
}

func (tt *testTree) path(rel string) string {
	return filepath.Join(tt.root, filepath.FromSlash(rel))
}

func (tt *testTree) write(rel, text string) {
	tt.t.Helper()
	p := tt.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tt.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tt.t.Fatal(err)
	}
}

func (tt *testTree) rename(from, to string) {
	tt.t.Helper()
	if err := os.Rename(tt.path(from), tt.path(to)); err != nil {
		tt.t.Fatal(err)
	}
}

func (tt *testTree) remove(rel string) {
	tt.t.Helper()
	if err := os.RemoveAll(tt.path(rel)); err != nil {
		tt.t.Fatal(err)
	}
}

// expect waits for the next batch and checks it holds exactly want (relative paths).
func (tt *testTree) expect(want ...string) {
	tt.t.Helper()
	got := tt.next(5 * time.Second)
	if got == nil {
		tt.t.Fatalf("no batch within 5s, want %v", want)
	}
	var wantAbs []string
	for _, w := range want {
		wantAbs = append(wantAbs, tt.path(w))
	}
	sort.Strings(wantAbs)
	if !slices.Equal(got, wantAbs) {
		tt.t.Fatalf("batch\n  %v\nwant\n  %v", tt.rel(got), want)
	}
}

// expectNone checks that no batch comes within d.
func (tt *testTree) expectNone(d time.Duration) {
	tt.t.Helper()
	if got := tt.next(d); got != nil {
		tt.t.Fatalf("unexpected batch %v", tt.rel(got))
	}
}

func (tt *testTree) next(d time.Duration) []string {
	select {
	case b := <-tt.w.Batches():
		return b
	case <-time.After(d):
		return nil
	}
}

func (tt *testTree) rel(paths []string) []string {
	var out []string
	for _, p := range paths {
		r, err := filepath.Rel(tt.root, p)
		if err != nil {
			r = p
		}
		out = append(out, filepath.ToSlash(r))
	}
	return out
}

func TestWatcherCreateWriteDelete(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, func(root string) {
			os.WriteFile(filepath.Join(root, "content", "x.md"), []byte("one"), 0o644)
		})
		tt.write("content/new.md", "new")
		tt.expect("content/new.md")
		tt.write("content/x.md", "two")
		tt.expect("content/x.md")
		tt.remove("content/x.md")
		tt.expect("content/x.md")
		tt.expectNone(300 * time.Millisecond)
	})
}

func TestWatcherRenameSave(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, func(root string) {
			os.WriteFile(filepath.Join(root, "content", "x.md"), []byte("one"), 0o644)
		})
		// VS Code, helix, most tools: write a temporary file, rename it over the real one.
		tt.write("content/x.md.tmp", "two, longer")
		tt.rename("content/x.md.tmp", "content/x.md")
		tt.expect("content/x.md")

		// JetBrains' safe write: x.md___jb_tmp___ written, x.md moved to
		// x.md___jb_old___, the temporary renamed to x.md, the old one deleted.
		tt.write("content/x.md___jb_tmp___", "three, longer still")
		tt.rename("content/x.md", "content/x.md___jb_old___")
		tt.rename("content/x.md___jb_tmp___", "content/x.md")
		tt.remove("content/x.md___jb_old___")
		tt.expect("content/x.md")

		// vim (backupcopy=no/auto): probe file 4913 created and deleted, x.md renamed to
		// the backup x.md~, a new x.md written, the backup deleted.
		tt.write("content/4913", "")
		tt.remove("content/4913")
		tt.rename("content/x.md", "content/x.md~")
		tt.write("content/x.md", "four")
		tt.remove("content/x.md~")
		tt.expect("content/x.md")

		// emacs: an auto-save file and a lock link come and go around a plain write.
		tt.write("content/#x.md#", "auto-save")
		if err := os.Symlink("user@host.123", tt.path("content/.#x.md")); err != nil {
			t.Fatal(err)
		}
		tt.write("content/x.md", "five!")
		tt.remove("content/#x.md#")
		tt.remove("content/.#x.md")
		tt.expect("content/x.md")

		// sed -i and perl -i: a temporary file with an ordinary name, renamed over the
		// file. The temporary file was created and is gone: not reported.
		tt.write("content/sedX1b2c3", "six, via sed")
		tt.rename("content/sedX1b2c3", "content/x.md")
		tt.expect("content/x.md")

		// A file created and deleted within one batch changes nothing.
		tt.write("content/scratch", "tmp")
		tt.remove("content/scratch")
		tt.expectNone(400 * time.Millisecond)
	})
}

func TestWatcherNewFolder(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, nil)
		tt.write("content/new/deep/a.md", "a")
		tt.expect("content/new/deep/a.md")
		// The new folders are watched: a later file in them is seen.
		tt.write("content/new/deep/b.md", "b")
		tt.expect("content/new/deep/b.md")
		tt.write("content/new/c.md", "c")
		tt.expect("content/new/c.md")
		// A folder moved in from outside the tree, with files in it.
		outside := filepath.Join(filepath.Dir(tt.root), "outside")
		os.MkdirAll(filepath.Join(outside, "sub"), 0o755)
		os.WriteFile(filepath.Join(outside, "sub", "d.md"), []byte("d"), 0o644)
		if err := os.Rename(outside, tt.path("content/moved")); err != nil {
			t.Fatal(err)
		}
		tt.expect("content/moved/sub/d.md")
		tt.write("content/moved/sub/e.md", "e")
		tt.expect("content/moved/sub/e.md")
	})
}

func TestWatcherRemoveFolder(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, func(root string) {
			os.MkdirAll(filepath.Join(root, "content", "old"), 0o755)
			os.WriteFile(filepath.Join(root, "content", "old", "a.md"), []byte("a"), 0o644)
		})
		tt.remove("content/old")
		got := tt.rel(tt.next(5 * time.Second))
		// fsnotify reports the folder (and the file, when the removal was seen file by
		// file); polling reports the file.
		if !slices.Contains(got, "content/old/a.md") && !slices.Contains(got, "content/old") {
			t.Fatalf("batch %v does not name the removed folder or its file", got)
		}
		// Moving a folder away reports it too, and its files are no longer watched.
		tt.write("content/gone/b.md", "b")
		tt.expect("content/gone/b.md")
		os.Rename(tt.path("content/gone"), filepath.Join(filepath.Dir(tt.root), "away"))
		got = tt.rel(tt.next(5 * time.Second))
		if !slices.Contains(got, "content/gone/b.md") && !slices.Contains(got, "content/gone") {
			t.Fatalf("batch %v does not name the moved folder or its file", got)
		}
		os.WriteFile(filepath.Join(filepath.Dir(tt.root), "away", "b.md"), []byte("bb"), 0o644)
		tt.expectNone(300 * time.Millisecond)
	})
}

func TestWatcherIgnoresEditorFiles(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, nil)
		for _, name := range []string{
			".x.md.swp", ".x.md.swx", "x.md.swp", "4913", "x.md~", "#x.md#", "x.md___jb_tmp___",
			"x.md___jb_old___", "x.md.tmp", "x.md.3f2a.crswap", ".stump-tmp-42", ".DS_Store",
		} {
			tt.write("content/"+name, "junk")
		}
		tt.write(".git/objects/ab/cdef", "blob")
		tt.write("content/.hidden/x.md", "hidden folder")
		tt.expectNone(500 * time.Millisecond)
		// Files in an ignored folder stay ignored later on.
		tt.write("content/.hidden/y.md", "y")
		tt.expectNone(300 * time.Millisecond)
	})
}

func TestWatcherBurst(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		base := t.TempDir()
		root := filepath.Join(base, "site")
		os.MkdirAll(filepath.Join(root, "content"), 0o755)
		// A checkout of 500 files is reported whole, each file once. Batches that are
		// ready while the consumer is busy (here: not reading until every file is
		// written) are merged into one. MaxWait is raised so a slow machine (the race
		// detector, a loaded CI host) does not cut batches short; even so a pause in the
		// writing longer than the quiet window can split the burst, so the test takes
		// batches until it has every file.
		opts := WatcherOptions{Dirs: []string{root}, Poll: poll, MaxWait: 10 * time.Second}
		if poll == settleMode {
			opts.Poll, opts.Settle = 0, DefaultSettle
		}
		w, err := NewWatcher(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var want []string
		for i := range 500 {
			p := filepath.Join(root, "content", fmt.Sprintf("s%d", i%10), fmt.Sprintf("p%03d.md", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(strings.Repeat("x", i)), 0o644); err != nil {
				t.Fatal(err)
			}
			want = append(want, p)
		}
		sort.Strings(want)
		// When the burst is split, a file can come again in a later batch (created in
		// one, written in the next).
		seen := map[string]int{}
		batches := 0
		deadline := time.After(10 * time.Second)
		for len(seen) < len(want) {
			select {
			case b := <-w.Batches():
				batches++
				for _, p := range b {
					seen[p]++
				}
			case <-deadline:
				t.Fatalf("after 10s, %d of %d files reported", len(seen), len(want))
			}
		}
		var got []string
		for p := range seen {
			got = append(got, p)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%d batches hold %d paths; want the %d files", batches, len(got), len(want))
		}
		if batches > 50 {
			t.Errorf("500 files came in %d batches: the burst was not batched", batches)
		}
	})
}

func TestWatcherSingleFile(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, func(root string) {
			os.WriteFile(filepath.Join(filepath.Dir(root), "stump.yaml"), []byte("output: public\n"), 0o644)
		})
		base := filepath.Dir(tt.root)
		// Other files next to stump.yaml are not watched.
		os.WriteFile(filepath.Join(base, "README.md"), []byte("readme"), 0o644)
		os.MkdirAll(filepath.Join(base, "public", "x"), 0o755)
		os.WriteFile(filepath.Join(base, "public", "x", "index.html"), []byte("out"), 0o644)
		tt.expectNone(300 * time.Millisecond)
		// An atomic save of stump.yaml.
		os.WriteFile(filepath.Join(base, "stump.yaml.tmp"), []byte("output: public # edited\n"), 0o644)
		os.Rename(filepath.Join(base, "stump.yaml.tmp"), filepath.Join(base, "stump.yaml"))
		tt.expect("../stump.yaml")
	})
}

func TestWatcherAddDir(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, nil)
		theme := filepath.Join(filepath.Dir(tt.root), "theme")
		os.MkdirAll(filepath.Join(theme, "layouts"), 0o755)
		os.WriteFile(filepath.Join(theme, "layouts", "single.html"), []byte("a"), 0o644)
		if err := tt.w.AddDir(theme); err != nil {
			t.Fatal(err)
		}
		tt.expectNone(300 * time.Millisecond) // adding reports nothing
		os.WriteFile(filepath.Join(theme, "layouts", "single.html"), []byte("bb"), 0o644)
		tt.expect("../theme/layouts/single.html")
	})
}

// TestWatcherFallback: when fsnotify cannot add a folder (the inotify watch limit), the
// watcher says so once and polls; changes are still reported.
func TestWatcherFallback(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "site")
	os.MkdirAll(filepath.Join(root, "content"), 0o755)
	var calls atomic.Int32
	var reason atomic.Value
	w, err := NewWatcher(WatcherOptions{
		Dirs:     []string{root},
		Quiet:    100 * time.Millisecond,
		Fallback: func(err error) { calls.Add(1); reason.Store(err) },
		addHook: func(dir string) error {
			if filepath.Base(dir) == "content" {
				return syscall.ENOSPC
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.Polling() || calls.Load() != 1 {
		t.Fatalf("polling %v, fallback calls %d", w.Polling(), calls.Load())
	}
	// The fallback reports the roots once (what fsnotify may have missed).
	select {
	case b := <-w.Batches():
		if !slices.Equal(b, []string{root}) {
			t.Fatalf("first batch %v, want the root", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no rescan batch")
	}
	os.WriteFile(filepath.Join(root, "content", "a.md"), []byte("a"), 0o644)
	select {
	case b := <-w.Batches():
		if !slices.Equal(b, []string{filepath.Join(root, "content", "a.md")}) {
			t.Fatalf("batch %v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("polling saw no change")
	}

	// A failure later on (a new folder past the limit) also falls back, once.
	var fail atomic.Bool
	calls.Store(0)
	w2, err := NewWatcher(WatcherOptions{
		Dirs: []string{root}, Quiet: 100 * time.Millisecond,
		Fallback: func(error) { calls.Add(1) },
		addHook: func(string) error {
			if fail.Load() {
				return syscall.ENOSPC
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if w2.Polling() {
		t.Fatal("polling from the start")
	}
	fail.Store(true)
	os.MkdirAll(filepath.Join(root, "content", "later"), 0o755)
	deadline := time.Now().Add(5 * time.Second)
	for !w2.Polling() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !w2.Polling() || calls.Load() != 1 {
		t.Fatalf("after a failed Add: polling %v, fallback calls %d", w2.Polling(), calls.Load())
	}
	<-w2.Batches() // the rescan
	os.WriteFile(filepath.Join(root, "content", "later", "b.md"), []byte("b"), 0o644)
	select {
	case b := <-w2.Batches():
		if !slices.Contains(b, filepath.Join(root, "content", "later", "b.md")) {
			t.Fatalf("batch %v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("polling saw no change")
	}
}

func TestWatcherClose(t *testing.T) {
	watchModes(t, func(t *testing.T, poll time.Duration) {
		tt := newTestTree(t, poll, nil)
		tt.write("content/a.md", "a")
		time.Sleep(20 * time.Millisecond)
		done := make(chan struct{})
		go func() { tt.w.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close hangs")
		}
		for range tt.w.Batches() {
		}
	})
}

// TestWatcherSettle: with Settle, a save is a batch at once (Quiet here is an hour), and
// a save in several steps with a pause in the middle, while the file is missing or only
// a temporary file without an extension exists, is still one batch.
func TestWatcherSettle(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "site")
	os.MkdirAll(filepath.Join(root, "content"), 0o755)
	x := filepath.Join(root, "content", "x.md")
	os.WriteFile(x, []byte("one"), 0o644)
	w, err := NewWatcher(WatcherOptions{Dirs: []string{root}, Settle: time.Millisecond, Quiet: time.Hour, MaxWait: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tt := &testTree{t: t, root: root, w: w}
	tt.write("content/x.md", "two")
	tt.expect("content/x.md")

	// vim: the file renamed to its backup, a pause, the new file written.
	tt.rename("content/x.md", "content/x.md~")
	time.Sleep(50 * time.Millisecond)
	tt.write("content/x.md", "three")
	tt.remove("content/x.md~")
	tt.expect("content/x.md")

	// sed -i: a temporary file without an extension, a pause, renamed over the file.
	tt.write("content/sedAb12Cd", "four")
	time.Sleep(50 * time.Millisecond)
	tt.rename("content/sedAb12Cd", "content/x.md")
	tt.expect("content/x.md")
	tt.expectNone(200 * time.Millisecond)
}
