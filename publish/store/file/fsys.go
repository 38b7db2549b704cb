package file

import (
	"io/fs"
	"os"
)

// fsys is what the store does with its folder: each name is relative to the store
// folder (in the form of filepath.FromSlash), and no operation follows a symlink out of
// the folder. *os.Root is one (the portable implementation); on Linux, openFS returns
// a faster one built on openat2(2) (see beneath).
type fsys interface {
	Lstat(name string) (fs.FileInfo, error)
	Open(name string) (*os.File, error)
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
	ReadFile(name string) ([]byte, error)
	MkdirAll(name string, perm fs.FileMode) error
	Rename(oldname, newname string) error
	Link(oldname, newname string) error
	Remove(name string) error
	Close() error
}

// dirCacheMax is how many folder descriptors a store keeps open between calls (Linux).
const dirCacheMax = 64

// rootFS is the portable fsys: every call resolves its path one folder at a time.
type rootFS struct{ *os.Root }

func openRoot(dir string) (fsys, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return rootFS{r}, nil
}

// syncDir fsyncs the folder name of f (errors are ignored: a folder that cannot be
// synced is no reason to fail a write that happened).
func syncDir(f fsys, name string) {
	if s, ok := f.(interface{ SyncDir(string) error }); ok {
		s.SyncDir(name)
		return
	}
	if d, err := f.Open(name); err == nil {
		d.Sync()
		d.Close()
	}
}
