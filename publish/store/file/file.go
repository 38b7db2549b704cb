// Package file is a store.Store in a local folder, with the key layout of S3: object
// "a/b.html" is the file <root>/a/b.html, so the folder can be served as it is or
// inspected by hand. It is stump's embedded default target.
//
// # Layout
//
// An object's Meta and ETag (its sidecar, JSON) are kept in the extended attribute
// "user.stump" of its file, so a write makes one file and one rename. On a file
// system without user attributes (and on systems other than Linux) they are kept in
// the sidecar tree <root>/.stump-meta instead: object "a/b.html" has them in
// <root>/.stump-meta/a/b.html.json. Folders written before attributes were used are
// read the same way (an object's attribute wins over its sidecar file; a write
// removes the file). Copy the folder with its attributes (cp -a, rsync -aX): an object
// without either has the ETag of its bytes and no Meta. <root>/.stump-meta/.lock is
// the lock file. While a write is under way its bytes sit in a temporary file
// ".stump-tmp-<random>" in the object's own folder. Keys whose first segment is
// ".stump-meta" or with a segment starting with ".stump-tmp-" are therefore rejected
// (ErrPermanent), and List never shows such files. Unlike S3, a folder cannot hold
// both an object "a" and an object "a/b": the second write fails with ErrPermanent.
//
// # ETag
//
// The quoted hex SHA-256 of the bytes, a dash, and 8 hex digits of the SHA-256 of the
// Meta: `"<sha256>-<meta>"`. Equal bytes and Meta give equal ETags.
//
// # Writes and locking
//
// An object is never modified in place: every Put writes a new temporary file (its
// SHA-256 checked while it is written) with its sidecar attribute (or a temporary
// sidecar file) and renames it into place. Copy makes its new file a hard link of the
// source's file when the file system allows it and the two objects have the same Meta
// (a hard link shares the attribute), else copies the bytes; the link is safe only
// because of that invariant (a later Put of the source renames a new file over it and
// leaves the copy's file alone). Don't edit the folder's files in place: a sidecar
// notices such an edit (inode, size and modification time no longer match) and the
// ETag is then recomputed from the bytes, but a hard-linked copy would change too.
//
// The renames of a write, and the conditions of IfNoneMatch and IfMatch, run
// under an exclusive flock(2) of the lock file, so conditional writes are atomic
// across processes that share the folder (a local file system: flock over NFS is not
// reliable). Reads hold the shared lock while they look at an object's file and
// sidecar, so they never see the bytes of one write with the ETag of another.
//
// # Durability
//
// Unconditional writes are not fsynced: deploys write thousands of files and the
// speed matters more than surviving a power cut. A conditional write (IfNoneMatch or
// IfMatch: the lock, a record, the pointer), unless PutOptions.Deferred, makes every
// object this Store wrote before it durable before its own renames, and its own files
// with them; after its renames it makes its folders durable before it returns. So everything a
// committed pointer names is durable once the pointer is. Each of those two steps is
// a flush: it fsyncs the files written since the last flush and their folders (many
// in parallel), or flushes the whole file system (syncfs(2), Linux) when there are
// many or when objects were deleted since. Concurrent conditional writes share
// flushes: one waits at most for the flush under way and the next one, which covers
// every caller that came meanwhile. After a power cut an object written without sync
// may be empty or missing; its Info shows the real size and an ETag of the real bytes.
//
// # Symlinks
//
// No operation follows a symlink, wherever it was planted in the folder (a folder on
// a key's path, the object file itself, the sidecar tree): on Linux (5.6 and later)
// each folder is opened with openat2(2) and RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from
// the store folder and the last component used with the *at system calls, which do not
// follow it; elsewhere, os.Root (which follows symlinks only while they stay inside the
// folder). A symlink where an object would be is not an object (Get: ErrNotFound; a
// write replaces the symlink itself). The descriptors of recently used folders stay
// open between calls; one whose folder was removed (pruned by a Delete, here or in
// another process) is dropped and the call run again on the folder that is there now.
package file

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/stump-dev/stump/publish/store"
)

const (
	metaDir   = ".stump-meta"
	lockName  = metaDir + "/.lock"
	tmpPrefix = ".stump-tmp-"
)

// Store is a store.Store in a local folder. Its methods are safe for concurrent use.
type Store struct {
	dir  string // absolute path of the folder
	root fsys

	// mu orders this process's goroutines before they take the flock, so that few
	// of them block in the system call at once.
	mu    sync.RWMutex
	locks chan *os.File // open descriptors of the lock file, reused
	syncf *os.File      // the sidecar folder, for syncfs
	dirty dirtySet      // written and not yet flushed (see flush)
	sums  sums          // checksums of files written or read, for Copy
	// attrs: sidecars are written as attributes (the file system has them).
	attrs bool
}

// forceSideFiles makes Open keep sidecars in files (tests run the store both ways).
var forceSideFiles = false

var _ store.Store = (*Store)(nil)

// Open opens the folder dir as a store. It creates dir when it is missing but its
// parent folder exists; when the parent is missing too it fails with an error wrapping
// store.ErrNotFound. Close the store when done.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, store.Errorf(store.ErrPermanent, nil, "file target: no folder given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, store.Errorf(store.ErrPermanent, err, "file target %s: %v", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && !fi.IsDir():
		return nil, store.Errorf(store.ErrPermanent, nil, "file target %s is not a folder", abs)
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(abs)
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return nil, store.Errorf(store.ErrNotFound, nil, "file target %s: folder %s does not exist", abs, parent)
		}
		if err := os.Mkdir(abs, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, wrapOS("create folder", abs, err)
		}
	case err != nil:
		return nil, wrapOS("open folder", abs, err)
	}
	root, err := openFS(abs)
	if err != nil {
		return nil, wrapOS("open folder", abs, err)
	}
	s := &Store{dir: abs, root: root, locks: make(chan *os.File, 16)}
	if err := root.MkdirAll(metaDir, 0o755); err != nil {
		root.Close()
		return nil, wrapOS("create folder", filepath.Join(abs, metaDir), err)
	}
	f, err := s.openLock()
	if err != nil {
		root.Close()
		return nil, err
	}
	// The lock file tells whether the file system has user attributes.
	_, aerr := getAttr(f)
	s.attrs = !forceSideFiles && (aerr == nil || errors.Is(aerr, errNoAttr))
	s.locks <- f
	if s.syncf, err = root.Open(metaDir); err != nil {
		s.Close()
		return nil, wrapOS("open folder", filepath.Join(abs, metaDir), err)
	}
	return s, nil
}

// Close releases the folder. The store must not be used after.
func (s *Store) Close() error {
	for {
		select {
		case f := <-s.locks:
			f.Close()
		default:
			if s.syncf != nil {
				s.syncf.Close()
			}
			return s.root.Close()
		}
	}
}

// String is the store's file:// URL.
func (s *Store) String() string { return "file://" + filepath.ToSlash(s.dir) }

// Dir is the absolute path of the store's folder.
func (s *Store) Dir() string { return s.dir }

// checkKey validates key for this store.
func checkKey(key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if key == metaDir || strings.HasPrefix(key, metaDir+"/") {
		return invalidKey(key, metaDir+" is reserved by the file store")
	}
	if strings.HasPrefix(key, tmpPrefix) || strings.Contains(key, "/"+tmpPrefix) {
		return invalidKey(key, "names starting with "+tmpPrefix+" are reserved by the file store")
	}
	return nil
}

func reserved(name string, top bool) bool {
	return (top && name == metaDir) || strings.HasPrefix(name, tmpPrefix)
}

// dataPath and sidePath are the root-relative names of key's file and sidecar.
func dataPath(key string) string { return filepath.FromSlash(key) }
func sidePath(key string) string { return filepath.FromSlash(metaDir + "/" + key + ".json") }

// parent is the root-relative folder of a slash path ("." at the top).
func parent(p string) string { return filepath.Dir(p) }

// ---- locking

func (s *Store) openLock() (*os.File, error) {
	f, err := s.root.OpenFile(filepath.FromSlash(lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, wrapOS("open lock file", filepath.Join(s.dir, lockName), err)
	}
	return f, nil
}

// lock takes the store's lock, shared or exclusive, in this process and across
// processes. Call the returned function to release it.
func (s *Store) lock(exclusive bool) (func(), error) {
	if exclusive {
		s.mu.Lock()
	} else {
		s.mu.RLock()
	}
	release := func() {
		if exclusive {
			s.mu.Unlock()
		} else {
			s.mu.RUnlock()
		}
	}
	var f *os.File
	select {
	case f = <-s.locks:
	default:
		var err error
		if f, err = s.openLock(); err != nil {
			release()
			return nil, err
		}
	}
	if err := flock(f, exclusive); err != nil {
		f.Close()
		release()
		return nil, wrapOS("lock", filepath.Join(s.dir, lockName), err)
	}
	return func() {
		if funlock(f) != nil {
			f.Close() // closing releases the lock too
		} else {
			select {
			case s.locks <- f:
			default:
				f.Close()
			}
		}
		release()
	}, nil
}

// ---- reading

// object is what a look at a key saw under the shared lock.
type object struct {
	f     *os.File    // the open file, when asked for
	fi    fs.FileInfo // the data file
	sc    sidecar     // its sidecar (zero when there is none)
	fresh bool        // sc describes the data file
}

// lookLocked stats key's data file (and opens it when open is set) and reads its
// sidecar. The caller holds the lock. ErrNotFound when there is no regular file.
func (s *Store) lookLocked(op, key string, open bool) (object, error) {
	return s.lookLockedSum(op, key, open, false)
}

// lookLockedSum is lookLocked; with sumOnly set, the caller needs the checksum of the
// bytes but not the Meta: a sum this store remembers for the very file (see sums)
// spares reading the sidecar.
func (s *Store) lookLockedSum(op, key string, open, sumOnly bool) (object, error) {
	var o object
	fi, err := s.root.Lstat(dataPath(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return o, store.Errorf(store.ErrNotFound, err, "%s %s: no such object", op, key)
		}
		return o, wrapOS(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		return o, store.Errorf(store.ErrNotFound, nil, "%s %s: no such object (a %s is there)", op, key, kind(fi))
	}
	if open {
		if o.f, err = s.root.Open(dataPath(key)); err != nil {
			return o, wrapOS(op, key, err)
		}
		if fi, err = o.f.Stat(); err != nil {
			o.f.Close()
			return o, wrapOS(op, key, err)
		}
	}
	o.fi = fi
	if sumOnly {
		if sc, ok := s.sums.get(key, fi); ok {
			o.sc, o.fresh = sc, true
			return o, nil
		}
	}
	// A sidecar file that describes the data file wins over its attribute (see
	// Copy), then an attribute that does. When neither does (the file was edited by
	// hand), the sidecar file's Meta is kept, else the attribute's: a sidecar file is
	// written for its key only, an attribute is shared by hard links.
	var side *sidecar
	if b, err := s.root.ReadFile(sidePath(key)); err == nil && json.Unmarshal(b, &o.sc) == nil {
		o.fresh = o.sc.describes(fi)
		if o.fresh {
			s.sums.put(key, o.sc)
			return o, nil
		}
		side = &o.sc
	}
	if s.attrs {
		f := o.f
		if f == nil {
			if f, err = s.root.Open(dataPath(key)); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return o, store.Errorf(store.ErrNotFound, err, "%s %s: no such object", op, key)
				}
				return o, wrapOS(op, key, err)
			}
			defer f.Close()
		}
		var sc sidecar
		if b, err := getAttr(f); err == nil && json.Unmarshal(b, &sc) == nil {
			sc.inAttr = true
			if sc.describes(fi) {
				o.sc, o.fresh = sc, true
				s.sums.put(key, o.sc)
			} else if side == nil {
				o.sc = sc
			}
		}
	}
	return o, nil
}

func kind(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "folder"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// info completes o into key's Info. A stale or missing sidecar is replaced by one
// made from the bytes (hashed again) and the Meta the old sidecar held, if any.
func (s *Store) info(op, key string, o *object) (store.Info, error) {
	if !o.fresh {
		f := o.f
		if f == nil {
			var err error
			if f, err = s.root.Open(dataPath(key)); err != nil {
				return store.Info{}, wrapOS(op, key, err)
			}
			defer f.Close()
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return store.Info{}, wrapOS(op, key, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return store.Info{}, wrapOS(op, key, err)
		}
		fi, err := f.Stat()
		if err != nil {
			return store.Info{}, wrapOS(op, key, err)
		}
		o.fi = fi
		o.sc = newSidecar(hex.EncodeToString(h.Sum(nil)), fi, normMeta(o.sc.meta()))
		o.fresh = true
	}
	return o.sc.info(key, o.fi), nil
}

// look is lookLocked under the shared lock.
func (s *Store) look(op, key string, open bool) (object, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return object{}, err
	}
	defer unlock()
	return s.lookLocked(op, key, open)
}

// Get opens an object. Body is the open file: a later write of the key does not
// change what it reads.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	if err := begin(ctx, "get", key); err != nil {
		return nil, store.Info{}, err
	}
	o, err := s.look("get", key, true)
	if err != nil {
		return nil, store.Info{}, err
	}
	info, err := s.info("get", key, &o)
	if err != nil {
		o.f.Close()
		return nil, store.Info{}, err
	}
	return o.f, info, nil
}

// Head returns an object's Info.
func (s *Store) Head(ctx context.Context, key string) (store.Info, error) {
	if err := begin(ctx, "head", key); err != nil {
		return store.Info{}, err
	}
	o, err := s.look("head", key, false)
	if err != nil {
		return store.Info{}, err
	}
	return s.info("head", key, &o)
}

func begin(ctx context.Context, op, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// ---- writing

// createTemp creates a new temporary file in the root-relative folder dir, creating
// the folder first. A concurrent Delete may prune the folder between the two steps:
// then it tries again.
func (s *Store) createTemp(op, key, dir string) (*os.File, string, error) {
	for attempt := 0; ; attempt++ {
		name, err := s.tempName(op, key, dir)
		if err != nil {
			return nil, "", err
		}
		f, err := s.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, name, nil
		}
		if attempt < 10 && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)) {
			continue
		}
		return nil, "", wrapOS(op, key, err)
	}
}

// tempName makes sure folder dir exists and returns a fresh temporary name in it.
func (s *Store) tempName(op, key, dir string) (string, error) {
	if err := s.mkdirs(op, key, dir); err != nil {
		return "", err
	}
	var b [8]byte
	rand.Read(b[:])
	return filepath.Join(dir, tmpPrefix+hex.EncodeToString(b[:])), nil
}

// mkdirs creates the root-relative folder dir and its parents. A concurrent Delete
// may prune a parent while it works: then it tries again.
func (s *Store) mkdirs(op, key, dir string) error {
	if dir == "." {
		return nil
	}
	var err error
	for range 10 {
		if err = s.root.MkdirAll(dir, 0o755); err == nil {
			return nil
		}
		// A file in the way of one of the folders?
		for p := filepath.ToSlash(dir); p != "."; p = path.Dir(p) {
			if fi, lerr := s.root.Lstat(filepath.FromSlash(p)); lerr == nil && !fi.IsDir() {
				return store.Errorf(store.ErrPermanent, err,
					"%s %s: the file %s is in the way of the folder %s (a file store cannot hold both an object %q and objects under %q)",
					op, key, p, filepath.ToSlash(dir), p, p+"/")
			}
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return wrapOS(op, key, err)
}

// ctxReader stops reading when ctx is done, and keeps the reader's error apart from
// the writer's.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Put writes an object: to a temporary file while hashing it (checked against
// opts.SHA256), then renamed into place with its sidecar. A size < 0 is not checked.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	if err := begin(ctx, "put", key); err != nil {
		return "", err
	}
	if opts.SHA256 != "" && !isHexSHA256(opts.SHA256) {
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: SHA256 %q is not 64 hex digits", key, opts.SHA256)
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: IfNoneMatch and IfMatch together", key)
	}
	// A conditional write is made durable with all that came before it, unless the
	// caller defers that to a later one.
	conditional := (opts.IfNoneMatch || opts.IfMatch != "") && !opts.Deferred
	meta := normMeta(opts.Meta)

	f, tmp, err := s.createTemp("put", key, parent(dataPath(key)))
	if err != nil {
		return "", err
	}
	committed := false
	defer func() {
		if !committed {
			s.root.Remove(tmp)
		}
	}()
	h := sha256.New()
	r := &ctxReader{ctx: ctx, r: body}
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil && err == r.err {
		f.Close()
		return "", fmt.Errorf("put %s: read body: %w", key, err)
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if err != nil {
		f.Close()
		return "", wrapOS("put", key, err)
	}
	if size >= 0 && n != size {
		f.Close()
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: the body has %d bytes, not the %d announced", key, n, size)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if opts.SHA256 != "" && !strings.EqualFold(sum, opts.SHA256) {
		f.Close()
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: checksum mismatch: the body's SHA-256 is %s, expected %s", key, sum, opts.SHA256)
	}
	sc := newSidecar(sum, fi, meta)
	inAttr := false
	if s.attrs {
		inAttr, err = s.writeAttr(f, &sc)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", wrapOS("put", key, err)
	}
	if err := s.commit(ctx, "put", key, tmp, sc, opts, conditional, false, !inAttr); err != nil {
		return "", err
	}
	committed = true
	return sc.ETag, nil
}

// writeAttr writes sc as the attribute of the open data file f. It reports false,
// and no error, when the file system does not take an attribute that large (a page
// with very many surrogate keys): the sidecar is then a file.
func (s *Store) writeAttr(f *os.File, sc *sidecar) (bool, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return false, err
	}
	if err := setAttr(f, b); errors.Is(err, errAttrTooLarge) || errors.Is(err, errAttrUnsupported) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	sc.inAttr = true
	return true, nil
}

// commit, under the exclusive lock, checks the conditions of opts and renames the
// data file tmp into place. With side set, sc is written to a temporary sidecar file
// first and renamed into place before tmp; else sc is tmp's attribute already and a
// sidecar file of key is removed after the rename. With sync set,
// it first makes every earlier write and the temporary files durable, and after the
// renames their folders (see durable). Linked says tmp is a hard link (Copy's), which
// the rename leaves in place when it is a link of the very file it replaces: then
// commit removes it.
func (s *Store) commit(ctx context.Context, op, key, tmp string, sc sidecar, opts store.PutOptions, sync, linked, side bool) error {
	var err error
	stmp := ""
	renamed := false
	if side {
		b, err := json.Marshal(sc)
		if err != nil {
			return wrapOS(op, key, err)
		}
		var sf *os.File
		if sf, stmp, err = s.createTemp(op, key, parent(sidePath(key))); err != nil {
			return err
		}
		defer func() {
			if !renamed {
				s.root.Remove(stmp)
			}
		}()
		_, err = sf.Write(b)
		if cerr := sf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return wrapOS(op, key, err)
		}
	}
	if sync {
		s.markDirty(false, tmp)
		if stmp != "" {
			s.markDirty(false, stmp)
		}
		err = s.durable()
	}
	if err != nil {
		return wrapOS(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	renamed, err = s.swap(op, key, tmp, stmp, opts, linked)
	if err != nil {
		return err
	}
	s.sums.put(key, sc)
	names := []string{dataPath(key)}
	if stmp != "" {
		names = append(names, sidePath(key))
	}
	if sync {
		// The renames are done: an error here is no reason to report the write
		// failed (a retry of an IfNoneMatch write would fail on its own object).
		for _, n := range names {
			s.markDirs(parent(n))
		}
		s.durable()
	} else {
		s.markDirty(true, names...)
	}
	return nil
}

// swap checks the conditions of opts under the exclusive lock and renames the data
// file tmp and the sidecar file stmp ("": none, the sidecar is tmp's attribute) into
// place; renamed reports the sidecar file's rename (true without one once tmp's is
// done).
func (s *Store) swap(op, key, tmp, stmp string, opts store.PutOptions, linked bool) (renamed bool, err error) {
	unlock, err := s.lock(true)
	if err != nil {
		return false, err
	}
	defer unlock()
	switch {
	case opts.IfNoneMatch:
		fi, err := s.root.Lstat(dataPath(key))
		if err == nil && fi.Mode().IsRegular() {
			return false, store.Errorf(store.ErrPrecondition, nil, "%s %s: the object exists already (IfNoneMatch)", op, key)
		}
	case opts.IfMatch != "":
		o, err := s.lookLocked(op, key, false)
		if errors.Is(err, store.ErrNotFound) {
			return false, store.Errorf(store.ErrPrecondition, nil, "%s %s: no such object to replace (IfMatch %s)", op, key, opts.IfMatch)
		}
		if err != nil {
			return false, err
		}
		cur, err := s.info(op, key, &o)
		if err != nil {
			return false, err
		}
		if !sameETag(cur.ETag, opts.IfMatch) {
			return false, store.Errorf(store.ErrPrecondition, nil, "%s %s: the object changed (ETag %s, not %s)", op, key, cur.ETag, opts.IfMatch)
		}
	}
	side := stmp != ""
	if side {
		// The sidecar first: a folder in its way stops the write before it changed
		// anything. A crash between the two renames leaves a sidecar that does not
		// describe the data file (see sidecar), unless the data file is the very file
		// it names (a Copy over a link of its own source), whose bytes it does describe.
		if err := s.root.Rename(stmp, sidePath(key)); err != nil {
			if folderInTheWay(err) {
				return false, store.Errorf(store.ErrPermanent, err, "%s %s: the sidecar %s is a folder (an object %s.json/... exists)", op, key, filepath.ToSlash(sidePath(key)), key)
			}
			return false, wrapOS(op, key, err)
		}
		if betweenRenames != nil {
			betweenRenames()
		}
	}
	if err := s.root.Rename(tmp, dataPath(key)); err != nil {
		if folderInTheWay(err) {
			if side {
				// No object can have this key: take its new sidecar away. (After any
				// other error the sidecar stays, describing no file: stale.)
				s.root.Remove(sidePath(key))
			}
			return side, store.Errorf(store.ErrPermanent, err, "%s %s: %s is a folder (a file store cannot hold both an object %q and objects under %q)", op, key, key, key, key+"/")
		}
		return side, wrapOS(op, key, err)
	}
	// When tmp was a hard link of the file it replaced, rename did nothing: remove it.
	if linked {
		if err := s.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, wrapOS(op, key, err)
		}
	}
	if !side {
		if betweenRenames != nil {
			betweenRenames()
		}
		// A sidecar file (a Copy's, or an older stump's) would win over the attribute.
		if err := s.root.Remove(sidePath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			if fi, lerr := s.root.Lstat(sidePath(key)); lerr == nil && !fi.IsDir() {
				return true, wrapOS(op, key, err)
			}
		}
	}
	return true, nil
}

// folderInTheWay reports a rename that failed because a folder is where the file goes.
func folderInTheWay(err error) bool {
	return errors.Is(err, syscall.EISDIR) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}

// Copy copies src to dst with the Meta of opts. The new file is a hard link of src's
// when the file system allows it (see the package doc), else a copy of its bytes. A
// link shares src's attribute: when that does not say what dst's sidecar must (another
// Meta: a blob copied to a page's path), dst's sidecar is a file, which wins over
// the attribute.
func (s *Store) Copy(ctx context.Context, src, dst string, opts store.PutOptions) error {
	if err := begin(ctx, "copy", src); err != nil {
		return err
	}
	if err := checkKey(dst); err != nil {
		return err
	}
	meta := normMeta(opts.Meta)
	tmp, err := s.tempName("copy", dst, parent(dataPath(dst)))
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			s.root.Remove(tmp)
		}
	}()

	// Link src under the shared lock, so that its sidecar describes what we link.
	unlock, err := s.lock(false)
	if err != nil {
		return err
	}
	o, err := s.lookLockedSum("copy", src, false, true)
	linked := false
	if err == nil {
		if link(s.root, dataPath(src), tmp) == nil {
			linked = true
		} else {
			// No hard links here (or too many, or the folder was just pruned):
			// copy the bytes from an open file.
			o.f, err = s.root.Open(dataPath(src))
			if err == nil {
				o.fi, err = o.f.Stat()
				o.fresh = o.fresh && o.sc.describes(o.fi)
			}
		}
	}
	unlock()
	if err != nil {
		if o.f != nil {
			o.f.Close()
		}
		if errors.Is(err, store.ErrNotFound) {
			return store.Errorf(store.ErrNotFound, err, "copy %s to %s: no such object %s", src, dst, src)
		}
		return wrapOS("copy", src, err)
	}
	var fi fs.FileInfo
	var copied *os.File // the new file, when the bytes were copied
	if linked && !o.fresh {
		// Hash the linked file, not src, which may have been replaced since.
		if o.f, err = s.root.Open(tmp); err != nil {
			return wrapOS("copy", dst, err)
		}
		defer o.f.Close()
	} else if o.f != nil {
		defer o.f.Close()
		f, name, err := s.createTemp("copy", dst, parent(dataPath(dst)))
		if err != nil {
			return err
		}
		defer func() {
			if !committed {
				s.root.Remove(name)
			}
		}()
		tmp, copied = name, f
		defer copied.Close()
		_, err = io.Copy(f, &ctxReader{ctx: ctx, r: o.f})
		if err == nil {
			fi, err = f.Stat()
		}
		if err == nil {
			_, err = o.f.Seek(0, io.SeekStart)
		}
		if err != nil {
			return wrapOS("copy", src, err)
		}
	}
	if _, err := s.info("copy", src, &o); err != nil { // hashes only when src's sidecar was stale
		return err
	}
	if linked {
		fi = o.fi // the same file: src's under the lock, or tmp's when hashed
	}
	sc := newSidecar(o.sc.SHA256, fi, meta)
	// A link keeps src's attribute when it says the same (dst's sidecar then needs no
	// file); copied bytes get their own attribute (unless it is too large).
	side := true
	switch {
	case linked:
		side = !s.attrs || !(o.sc.inAttr && o.fresh && sameMeta(o.sc.meta(), meta))
		sc.inAttr = !side
	case s.attrs:
		inAttr, err := s.writeAttr(copied, &sc)
		if err != nil {
			return wrapOS("copy", dst, err)
		}
		side = !inAttr
	}
	if copied != nil {
		if err := copied.Close(); err != nil {
			return wrapOS("copy", dst, err)
		}
	}
	if err := s.commit(ctx, "copy", dst, tmp, sc, store.PutOptions{}, false, linked, side); err != nil {
		return err
	}
	committed = true
	return nil
}

// Delete removes objects and their sidecars, then the folders left empty.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := begin(ctx, "delete", key); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			unlock()
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if fi, err := s.root.Lstat(dataPath(key)); err == nil && !fi.IsDir() {
			if err := s.root.Remove(dataPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				unlock()
				return wrapOS("delete", key, err)
			}
		}
		if fi, err := s.root.Lstat(sidePath(key)); err == nil && !fi.IsDir() {
			if err := s.root.Remove(sidePath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				unlock()
				return wrapOS("delete", key, err)
			}
		}
		dirs[path.Dir(key)] = true
	}
	unlock()
	s.markDeleted()
	s.prune(dirs)
	return nil
}

// prune removes the folders of dirs (slash paths relative to the root), and their
// parents, that are empty, in both the object and the sidecar trees. A folder that is
// not empty (or is being written to) stays.
func (s *Store) prune(dirs map[string]bool) {
	for len(dirs) > 0 {
		// Deepest first, so that a parent is tried after its children.
		deepest, depth := "", -1
		for d := range dirs {
			if n := strings.Count(d, "/"); n > depth || (n == depth && d < deepest) {
				deepest, depth = d, n
			}
		}
		delete(dirs, deepest)
		if deepest == "." {
			continue
		}
		s.root.Remove(filepath.FromSlash(metaDir + "/" + deepest))
		if s.root.Remove(filepath.FromSlash(deepest)) == nil {
			dirs[path.Dir(deepest)] = true
		}
	}
}

// betweenRenames, in tests, runs between the two renames of a write (with the
// sidecar in an attribute: between the rename and the removal of a sidecar file).
var betweenRenames func()

// link makes a hard link; tests replace it to exercise Copy's fallback.
var link = func(root fsys, oldname, newname string) error { return root.Link(oldname, newname) }

// ---- listing

// List calls fn for every object whose key starts with prefix, in lexical order of
// the keys (not the file system's order: "a.b" comes before "a/b"). Info.Meta is
// filled in too.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	// Start in the deepest folder the prefix names; only its entries are read.
	start := "."
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		start = prefix[:i]
		if checkKey(start) != nil {
			return nil // no object can have this prefix
		}
	}
	return s.walk(ctx, start, prefix, fn)
}

// walk lists the folder dir (a slash path relative to the root).
func (s *Store) walk(ctx context.Context, dir, prefix string, fn func(store.Info) error) error {
	d, err := s.root.Open(filepath.FromSlash(dir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		if fi, lerr := s.root.Lstat(filepath.FromSlash(dir)); lerr == nil && !fi.IsDir() {
			return nil // a symlink, not followed
		}
		return wrapOS("list", prefix, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return wrapOS("list", prefix, err)
	}
	type entry struct {
		name, sortKey string
		dir           bool
	}
	var es []entry
	for _, e := range entries {
		if reserved(e.Name(), dir == ".") {
			continue
		}
		switch {
		case e.IsDir():
			es = append(es, entry{e.Name(), e.Name() + "/", true})
		case e.Type().IsRegular():
			es = append(es, entry{e.Name(), e.Name(), false})
		}
	}
	// A folder sorts as its name plus "/", so that its keys fall in lexical order
	// among its siblings'.
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range es {
		key := e.name
		if dir != "." {
			key = dir + "/" + e.name
		}
		if e.dir {
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				if err := s.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if store.CheckKey(key) != nil {
			continue // a file no key can name
		}
		o, err := s.look("list", key, false)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		info, err := s.info("list", key, &o)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
