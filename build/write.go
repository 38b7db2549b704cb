package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/manifest"
)

// finish reads copied files not read yet, hashes them and fills the manifest. It returns
// the files in path order.
func (st *siteState) finish(ctx context.Context) ([]*outFile, *manifest.Manifest, error) {
	files := st.out.sorted()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.opts.Workers)
	for _, f := range files {
		if f.data != nil || f.stored {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			b, err := f.src.read()
			if err != nil {
				return err
			}
			f.data = b
			f.sum = sha256.Sum256(b)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	m := &manifest.Manifest{Version: manifest.Version, Site: st.cfg.Name, BaseURL: st.site.BaseURL, Files: make([]manifest.Entry, 0, len(files))}
	for _, f := range files {
		m.Files = append(m.Files, manifest.Entry{
			Path: f.path, SHA256: hex.EncodeToString(f.sum[:]), Size: f.length(),
			ContentType: contentType(f.path), Class: f.class, Keys: st.keysFor(f), Redirect: f.redirect,
		})
	}
	return files, m, nil
}

// length is the file's size, also after its bytes were dropped.
func (f *outFile) length() int64 {
	if f.stored {
		return f.size
	}
	return int64(len(f.data))
}

// writer puts a build's files on disk while pages still render, so that rendering and
// writing overlap, and writes only what changed.
//
// When the output folder holds a manifest of an earlier build, the writer updates the
// folder in place: a file whose SHA-256 and size match the old manifest (and whose copy
// on disk has that size and is not newer than the manifest) is left alone; a changed
// file is written beside it and renamed over it; paths gone from the build are deleted
// at the end, and the manifest is written last. Every change is first recorded in a
// journal folder beside the output (.stump-journal-<name>), with a hard link to the
// replaced file, so that a failed build (or, at the start of the next build, one that
// was killed) puts back exactly the previous files. Without an earlier manifest the
// writer fills a fresh temporary folder and swaps it in at the end, as a clean build.
//
// Files stump did not write (not in the old manifest) are left alone by an in-place
// update; a journal is not synced to disk, so it covers failures and killed processes,
// not a power loss.
type writer struct {
	dir     string // the output folder
	target  string // where files are written: dir, or the fresh folder
	fresh   bool
	old     map[string]manifest.Entry
	oldTime time.Time // modification time of the old manifest
	release bool      // drop a file's bytes once it is on disk

	queue chan *outFile
	wg    sync.WaitGroup

	mu    sync.Mutex
	err   error
	later []*outFile // writes that failed while streaming, tried again after deletes
	j     *journal

	dirs               sync.Map // folders known to exist under target (fresh mode)
	written, unchanged atomic.Int64
	// manifestSum is the SHA-256 of the manifest commit wrote (or found unchanged).
	manifestSum string

	lock *os.File // flock of the output folder's lock file (openOutputLock), held until unlock
}

// newWriter prepares writing into dir: it finishes (rolls back) a journal an earlier,
// killed build left, reads the old manifest and starts workers.
func newWriter(dir string, workers int, release bool) (*writer, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create output folder: %w", err)
	}
	// Builds of one output folder take turns: an in-place update must not meet
	// another, nor have its journal undone by another's recovery.
	lock, err := openOutputLock(dir)
	if err != nil {
		return nil, fmt.Errorf("lock the output folder: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock the output folder: %w", err)
	}
	w := &writer{dir: dir, release: release, queue: make(chan *outFile, workers*8), lock: lock}
	ok := false
	defer func() {
		if !ok {
			w.unlock()
		}
	}()
	if err := recoverJournal(dir); err != nil {
		return nil, err
	}
	mpath := filepath.Join(dir, manifest.FileName)
	fi, statErr := os.Stat(mpath)
	if m, err := manifest.Read(mpath); err == nil && statErr == nil {
		w.target = dir
		w.oldTime = fi.ModTime()
		w.old = make(map[string]manifest.Entry, len(m.Files))
		for _, e := range m.Files {
			w.old[e.Path] = e
		}
	} else {
		w.fresh = true
		w.target = filepath.Join(filepath.Dir(dir), ".stump-tmp-"+filepath.Base(dir)+"-"+randHex())
		if err := os.Mkdir(w.target, 0o755); err != nil {
			return nil, fmt.Errorf("create temporary output folder: %w", err)
		}
	}
	for range max(2, workers) {
		w.wg.Add(1)
		go w.work()
	}
	ok = true
	return w, nil
}

// openOutputLock opens the lock file of output folder dir: a file in the system's
// temporary folder named after the folder's absolute path, so that nothing but the
// site's folder appears in the output folder's parent.
func openOutputLock(dir string) (*os.File, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if p, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(p, filepath.Base(abs))
	}
	locks := filepath.Join(os.TempDir(), "stump-output-locks")
	if err := os.MkdirAll(locks, 0o777); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	return os.OpenFile(filepath.Join(locks, hex.EncodeToString(sum[:12])), os.O_CREATE|os.O_RDWR, 0o666)
}

// unlock lets the next build of the folder go ahead (after commit or abort).
func (w *writer) unlock() {
	if w.lock != nil {
		_ = w.lock.Close() // closing releases the flock
		w.lock = nil
	}
}

func randHex() string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return hex.EncodeToString(rnd[:])
}

// put queues a file to be written. Files copied from the source are read by the worker.
func (w *writer) put(f *outFile) { w.queue <- f }

func (w *writer) work() {
	defer w.wg.Done()
	for f := range w.queue {
		w.mu.Lock()
		failed := w.err != nil
		w.mu.Unlock()
		if failed {
			continue
		}
		if err := w.store(f); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
}

// store writes one file (or sees it unchanged) and drops its bytes when allowed.
func (w *writer) store(f *outFile) error {
	if f.data == nil {
		b, err := f.src.read()
		if err != nil {
			return err
		}
		f.data, f.sum = b, sha256.Sum256(b)
	}
	if !w.fresh && w.same(f) {
		w.unchanged.Add(1)
	} else if err := w.write(f.path, f.data); err != nil {
		if w.fresh {
			return err
		}
		// A path whose folder is an old file (or the reverse) is written after deletes.
		w.mu.Lock()
		w.later = append(w.later, f)
		w.mu.Unlock()
		return nil
	} else {
		w.written.Add(1)
	}
	if w.release {
		f.release()
	}
	return nil
}

// release drops f's bytes once they are on disk, keeping their size, and returns the
// pooled buffer they were lent in (outFile.buf).
func (f *outFile) release() {
	f.size, f.stored, f.data = int64(len(f.data)), true, nil
	if f.buf != nil {
		bufPool.Put(f.buf)
		f.buf = nil
	}
}

// same reports whether the old build wrote f's bytes at its path and the file is still
// as that build left it.
func (w *writer) same(f *outFile) bool {
	e, ok := w.old[f.path]
	if !ok || e.Size != int64(len(f.data)) || e.SHA256 != hex.EncodeToString(f.sum[:]) {
		return false
	}
	fi, err := os.Lstat(filepath.Join(w.dir, filepath.FromSlash(f.path)))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == e.Size && !fi.ModTime().After(w.oldTime)
}

// write puts data at rel: directly into a fresh folder, or through the journal.
func (w *writer) write(rel string, data []byte) error {
	p := filepath.Join(w.target, filepath.FromSlash(rel))
	if w.fresh {
		if err := w.mkdir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("create %s: %w", path.Dir(rel), err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
		return nil
	}
	j, err := w.journal()
	if err != nil {
		return err
	}
	return j.replace(w.dir, rel, data)
}

// mkdir makes folder d of the fresh tree and its parents, one mkdir each: folders it
// made are remembered (the tree is new, so nothing else makes them).
func (w *writer) mkdir(d string) error {
	if d == w.target {
		return nil
	}
	if _, ok := w.dirs.Load(d); ok {
		return nil
	}
	if err := w.mkdir(filepath.Dir(d)); err != nil {
		return err
	}
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	w.dirs.Store(d, true)
	return nil
}

func (w *writer) journal() (*journal, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.j == nil {
		j, err := openJournal(w.dir)
		if err != nil {
			return nil, err
		}
		w.j = j
	}
	return w.j, nil
}

// wait stops the workers once the queue is drained and returns the first error.
func (w *writer) wait() error {
	close(w.queue)
	w.wg.Wait()
	return w.err
}

// commit finishes the tree: deletes what the build no longer has, writes the manifest
// and drops the journal (in place), or swaps the fresh folder in.
func (w *writer) commit(m *manifest.Manifest) error {
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(mb)
	w.manifestSum = hex.EncodeToString(sum[:])
	if w.fresh {
		if err := os.WriteFile(filepath.Join(w.target, manifest.FileName), mb, 0o644); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
		return swap(w.target, w.dir)
	}
	keep := make(map[string]bool, len(m.Files))
	for _, e := range m.Files {
		keep[e.Path] = true
	}
	var gone []string
	for p := range w.old {
		if !keep[p] {
			gone = append(gone, p)
		}
	}
	if len(gone) == 0 && len(w.later) == 0 && w.j == nil {
		// Nothing changed: the manifest's bytes are the same unless an entry's metadata
		// (class, keys, redirect) moved; rewrite it only then.
		if old, err := os.ReadFile(filepath.Join(w.dir, manifest.FileName)); err == nil && string(old) == string(mb) {
			return nil
		}
	}
	j, err := w.journal()
	if err != nil {
		return err
	}
	for _, p := range gone {
		if err := j.remove(w.dir, p); err != nil {
			return err
		}
	}
	for _, f := range w.later {
		if err := j.replace(w.dir, f.path, f.data); err != nil {
			return err
		}
		w.written.Add(1)
		if w.release {
			f.release()
		}
	}
	if err := j.replace(w.dir, manifest.FileName, mb); err != nil {
		return err
	}
	return j.close()
}

// abort undoes everything written: the fresh folder is removed, an in-place update is
// rolled back from its journal.
func (w *writer) abort() error {
	if w.fresh {
		return os.RemoveAll(w.target)
	}
	if w.j == nil {
		return nil
	}
	return w.j.rollback()
}

// swap puts the folder tmp at dir. When dir exists the two are exchanged atomically
// (renameat2 RENAME_EXCHANGE) and the old tree, now at tmp, is removed; readers never see
// a missing or half-written dir.
func swap(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("move new output into place: %w", err)
		}
		return nil
	}
	if err := exchange(tmp, dir); err != nil {
		// Filesystems without RENAME_EXCHANGE: move the old tree aside, then the new in.
		old := tmp + "-old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("move old output aside: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir)
			return fmt.Errorf("move new output into place: %w", err)
		}
		return os.RemoveAll(old)
	}
	return os.RemoveAll(tmp)
}
