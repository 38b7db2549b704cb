package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/storetest"
)

// impls runs fn on each folder implementation this system has: beneath (Linux,
// openat2) and os.Root (everywhere).
func impls(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, impl := range []string{"beneath", "root"} {
		t.Run(impl, func(t *testing.T) {
			old := forceRoot
			switch {
			case impl == "root":
				forceRoot = true
			case runtime.GOOS != "linux":
				t.Skip("openat2 is Linux's")
			}
			t.Cleanup(func() { forceRoot = old })
			fn(t)
		})
	}
}

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The portable implementation passes the conformance suite too (the package's other
// tests run the one openFS picks).
func TestConformanceRoot(t *testing.T) {
	old := forceRoot
	forceRoot = true
	t.Cleanup(func() { forceRoot = old })
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openT(t, t.TempDir())
		if _, ok := s.root.(rootFS); !ok {
			t.Fatalf("forceRoot: the store uses %T", s.root)
		}
		return s
	})
}

// TestSymlinksNotFollowed: symlinks planted in the store folder (a folder on a key's
// path, the last component, a folder of the sidecar tree, a cached folder replaced by
// one) and pointing out of it lead no operation out of the folder.
func TestSymlinksNotFollowed(t *testing.T) {
	impls(t, func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		ctx := t.Context()
		s := openT(t, dir)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644))
		must(os.MkdirAll(filepath.Join(outside, "sub"), 0o755))
		must(os.WriteFile(filepath.Join(outside, "sub", "x"), []byte("x"), 0o644))
		_, err := store.PutBytes(ctx, s, "cached/a", []byte("a"), store.PutOptions{})
		must(err)
		_, err = store.PutBytes(ctx, s, "src", []byte("src"), store.PutOptions{})
		must(err)
		// A folder whose descriptor the store holds, replaced by a symlink.
		must(os.RemoveAll(filepath.Join(dir, "cached")))
		must(os.RemoveAll(filepath.Join(dir, metaDir, "cached")))
		for _, p := range []string{"out", "cached", "deep/er", metaDir + "/side", "last", "last2"} {
			target := outside
			if p == "last" || p == "last2" {
				target = filepath.Join(outside, "secret")
			}
			must(os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
			must(os.Symlink(target, filepath.Join(dir, p)))
		}

		for _, key := range []string{"out/secret", "out/sub/x", "cached/secret", "deep/er/secret", "last"} {
			if rc, _, err := s.Get(ctx, key); err == nil {
				rc.Close()
				t.Errorf("Get %s: read through a symlink", key)
			}
			if _, err := s.Head(ctx, key); err == nil {
				t.Errorf("Head %s: found through a symlink", key)
			}
			if err := s.Copy(ctx, key, "stolen", store.PutOptions{}); err == nil {
				t.Errorf("Copy %s: copied through a symlink", key)
			}
		}
		for _, key := range []string{"out/new", "out/sub/new", "cached/new", "deep/er/new", "side/new"} {
			_, err := store.PutBytes(ctx, s, key, []byte("new"), store.PutOptions{})
			if key != "side/new" && !errors.Is(err, store.ErrPermanent) {
				t.Errorf("Put %s: %v, want ErrPermanent", key, err)
			}
			if err := s.Copy(ctx, "src", key+"-copy", store.PutOptions{}); key != "side/new" && err == nil {
				t.Errorf("Copy to %s: copied through a symlink", key)
			}
		}
		// A copy whose Meta needs a sidecar file under the planted symlink.
		if err := s.Copy(ctx, "src", "side/meta-copy", store.PutOptions{Meta: store.Meta{ContentType: "text/html"}}); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Copy with its own Meta to side/: %v, want ErrPermanent", err)
		}
		// The last component: a write replaces the symlink itself.
		if _, err := store.PutBytes(ctx, s, "last2", []byte("mine"), store.PutOptions{}); err != nil {
			t.Errorf("Put over a symlink: %v", err)
		}
		var listed []string
		must(s.List(ctx, "", func(info store.Info) error {
			listed = append(listed, info.Key)
			return nil
		}))
		for _, k := range listed {
			// With attributes, side/new needs no sidecar file and was written.
			if k != "src" && k != "last2" && !(s.attrs && (k == "side/new" || k == "side/new-copy")) {
				t.Errorf("List shows %s", k)
			}
		}
		for _, prefix := range []string{"out/", "cached/", "deep/er/"} {
			must(s.List(ctx, prefix, func(info store.Info) error {
				t.Errorf("List %s shows %s", prefix, info.Key)
				return nil
			}))
		}
		// Deletes remove nothing outside (a symlink where a folder would be is
		// pruned like an empty folder: it is in the store folder).
		for _, key := range []string{"out/secret", "out/sub/x", "cached/secret", "deep/er/secret", "last"} {
			must(s.Delete(ctx, key))
		}
		// Outside: as it was.
		entries, err := os.ReadDir(outside)
		must(err)
		if len(entries) != 2 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("outside the store: %v, want [secret sub]", names)
		}
		for p, want := range map[string]string{"secret": "secret", "sub/x": "x"} {
			if b, err := os.ReadFile(filepath.Join(outside, p)); err != nil || string(b) != want {
				t.Errorf("outside %s: %q, %v", p, b, err)
			}
		}
		if fi, err := os.Lstat(filepath.Join(dir, "last2")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("last2: %v, %v; want the object's file", fi, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "last")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Delete last left the symlink: %v", err)
		}
	})
}

// TestPrunedCachedFolder: a folder another store (another process) prunes and
// creates again while this store holds its descriptor: writes still land in the
// folder as it is now, and reads find what is there now.
func TestPrunedCachedFolder(t *testing.T) {
	impls(t, func(t *testing.T) {
		dir := t.TempDir()
		ctx := t.Context()
		a, b := openT(t, dir), openT(t, dir)
		put := func(s *Store, key, body string) {
			t.Helper()
			if _, err := store.PutBytes(ctx, s, key, []byte(body), store.PutOptions{}); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
		}
		want := func(s *Store, key, body string) {
			t.Helper()
			got, _, err := store.GetBytes(ctx, s, key)
			if err != nil || string(got) != body {
				t.Fatalf("Get %s: %q, %v; want %q", key, got, err, body)
			}
		}
		put(a, "src", "src")
		put(a, "p/q/k1", "1") // a holds p/q and .stump-meta/p/q
		want(a, "p/q/k1", "1")
		if err := b.Delete(ctx, "p/q/k1"); err != nil { // prunes p/q, p and their sidecar folders
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "p")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("p not pruned: %v", err)
		}
		put(a, "p/q/k2", "2")
		want(b, "p/q/k2", "2")
		if err := b.Delete(ctx, "p/q/k2"); err != nil {
			t.Fatal(err)
		}
		if err := a.Copy(ctx, "src", "p/q/k3", store.PutOptions{}); err != nil {
			t.Fatalf("Copy into a pruned folder: %v", err)
		}
		want(b, "p/q/k3", "src")
		// Pruned and made again by b: a reads what b wrote.
		if err := b.Delete(ctx, "p/q/k3"); err != nil {
			t.Fatal(err)
		}
		put(b, "p/q/k4", "4")
		want(a, "p/q/k4", "4")
		var keys []string
		if err := a.List(ctx, "p/", func(info store.Info) error { keys = append(keys, info.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != "p/q/k4" {
			t.Errorf("List p/ = %v", keys)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "p/q/k4")); err != nil || string(got) != "4" {
			t.Errorf("p/q/k4 on disk: %q, %v", got, err)
		}
	})
}

// A folder removed by this store is forgotten at once; writes into it again work.
func TestPrunedFolderSameStore(t *testing.T) {
	impls(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		ctx := context.Background()
		for i := range 3 {
			if _, err := s.Put(ctx, "x/y/z", bytes.NewReader([]byte{byte(i)}), 1, store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "x/y/z"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A source replaced by another store (another process) is copied with the checksum
// of its new bytes: what this store remembers of the file it wrote does not apply.
func TestCopyOfSourceReplacedElsewhere(t *testing.T) {
	dir := t.TempDir()
	a, b := openT(t, dir), openT(t, dir)
	ctx := t.Context()
	if _, err := store.PutBytes(ctx, a, "src", []byte("one"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Copy(ctx, "src", "dst1", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutBytes(ctx, b, "src", []byte("two"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Copy(ctx, "src", "dst2", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"dst1": "one", "dst2": "two"} {
		got, info, err := store.GetBytes(ctx, a, key)
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", key, got, err)
		}
		h, err := b.Head(ctx, key)
		if err != nil || h.ETag != info.ETag || !strings.HasPrefix(info.ETag, fmt.Sprintf(`"%x-`, sha256.Sum256([]byte(want)))) {
			t.Errorf("%s: ETag %s (Head elsewhere %s, %v), want the SHA-256 of %q", key, info.ETag, h.ETag, err, want)
		}
	}
}

// Writers on one store, a Delete that prunes on another, over more folders than the
// descriptor cache holds: no write fails or is lost.
func TestPruneRaceTwoStores(t *testing.T) {
	impls(t, func(t *testing.T) {
		dir := t.TempDir()
		a, b := openT(t, dir), openT(t, dir)
		ctx := t.Context()
		if _, err := store.PutBytes(ctx, a, "src", []byte("src"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for w := range 4 {
			go func() {
				errs <- func() error {
					for i := range 3 * dirCacheMax / 2 {
						folder := fmt.Sprintf("d%d/e", (i*7+w)%(dirCacheMax+dirCacheMax/2))
						k1, k2 := fmt.Sprintf("%s/w%d-%d", folder, w, i), fmt.Sprintf("%s/c%d-%d", folder, w, i)
						if _, err := store.PutBytes(ctx, a, k1, []byte(k1), store.PutOptions{}); err != nil {
							return err
						}
						if err := b.Delete(ctx, k1); err != nil { // prunes folder when it empties
							return err
						}
						if _, err := store.PutBytes(ctx, a, k1, []byte(k1), store.PutOptions{IfNoneMatch: true}); err != nil {
							return err
						}
						if err := a.Copy(ctx, "src", k2, store.PutOptions{}); err != nil {
							return err
						}
						for key, want := range map[string]string{k1: k1, k2: "src"} {
							got, _, err := store.GetBytes(ctx, b, key)
							if err != nil || string(got) != want {
								return fmt.Errorf("%s: %q, %v; want %q", key, got, err, want)
							}
						}
						if err := b.Delete(ctx, k1, k2); err != nil {
							return err
						}
					}
					return nil
				}()
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var left []string
		a.List(ctx, "", func(info store.Info) error { left = append(left, info.Key); return nil })
		if len(left) != 1 {
			t.Errorf("left: %v, want [src]", left)
		}
	})
}
