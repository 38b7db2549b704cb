package file

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// Usage is what a store's folder takes on disk.
type Usage struct {
	// Objects counts the objects; Links the object files that share their bytes with
	// another object (Copy's hard links), which are stored once.
	Objects, Links int
	// Bytes is the size of the objects' bytes, each stored file counted once.
	Bytes int64
	// Disk is the space the whole folder takes (blocks allocated: objects, sidecars,
	// folders), each stored file counted once.
	Disk int64
}

// Usage walks the store's folder and adds up what it holds; hard-linked files count once.
func (s *Store) Usage() (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		ino, blocks, ok := inodeBlocks(fi)
		if !ok {
			return nil
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		object := fi.Mode().IsRegular() && !reserved(strings.Split(rel, "/")[0], true) && !strings.Contains("/"+rel, "/.stump-tmp-")
		if object {
			u.Objects++
		}
		if seen[ino] {
			if object {
				u.Links++
			}
			return nil
		}
		seen[ino] = true
		u.Disk += blocks * 512
		if object {
			u.Bytes += fi.Size()
		}
		return nil
	})
	return u, err
}
