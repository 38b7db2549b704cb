package file

import (
	"errors"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"
)

// dirtyMax is how many files written since the last flush are fsynced one by one before
// a conditional write; above it one syncfs(2) of the whole file system is cheaper.
const dirtyMax = 256

// dirtySet names the files (root-relative) unconditional writes renamed into place and
// that no flush has made durable yet.
type dirtySet struct {
	mu    sync.Mutex
	files map[string]struct{}
	// deleted: objects were deleted since the last flush (and their folders maybe
	// pruned): only syncfs makes that durable in one go.
	deleted bool
}

// markDeleted records that objects were deleted.
func (s *Store) markDeleted() {
	s.dirty.mu.Lock()
	s.dirty.deleted = true
	s.dirty.mu.Unlock()
}

// markDirty records files an unconditional write renamed into place.
func (s *Store) markDirty(names ...string) {
	s.dirty.mu.Lock()
	defer s.dirty.mu.Unlock()
	if s.dirty.files == nil {
		s.dirty.files = map[string]struct{}{}
	}
	for _, n := range names {
		s.dirty.files[n] = struct{}{}
	}
}

// flush makes every earlier unconditional write of this store durable before a
// conditional write goes ahead: the files written since the last flush, and their
// folders, are fsynced (many in parallel), or, when there are more than dirtyMax of
// them or objects were deleted, the whole file system is flushed with syncfs(2)
// through f. This costs what the
// deploy wrote since the last conditional write, not what the whole machine wrote.
// Writes of other processes are theirs to flush before their own conditional writes.
func (s *Store) flush(f *os.File) error {
	s.dirty.mu.Lock()
	files, deleted := s.dirty.files, s.dirty.deleted
	s.dirty.files, s.dirty.deleted = nil, false
	s.dirty.mu.Unlock()
	if len(files) == 0 && !deleted {
		return nil
	}
	if deleted || len(files) > dirtyMax {
		if err := syncFS(f); err != nil {
			s.markDirty(keys(files)...)
			if deleted {
				s.markDeleted()
			}
			return err
		}
		return nil
	}
	dirs := map[string]struct{}{}
	for n := range files {
		dirs[parent(n)] = struct{}{}
	}
	var g errgroup.Group
	g.SetLimit(8)
	for _, set := range []map[string]struct{}{files, dirs} {
		for n := range set {
			g.Go(func() error { return s.fsync(n) })
		}
	}
	if err := g.Wait(); err != nil {
		s.markDirty(keys(files)...)
		return err
	}
	return nil
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// fsyncFile, in tests, counts the files flush syncs one by one.
var fsyncFile = func(f *os.File) error { return f.Sync() }

// fsync syncs one root-relative file or folder. One that is gone (replaced or deleted
// since) needs nothing: its replacement was recorded by its own write.
func (s *Store) fsync(name string) error {
	f, err := s.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return fsyncFile(f)
}
