//go:build linux

package publish

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stump-dev/stump/publish/store/file"
)

// TestInPlaceFileTargetLinksBlobs: published in place to a file target, a live page
// is a hard link of its blob (its bytes stored once), and where the file system has
// user attributes the two share one with the page's headers: nothing is written
// beside the page (a blob with other headers would need a sidecar file per page), but
// for a redirect, whose blob redirects nowhere.
func TestInPlaceFileTargetLinksBlobs(t *testing.T) {
	dir := t.TempDir()
	s, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := newDeployer(s)
	res, err := publishSite(t, d, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := v1.objects(t)
	for _, o := range objs {
		if o.Class == "immutable" || o.Redirect != "" {
			continue
		}
		live, err := os.Stat(filepath.Join(dir, o.Path))
		if err != nil {
			t.Fatal(err)
		}
		blob, err := os.Stat(filepath.Join(dir, filepath.FromSlash(blobKey(o.SHA256))))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(live, blob) {
			t.Errorf("%s is not a hard link of its blob", o.Path)
		}
		info, err := s.Head(t.Context(), o.Path)
		if err != nil || info.Meta.ContentType != o.ContentType || info.Meta.CacheControl != o.CacheControl {
			t.Errorf("%s: headers %+v, %v; want %s, %s", o.Path, info.Meta, err, o.ContentType, o.CacheControl)
		}
	}
	side := filepath.Join(dir, ".stump-meta")
	var sidecars []string
	filepath.WalkDir(side, func(p string, e fs.DirEntry, err error) error {
		// A redirect's copy has a header its blob has not: a sidecar file is right.
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".json") && !strings.Contains(p, "/_stump/") && !strings.Contains(p, "/old/") {
			sidecars = append(sidecars, p)
		}
		return nil
	})
	switch {
	case attrsWork(t, dir):
		if len(sidecars) > 0 {
			t.Errorf("deploy %s wrote sidecar files beside live pages: %v", res.Deploy, sidecars)
		}
	case os.Getenv("CI") == "true" && runtime.GOOS == "linux": // as the file store's own tests
		t.Fatal("the temporary folder's file system has no user attributes: the sidecar half of this test cannot run")
	default:
		t.Log("no user attributes here: sidecar files not checked")
	}
}

// attrsWork reports whether dir's file system has user attributes (a probe file).
func attrsWork(t *testing.T, dir string) bool {
	t.Helper()
	p := filepath.Join(dir, ".probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	err := unix.Setxattr(p, "user.probe", []byte("1"), 0)
	return !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP)
}
