package file

import (
	"errors"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"
)

// dirtyMax is how many files written since the last flush are fsynced one by one;
// above it one syncfs(2) of the whole file system is cheaper. Measured with a deploy
// of 150 sites × 200 pages in which every page changed (bench/sites.sh, the theme
// change), whose blob uploads are conditional writes and so flush often: the flushes
// took 8.1 s of CPU with fsyncs up to 256 files, 6.5 s up to 16, 3.5 s up to 2, and
// 4.2 s with syncfs always. Two: a conditional write with nothing written before it
// (its own two files) costs what it wrote, not what the machine wrote.
var dirtyMax = 2

// dirtySet names what writes changed and no flush has made durable yet, and orders
// the flushes (one at a time, each covering every write that completed before it
// started, so that concurrent conditional writes share one).
type dirtySet struct {
	mu sync.Mutex
	// files maps root-relative files to whether their folder needs an fsync too
	// (false for a conditional write's temporary files, which are renamed after).
	files map[string]bool
	dirs  map[string]struct{} // folders whose entries changed
	// deleted: objects were deleted since the last flush (and their folders maybe
	// pruned): only syncfs makes that durable in one go.
	deleted bool

	cond    *sync.Cond // on mu: a flush finished
	running bool       // a flush is under way
	started uint64     // flushes started
	done    uint64     // flushes finished
	okGen   uint64     // the last flush that succeeded
	err     error      // of the last flush that failed
}

// markDeleted records that objects were deleted.
func (s *Store) markDeleted() {
	s.dirty.mu.Lock()
	s.dirty.deleted = true
	s.dirty.mu.Unlock()
}

// markDirty records files written (renamed into place, or a conditional write's
// temporary ones when withDir is false).
func (s *Store) markDirty(withDir bool, names ...string) {
	s.dirty.mu.Lock()
	defer s.dirty.mu.Unlock()
	if s.dirty.files == nil {
		s.dirty.files = map[string]bool{}
	}
	for _, n := range names {
		s.dirty.files[n] = s.dirty.files[n] || withDir
	}
}

// markDirs records folders whose entries changed.
func (s *Store) markDirs(names ...string) {
	s.dirty.mu.Lock()
	defer s.dirty.mu.Unlock()
	if s.dirty.dirs == nil {
		s.dirty.dirs = map[string]struct{}{}
	}
	for _, n := range names {
		s.dirty.dirs[n] = struct{}{}
	}
}

// durable returns once every write of this store that completed before the call is
// durable: a flush that starts after the call has finished. Concurrent callers share
// flushes: while one runs, later callers wait for the next one, which covers them all.
// This costs what the store wrote since the last flush, not what the whole machine
// wrote, unless that is a lot (see flush). Writes of other processes are theirs to
// flush.
func (s *Store) durable() error {
	d := &s.dirty
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cond == nil {
		d.cond = sync.NewCond(&d.mu)
	}
	target := d.started + 1
	for d.done < target {
		if d.running {
			if waitHook != nil {
				waitHook()
			}
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		files, dirs, deleted := d.files, d.dirs, d.deleted
		d.files, d.dirs, d.deleted = nil, nil, false
		d.mu.Unlock()
		err := s.flush(files, dirs, deleted)
		d.mu.Lock()
		if err != nil {
			// Left to the next flush.
			for n, withDir := range files {
				if d.files == nil {
					d.files = map[string]bool{}
				}
				d.files[n] = d.files[n] || withDir
			}
			for n := range dirs {
				if d.dirs == nil {
					d.dirs = map[string]struct{}{}
				}
				d.dirs[n] = struct{}{}
			}
			d.deleted = d.deleted || deleted
			d.err = err
		} else {
			d.okGen = gen
		}
		d.running = false
		d.done = gen
		d.cond.Broadcast()
	}
	if d.okGen >= target {
		return nil
	}
	return d.err
}

// flush makes files and dirs durable: it fsyncs the files, the folders of those that
// need it, and dirs (many in parallel), or, when there are more than dirtyMax files or
// objects were deleted, flushes the whole file system with syncfs(2).
func (s *Store) flush(files map[string]bool, dirs map[string]struct{}, deleted bool) error {
	if len(files) == 0 && len(dirs) == 0 && !deleted {
		return nil
	}
	if syncFSWorks && (deleted || len(files) > dirtyMax) {
		return syncFS(s.syncf)
	}
	all := make(map[string]struct{}, len(files)+len(dirs))
	for n, withDir := range files {
		all[n] = struct{}{}
		if withDir {
			all[parent(n)] = struct{}{}
		}
	}
	for n := range dirs {
		all[n] = struct{}{}
	}
	var g errgroup.Group
	g.SetLimit(8)
	for n := range all {
		g.Go(func() error { return s.fsync(n) })
	}
	return g.Wait()
}

// waitHook, in tests, sees a caller of durable start waiting for the next flush.
var waitHook func()

// fsyncFile, in tests, counts the files and folders flush syncs one by one.
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
