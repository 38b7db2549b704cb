package file_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/file"
	"github.com/stump-dev/stump/publish/store/storetest"
)

func open(t *testing.T, dir string) *file.Store {
	t.Helper()
	s, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// modes runs fn with sidecars in attributes (where the file system has them) and in
// sidecar files; attrs tells fn which.
func modes(t *testing.T, fn func(t *testing.T, attrs bool)) {
	t.Helper()
	for _, mode := range []string{"attributes", "files"} {
		t.Run(mode, func(t *testing.T) {
			attrs := mode == "attributes"
			if attrs && !file.AttrsWork(t.TempDir()) {
				if os.Getenv("CI") == "true" && runtime.GOOS == "linux" {
					t.Fatal("the temporary folder's file system has no user attributes")
				}
				t.Skip("no user attributes here")
			}
			t.Cleanup(file.SideFiles(!attrs))
			fn(t, attrs)
		})
	}
}

func TestConformance(t *testing.T) {
	modes(t, func(t *testing.T, _ bool) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
	})
}

// One folder shared by every subtest, through stores of their own.
func TestConformanceSharedFolder(t *testing.T) {
	modes(t, func(t *testing.T, _ bool) {
		dir := t.TempDir()
		storetest.Config{ManyKeys: 300}.Run(t, func(t *testing.T) store.Store { return open(t, dir) })
	})
}

// TestOlderFolder: objects an older stump wrote (sidecar files) read the same, and
// with attributes on a write replaces the sidecar file.
func TestOlderFolder(t *testing.T) {
	modes(t, func(t *testing.T, attrs bool) {
		dir := t.TempDir()
		ctx := t.Context()
		restore := file.SideFiles(true)
		old := open(t, dir)
		meta := store.Meta{ContentType: "text/html", CacheControl: "max-age=60"}
		etag, err := store.PutBytes(ctx, old, "a/page.html", []byte("page"), store.PutOptions{Meta: meta})
		if err != nil {
			t.Fatal(err)
		}
		old.Close()
		restore()
		side := filepath.Join(dir, ".stump-meta/a/page.html.json")
		if _, err := os.Stat(side); err != nil {
			t.Fatal(err)
		}
		s := open(t, dir)
		info, err := s.Head(ctx, "a/page.html")
		if err != nil || info.ETag != etag || info.Meta.CacheControl != "max-age=60" {
			t.Fatalf("Head of an older object: %+v, %v; want ETag %s and its Meta", info, err, etag)
		}
		if _, err := store.PutBytes(ctx, s, "a/page.html", []byte("new"), store.PutOptions{IfMatch: etag, Meta: meta}); err != nil {
			t.Fatalf("IfMatch with the older ETag: %v", err)
		}
		if _, err := os.Stat(side); attrs != errors.Is(err, fs.ErrNotExist) {
			t.Errorf("sidecar file after a write: %v", err)
		}
		if b, info, err := store.GetBytes(ctx, s, "a/page.html"); err != nil || string(b) != "new" || info.Meta.CacheControl != "max-age=60" {
			t.Errorf("Get after the write: %q %+v %v", b, info, err)
		}
		// A sidecar file left by a write killed before it removed it (it describes
		// the file before): the attribute, which describes the new file, wins.
		if !attrs {
			return
		}
		restore = file.SideFiles(true)
		store.PutBytes(ctx, open(t, dir), "b/page.html", []byte("b"), store.PutOptions{Meta: meta})
		restore()
		sideB := filepath.Join(dir, ".stump-meta/b/page.html.json")
		left, err := os.ReadFile(sideB)
		if err != nil {
			t.Fatal(err)
		}
		other := store.Meta{ContentType: "text/plain"}
		store.PutBytes(ctx, s, "b/page.html", []byte("b2"), store.PutOptions{Meta: other})
		os.WriteFile(sideB, left, 0o644)
		if info, err := open(t, dir).Head(ctx, "b/page.html"); err != nil || info.Meta.ContentType != "text/plain" || !strings.HasPrefix(info.ETag, `"`+sha("b2")) {
			t.Errorf("a stale sidecar file beside a fresh attribute: %+v, %v", info, err)
		}
	})
}

// TestCopyOtherMeta: a copy with other Meta than its source is still a hard link; its
// own Meta is in a sidecar file, and a later write of either key leaves the other's
// Meta alone.
func TestCopyOtherMeta(t *testing.T) {
	modes(t, func(t *testing.T, attrs bool) {
		dir := t.TempDir()
		s := open(t, dir)
		ctx := t.Context()
		blob := store.Meta{ContentType: "application/octet-stream"}
		page := store.Meta{ContentType: "text/html", CacheControl: "no-cache"}
		store.PutBytes(ctx, s, "_stump/objects/x", []byte("page"), store.PutOptions{Meta: blob})
		if err := s.Copy(ctx, "_stump/objects/x", "p/index.html", store.PutOptions{Meta: page}); err != nil {
			t.Fatal(err)
		}
		a, _ := os.Stat(filepath.Join(dir, "_stump/objects/x"))
		b, _ := os.Stat(filepath.Join(dir, "p/index.html"))
		if !os.SameFile(a, b) {
			t.Error("the copy is not a hard link of its source")
		}
		check := func(key string, want store.Meta) {
			t.Helper()
			for _, s := range []*file.Store{s, open(t, dir)} { // remembered, and read anew
				info, err := s.Head(ctx, key)
				if err != nil || info.Meta.ContentType != want.ContentType || info.Meta.CacheControl != want.CacheControl {
					t.Errorf("%s: %+v, %v; want Meta %+v", key, info.Meta, err, want)
				}
			}
		}
		check("_stump/objects/x", blob)
		check("p/index.html", page)
		// The same Meta as the source's attribute: a link and no sidecar file.
		if err := s.Copy(ctx, "_stump/objects/x", "q/x", store.PutOptions{Meta: blob}); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(filepath.Join(dir, ".stump-meta/q/x.json"))
		if attrs != errors.Is(err, fs.ErrNotExist) {
			t.Errorf("sidecar file of a copy with its source's Meta: %v", err)
		}
		check("q/x", blob)
		// Copied again from a key with that attribute: the page's sidecar file goes.
		if err := s.Copy(ctx, "q/x", "p/index.html", store.PutOptions{Meta: blob}); err != nil {
			t.Fatal(err)
		}
		check("p/index.html", blob)
		store.PutBytes(ctx, s, "_stump/objects/x", []byte("other"), store.PutOptions{Meta: page})
		check("q/x", blob)
		check("_stump/objects/x", page)
		// Edited by hand (the page and the blob it links to change together): each
		// keeps its own Meta, the ETag follows the bytes.
		if err := s.Copy(ctx, "_stump/objects/x", "r/index.html", store.PutOptions{Meta: blob}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "r/index.html"), []byte("by hand"), 0o644); err != nil {
			t.Fatal(err)
		}
		check("r/index.html", blob)
		check("_stump/objects/x", page)
		if info, _ := s.Head(ctx, "r/index.html"); !strings.HasPrefix(info.ETag, `"`+sha("by hand")) {
			t.Errorf("ETag %s after an edit by hand", info.ETag)
		}
	})
}

func TestLayout(t *testing.T) {
	modes(t, testLayout)
}

func testLayout(t *testing.T, attrs bool) {
	dir := t.TempDir()
	s := open(t, dir)
	meta := store.Meta{ContentType: "text/html", Metadata: map[string]string{"X-Deploy": "7"}}
	etag, err := store.PutBytes(t.Context(), s, "news/rally/index.html", []byte("<h1>rally</h1>"), store.PutOptions{Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "news/rally/index.html"))
	if err != nil || string(b) != "<h1>rally</h1>" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	side := filepath.Join(dir, ".stump-meta/news/rally/index.html.json")
	if attrs {
		if _, err := os.Stat(filepath.Dir(side)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a sidecar folder with attributes on: %v", err)
		}
		b, err = file.AttrOf(filepath.Join(dir, "news/rally/index.html"))
	} else {
		b, err = os.ReadFile(side)
	}
	if err != nil {
		t.Fatal(err)
	}
	var sc map[string]any
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatalf("sidecar: %v\n%s", err, b)
	}
	if sc["etag"] != etag || sc["contentType"] != "text/html" || sc["metadata"].(map[string]any)["x-deploy"] != "7" {
		t.Errorf("sidecar: %s", b)
	}
	if !strings.HasPrefix(etag, `"`+sha("<h1>rally</h1>")+"-") || !strings.HasSuffix(etag, `"`) {
		t.Errorf("ETag %s: want the quoted SHA-256 of the bytes, a dash, a meta hash", etag)
	}
	noTemps(t, dir)
	if got := s.String(); got != "file://"+filepath.ToSlash(dir) {
		t.Errorf("String() = %q", got)
	}
}

func sha(s string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(s)))
}

// noTemps fails if a temporary file was left in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".stump-tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestOpen(t *testing.T) {
	base := t.TempDir()
	// The folder is created when its parent exists.
	dir := filepath.Join(base, "targets-site")
	open(t, dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Open did not create %s: %v", dir, err)
	}
	// Not when the parent is missing.
	missing := filepath.Join(base, "missing", "path")
	_, err := file.Open(missing)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open of %s: %v, want ErrNotFound", missing, err)
	}
	if want := "folder " + filepath.Join(base, "missing") + " does not exist"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open error %q, want it to say %q", err, want)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created the parent folder")
	}
	// A file is no folder.
	f := filepath.Join(base, "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := file.Open(f); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Open of a file: %v, want ErrPermanent", err)
	}
}

func TestReservedKeys(t *testing.T) {
	s := open(t, t.TempDir())
	for _, key := range []string{".stump-meta", ".stump-meta/x.json", "a/.stump-tmp-1", ".stump-tmp-x"} {
		_, err := store.PutBytes(t.Context(), s, key, []byte("x"), store.PutOptions{})
		if !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Put %q: %v, want ErrPermanent", key, err)
		}
	}
	// Dot files other than those are keys like any other.
	if _, err := store.PutBytes(t.Context(), s, ".well-known/security.txt", []byte("x"), store.PutOptions{}); err != nil {
		t.Errorf("Put .well-known/security.txt: %v", err)
	}
}

func TestListSkipsInternals(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "a/b.html", []byte("b"), store.PutOptions{})
	// A temporary file left by a crash, a symlink, a file put there by hand.
	os.WriteFile(filepath.Join(dir, "a/.stump-tmp-dead"), []byte("x"), 0o644)
	os.Symlink("b.html", filepath.Join(dir, "a/link.html"))
	os.WriteFile(filepath.Join(dir, "a/by-hand.txt"), []byte("hand"), 0o644)
	var got []string
	var hand store.Info
	err := s.List(ctx, "", func(info store.Info) error {
		got = append(got, info.Key)
		if info.Key == "a/by-hand.txt" {
			hand = info
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b.html", "a/by-hand.txt"}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	// A file without a sidecar has the ETag of its bytes.
	if hand.Size != 4 || !strings.HasPrefix(hand.ETag, `"`+sha("hand")) {
		t.Errorf("file put by hand: %+v", hand)
	}
}

func TestDeletePrunes(t *testing.T) {
	modes(t, testDeletePrunes)
}

func testDeletePrunes(t *testing.T, attrs bool) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "a/b/c/d.html", []byte("d"), store.PutOptions{})
	store.PutBytes(ctx, s, "a/keep.html", []byte("k"), store.PutOptions{})
	if err := s.Delete(ctx, "a/b/c/d.html"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/b", ".stump-meta/a/b"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not pruned: %v", p, err)
		}
	}
	keep := []string{"a/keep.html"}
	if !attrs {
		keep = append(keep, ".stump-meta/a/keep.html.json")
	}
	for _, p := range keep {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	s.Delete(ctx, "a/keep.html")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != ".stump-meta" {
		t.Errorf("after deleting all, the folder holds %v", entries)
	}
}

func TestCopyLinks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "_stump/objects/sha256/x", []byte("page"), store.PutOptions{})
	for range 2 { // the second copy renames a link onto the same file
		if err := s.Copy(ctx, "_stump/objects/sha256/x", "page.html", store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.Stat(filepath.Join(dir, "_stump/objects/sha256/x"))
	b, _ := os.Stat(filepath.Join(dir, "page.html"))
	if !os.SameFile(a, b) {
		t.Errorf("the copy is not a hard link of its source")
	}
	noTemps(t, dir)
	// The source replaced, the copy keeps its bytes.
	store.PutBytes(ctx, s, "_stump/objects/sha256/x", []byte("other"), store.PutOptions{})
	if b, _, _ := store.GetBytes(ctx, s, "page.html"); string(b) != "page" {
		t.Errorf("copy = %q after a Put of its source", b)
	}
}

// An object file edited in place (or a crash between the renames of a write) makes
// its sidecar stale: the ETag follows the bytes, and IfMatch with the old one fails.
func TestStaleSidecar(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	meta := store.Meta{ContentType: "application/json"}
	old, _ := store.PutBytes(ctx, s, "_stump/current.json", []byte(`{"deploy":"1"}`), store.PutOptions{Meta: meta})
	p := filepath.Join(dir, "_stump/current.json")
	later := time.Now().Add(time.Second)
	if err := os.WriteFile(p, []byte(`{"deploy":"X"}`), 0o644); err != nil { // same size
		t.Fatal(err)
	}
	os.Chtimes(p, later, later)
	b, info, err := store.GetBytes(ctx, s, "_stump/current.json")
	if err != nil || string(b) != `{"deploy":"X"}` {
		t.Fatalf("Get: %q, %v", b, err)
	}
	if info.ETag == old || !strings.HasPrefix(info.ETag, `"`+sha(`{"deploy":"X"}`)) {
		t.Errorf("ETag %s after an edit, was %s", info.ETag, old)
	}
	if info.Meta.ContentType != "application/json" {
		t.Errorf("Meta lost: %+v", info.Meta)
	}
	if h, _ := s.Head(ctx, "_stump/current.json"); h.ETag != info.ETag {
		t.Errorf("Head ETag %s, Get %s", h.ETag, info.ETag)
	}
	_, err = store.PutBytes(ctx, s, "_stump/current.json", []byte(`{"deploy":"2"}`), store.PutOptions{IfMatch: old})
	if !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfMatch with the ETag from before the edit: %v", err)
	}
	if _, err := store.PutBytes(ctx, s, "_stump/current.json", []byte(`{"deploy":"2"}`), store.PutOptions{IfMatch: info.ETag}); err != nil {
		t.Errorf("IfMatch with the ETag of the edited bytes: %v", err)
	}
	// A missing sidecar: the object still exists, IfNoneMatch fails.
	os.Remove(filepath.Join(dir, ".stump-meta/_stump/current.json.json"))
	if _, err := store.PutBytes(ctx, s, "_stump/current.json", []byte("x"), store.PutOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfNoneMatch over a file without sidecar: %v", err)
	}
}

func TestFolderConflicts(t *testing.T) {
	modes(t, testFolderConflicts)
}

func testFolderConflicts(t *testing.T, attrs bool) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "a", []byte("a"), store.PutOptions{})
	_, err := store.PutBytes(ctx, s, "a/b", []byte("b"), store.PutOptions{})
	if !errors.Is(err, store.ErrPermanent) || !strings.Contains(err.Error(), "folder") {
		t.Errorf("Put a/b over the object a: %v", err)
	}
	store.PutBytes(ctx, s, "c/d", []byte("d"), store.PutOptions{})
	_, err = store.PutBytes(ctx, s, "c", []byte("c"), store.PutOptions{})
	if !errors.Is(err, store.ErrPermanent) || !strings.Contains(err.Error(), "folder") {
		t.Errorf("Put c over the folder c: %v", err)
	}
	if err := s.Copy(ctx, "a", "c", store.PutOptions{}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Copy onto the folder c: %v", err)
	}
	// The sidecar tree's own conflict: object x, then x.json/y (none with attributes).
	store.PutBytes(ctx, s, "x", []byte("x"), store.PutOptions{})
	if _, err := store.PutBytes(ctx, s, "x.json/y", []byte("y"), store.PutOptions{}); attrs != (err == nil) {
		t.Errorf("Put x.json/y beside x: %v", err)
	}
	if b, _, _ := store.GetBytes(ctx, s, "x"); string(b) != "x" {
		t.Errorf("x = %q", b)
	}
	// Deleting a key whose sidecar path is a folder leaves the folder alone.
	store.PutBytes(ctx, s, "m.json/n", []byte("n"), store.PutOptions{})
	if err := s.Delete(ctx, "m"); err != nil {
		t.Errorf("Delete m: %v", err)
	}
	if b, _, _ := store.GetBytes(ctx, s, "m.json/n"); string(b) != "n" {
		t.Errorf("m.json/n = %q", b)
	}
	noTemps(t, dir)
}

func TestSizeMismatch(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	_, err := s.Put(t.Context(), "k", strings.NewReader("abc"), 4, store.PutOptions{})
	if !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put of 3 bytes announced as 4: %v", err)
	}
	if _, err := s.Head(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Head: %v", err)
	}
	noTemps(t, dir)
}

func TestSymlinkEscape(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	s := open(t, dir)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "out"))
	if _, _, err := s.Get(t.Context(), "out/secret"); err == nil {
		t.Errorf("Get through a symlink out of the folder succeeded")
	}
	if _, err := store.PutBytes(t.Context(), s, "out/new", []byte("x"), store.PutOptions{}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put through a symlink out of the folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Errorf("Put wrote outside the folder")
	}
}

// Two stores on one folder exclude each other as two processes do.
func TestTwoStoresOneFolder(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	ctx := t.Context()
	for i := range 50 {
		key := fmt.Sprintf("lock%d", i)
		errs := make(chan error, 2)
		for _, s := range []*file.Store{a, b} {
			go func() {
				_, err := store.PutBytes(ctx, s, key, []byte(s.String()), store.PutOptions{IfNoneMatch: true})
				errs <- err
			}()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("%s: errors %v and %v, want exactly one nil", key, e1, e2)
		}
	}
}

// Processes race to create the same keys with IfNoneMatch: each key has one winner.
func TestProcessesIfNoneMatch(t *testing.T) {
	if dir := os.Getenv("STUMP_FILESTORE_HELPER"); dir != "" {
		helper(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	open(t, dir)
	const procs = 4
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesIfNoneMatch$")
		cmd.Env = append(os.Environ(), "STUMP_FILESTORE_HELPER="+dir)
		out := new(strings.Builder)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	won := map[string]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(strings.NewReader(outs[i].String()))
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "won "); ok {
				won[k]++
			}
		}
	}
	for i := range helperKeys {
		k := fmt.Sprintf("lock%d", i)
		if won[k] != 1 {
			t.Errorf("%s created by %d processes", k, won[k])
		}
	}
}

const helperKeys = 100

func helper(dir string) {
	s, err := file.Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := range helperKeys {
		key := fmt.Sprintf("lock%d", i)
		_, err := store.PutBytes(ctx, s, key, fmt.Appendf(nil, "pid %d", os.Getpid()), store.PutOptions{IfNoneMatch: true})
		switch {
		case err == nil:
			fmt.Println("won", key)
		case !errors.Is(err, store.ErrPrecondition):
			fmt.Println("error:", err)
			os.Exit(3)
		}
	}
}

func TestCopyOfEditedSource(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "src", []byte("before"), store.PutOptions{})
	os.WriteFile(filepath.Join(dir, "by-hand"), []byte("hand"), 0o644) // no sidecar
	os.WriteFile(filepath.Join(dir, "src"), []byte("edited, longer"), 0o644)
	for src, want := range map[string]string{"src": "edited, longer", "by-hand": "hand"} {
		if err := s.Copy(ctx, src, "dst-"+src, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		b, info, err := store.GetBytes(ctx, s, "dst-"+src)
		if err != nil || string(b) != want || !strings.HasPrefix(info.ETag, `"`+sha(want)+"-") {
			t.Errorf("copy of %s: %q, %s, %v", src, b, info.ETag, err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s, _ := file.Open(b.TempDir())
	defer s.Close()
	body := []byte(strings.Repeat("<p>page</p>", 500))
	i := 0
	for b.Loop() {
		i++
		store.PutBytes(b.Context(), s, fmt.Sprintf("d%d/p%d.html", i%50, i), body, store.PutOptions{})
	}
}

func BenchmarkHead(b *testing.B) {
	s, _ := file.Open(b.TempDir())
	defer s.Close()
	store.PutBytes(b.Context(), s, "a/b.html", []byte("x"), store.PutOptions{})
	for b.Loop() {
		if _, err := s.Head(b.Context(), "a/b.html"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList1000(b *testing.B) {
	s, _ := file.Open(b.TempDir())
	defer s.Close()
	for i := range 1000 {
		store.PutBytes(b.Context(), s, fmt.Sprintf("d%d/p%d.html", i%50, i), []byte("x"), store.PutOptions{})
	}
	for b.Loop() {
		s.List(b.Context(), "", func(store.Info) error { return nil })
	}
}

// Deletes prune folders while Puts and Copies create files in them: no write fails.
func TestPruneRace(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	store.PutBytes(ctx, s, "src", []byte("src"), store.PutOptions{})
	errs := make(chan error, 100)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("x/y/k%d-%d", w, i)
				var err error
				if i%2 == 0 {
					_, err = store.PutBytes(ctx, s, key, []byte("v"), store.PutOptions{})
				} else {
					err = s.Copy(ctx, "src", key, store.PutOptions{})
				}
				if err == nil {
					err = s.Delete(ctx, key)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case err := <-errs:
		t.Fatal(err)
	case <-done:
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("x not pruned: %v", err)
	}
	noTemps(t, dir)
}

// TestLargeMeta: Meta larger than the file system takes in an attribute (ext4: one
// block; a page with very many surrogate keys) goes to a sidecar file instead, for
// Put and Copy alike.
func TestLargeMeta(t *testing.T) {
	modes(t, func(t *testing.T, attrs bool) {
		dir := t.TempDir()
		s := open(t, dir)
		ctx := t.Context()
		keys := strings.Repeat("site:tags:a-rather-long-tag-name ", 1000) // 33 KB
		meta := store.Meta{ContentType: "text/html", Metadata: map[string]string{"surrogate-key": keys}}
		if _, err := store.PutBytes(ctx, s, "big/index.html", []byte("page"), store.PutOptions{Meta: meta}); err != nil {
			t.Fatalf("Put with %d bytes of Meta: %v", len(keys), err)
		}
		if err := s.Copy(ctx, "big/index.html", "copy/index.html", store.PutOptions{Meta: meta}); err != nil {
			t.Fatalf("Copy with %d bytes of Meta: %v", len(keys), err)
		}
		for _, key := range []string{"big/index.html", "copy/index.html"} {
			for _, s := range []*file.Store{s, open(t, dir)} {
				b, info, err := store.GetBytes(ctx, s, key)
				if err != nil || string(b) != "page" || info.Meta.Metadata["surrogate-key"] != keys || !strings.HasPrefix(info.ETag, `"`+sha("page")) {
					t.Errorf("%s: %q, ETag %s, %d bytes of surrogate keys, %v", key, b, info.ETag, len(info.Meta.Metadata["surrogate-key"]), err)
				}
			}
		}
	})
}
