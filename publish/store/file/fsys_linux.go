package file

import (
	"container/list"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openFS opens the store folder dir: with beneath where the kernel has openat2(2)
// (Linux 5.6), else (an older kernel, or a sandbox that refuses the call) with os.Root.
func openFS(dir string) (fsys, error) {
	if forceRoot {
		return openRoot(dir)
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return openRoot(dir)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	t := &beneath{dir: dir, dirs: map[string]*dirRef{}}
	t.root = &dirRef{name: ".", fd: fd, refs: 1} // never released: closed by Close
	return t, nil
}

// forceRoot makes openFS use os.Root (tests run the store on both).
var forceRoot = false

// beneath is the store folder on Linux. A name's folder is resolved in one openat2(2)
// call from the store folder's descriptor, with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (no
// ".." out of it, no symlink anywhere on the way, so none planted in the folder leads
// out of it), and the last component is then used with the *at system calls, which do
// not follow it either (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW; rename, link and unlink never
// follow it). os.Root gives the same guarantee but opens every folder on the path one
// by one, for every call.
//
// The descriptors of the folders last used (dirCacheMax) stay open between calls. A
// folder removed meanwhile (a Delete prunes the folders it empties, maybe in another
// process) keeps its descriptor valid but empty and closed to new entries: a call that
// gets ENOENT or ESTALE through a cached descriptor of a folder that has no links any
// more drops it and runs again on a freshly resolved one. The store never moves
// folders; one moved by hand (out of the store folder, even) is still reached through
// its cached descriptor, as os.Root's own descriptor follows the store folder itself.
type beneath struct {
	dir  string  // absolute path, for messages
	root *dirRef // the store folder

	mu   sync.Mutex
	dirs map[string]*dirRef // cached folders by name
	lru  list.List          // of *dirRef, the most recently used first
}

// dirRef is an open folder descriptor, shared by the calls that use it.
type dirRef struct {
	name string
	fd   int
	refs int           // calls using fd, plus one while cached
	elem *list.Element // in lru while cached
}

// split returns name's folder and last component.
func split(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

// get returns the open folder dir ("." is the store folder) and whether it came from
// the cache. Call put when done with it.
func (t *beneath) get(dir string) (*dirRef, bool, error) {
	if dir == "." || dir == "" {
		return t.root, false, nil
	}
	t.mu.Lock()
	if d := t.dirs[dir]; d != nil {
		d.refs++
		t.lru.MoveToFront(d.elem)
		t.mu.Unlock()
		return d, true, nil
	}
	t.mu.Unlock()
	fd, err := t.resolve(dir)
	if err != nil {
		return nil, false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.dirs[dir]; d != nil { // resolved meanwhile by another call: use that one
		unix.Close(fd)
		d.refs++
		t.lru.MoveToFront(d.elem)
		return d, false, nil
	}
	d := &dirRef{name: dir, fd: fd, refs: 2}
	d.elem = t.lru.PushFront(d)
	t.dirs[dir] = d
	for t.lru.Len() > dirCacheMax {
		t.uncacheLocked(t.lru.Back().Value.(*dirRef))
	}
	return d, false, nil
}

// resolve opens the folder dir beneath the store folder, following no symlink.
func (t *beneath) resolve(dir string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat2(t.root.fd, dir, how)
		if err == nil {
			return fd, nil
		}
		// EAGAIN: a rename elsewhere on the file system raced the lookup.
		if (err == unix.EAGAIN || err == unix.EINTR) && attempt < 100 {
			if attempt > 10 {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		return -1, &fs.PathError{Op: "open", Path: filepath.Join(t.dir, dir), Err: err}
	}
}

// put releases a folder get returned.
func (t *beneath) put(d *dirRef) {
	if d == t.root {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(d)
}

func (t *beneath) releaseLocked(d *dirRef) {
	d.refs--
	if d.refs == 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

// uncacheLocked takes d out of the cache; its descriptor is closed once no call uses it.
func (t *beneath) uncacheLocked(d *dirRef) {
	if d.elem == nil {
		return
	}
	t.lru.Remove(d.elem)
	d.elem = nil
	delete(t.dirs, d.name)
	t.releaseLocked(d)
}

// drop takes d out of the cache if it is still there.
func (t *beneath) drop(d *dirRef) {
	if d == t.root {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.uncacheLocked(d)
}

// forget takes the folder name out of the cache (it was removed).
func (t *beneath) forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.dirs[name]; d != nil {
		t.uncacheLocked(d)
	}
}

// stale reports whether err, from a call through the cached folder d, comes from d
// having been removed since it was opened.
func stale(d *dirRef, err error) bool {
	if errors.Is(err, unix.ESTALE) {
		return true
	}
	if !errors.Is(err, unix.ENOENT) {
		return false
	}
	var st unix.Stat_t
	return unix.Fstat(d.fd, &st) != nil || st.Nlink == 0
}

// at runs op with the descriptor of name's folder and name's last component, again on
// a freshly resolved descriptor when the cached one turns out to be stale.
func (t *beneath) at(name string, op func(fd int, base string) error) error {
	dir, base := split(name)
	for attempt := 0; ; attempt++ {
		d, cached, err := t.get(dir)
		if err != nil {
			return err
		}
		err = op(d.fd, base)
		retry := cached && attempt < 3 && err != nil && stale(d, err)
		if retry {
			t.drop(d)
		}
		t.put(d)
		if !retry {
			return err
		}
	}
}

// at2 is at for two names (rename, link).
func (t *beneath) at2(old, new string, op func(ofd int, obase string, nfd int, nbase string) error) error {
	odir, obase := split(old)
	ndir, nbase := split(new)
	for attempt := 0; ; attempt++ {
		od, ocached, err := t.get(odir)
		if err != nil {
			return err
		}
		nd, ncached, err := t.get(ndir)
		if err != nil {
			t.put(od)
			return err
		}
		err = op(od.fd, obase, nd.fd, nbase)
		retry := false
		if err != nil && attempt < 3 {
			if ocached && stale(od, err) {
				t.drop(od)
				retry = true
			}
			if ncached && stale(nd, err) {
				t.drop(nd)
				retry = true
			}
		}
		t.put(od)
		t.put(nd)
		if !retry {
			return err
		}
	}
}

func (t *beneath) path(name string) string { return filepath.Join(t.dir, name) }

func (t *beneath) Lstat(name string) (fs.FileInfo, error) {
	fi := &fileStat{name: filepath.Base(name)}
	err := t.at(name, func(fd int, base string) error {
		return ignoringEINTR(func() error { return unix.Fstatat(fd, base, &fi.st, unix.AT_SYMLINK_NOFOLLOW) })
	})
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: t.path(name), Err: unwrapPath(err)}
	}
	return fi, nil
}

func (t *beneath) Open(name string) (*os.File, error) {
	return t.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens name; a symlink there is not followed (ELOOP).
func (t *beneath) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	var nfd int
	err := t.at(name, func(fd int, base string) error {
		return ignoringEINTR(func() (err error) {
			nfd, err = unix.Openat(fd, base, flag|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(perm.Perm()))
			return err
		})
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: t.path(name), Err: unwrapPath(err)}
	}
	return os.NewFile(uintptr(nfd), t.path(name)), nil
}

// ReadFile reads a small file (a sidecar) without the stat os.ReadFile makes first.
func (t *beneath) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 0, 1024)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// MkdirAll creates the folder name and its parents. A folder it finds in the cache is
// taken to exist (a stale one is noticed when a file is created in it).
func (t *beneath) MkdirAll(name string, perm fs.FileMode) error {
	if name == "." || name == "" {
		return nil
	}
	d, _, err := t.get(name)
	if err == nil {
		t.put(d)
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	if dir, _ := split(name); dir != "." {
		if err := t.MkdirAll(dir, perm); err != nil {
			return err
		}
	}
	err = t.at(name, func(fd int, base string) error {
		return ignoringEINTR(func() error { return unix.Mkdirat(fd, base, uint32(perm.Perm())) })
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &fs.PathError{Op: "mkdir", Path: t.path(name), Err: unwrapPath(err)}
	}
	return nil
}

func (t *beneath) Rename(oldname, newname string) error {
	err := t.at2(oldname, newname, func(ofd int, obase string, nfd int, nbase string) error {
		return ignoringEINTR(func() error { return unix.Renameat(ofd, obase, nfd, nbase) })
	})
	if err != nil {
		return &os.LinkError{Op: "rename", Old: t.path(oldname), New: t.path(newname), Err: unwrapPath(err)}
	}
	return nil
}

// Link makes a hard link; a symlink at oldname is linked itself, not followed.
func (t *beneath) Link(oldname, newname string) error {
	err := t.at2(oldname, newname, func(ofd int, obase string, nfd int, nbase string) error {
		return ignoringEINTR(func() error { return unix.Linkat(ofd, obase, nfd, nbase, 0) })
	})
	if err != nil {
		return &os.LinkError{Op: "link", Old: t.path(oldname), New: t.path(newname), Err: unwrapPath(err)}
	}
	return nil
}

// Remove removes a file or an empty folder.
func (t *beneath) Remove(name string) error {
	dir := false
	err := t.at(name, func(fd int, base string) error {
		err := ignoringEINTR(func() error { return unix.Unlinkat(fd, base, 0) })
		if err == unix.EISDIR {
			dir = true
			err = ignoringEINTR(func() error { return unix.Unlinkat(fd, base, unix.AT_REMOVEDIR) })
		}
		return err
	})
	if dir && err == nil {
		t.forget(name)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: t.path(name), Err: unwrapPath(err)}
	}
	return nil
}

// SyncDir fsyncs the folder name.
func (t *beneath) SyncDir(name string) error {
	d, _, err := t.get(name)
	if err != nil {
		return err
	}
	defer t.put(d)
	return unix.Fsync(d.fd)
}

// Close closes every descriptor; calls still under way finish on theirs.
func (t *beneath) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.lru.Len() > 0 {
		t.uncacheLocked(t.lru.Back().Value.(*dirRef))
	}
	if t.root.fd >= 0 {
		unix.Close(t.root.fd)
		t.root.fd = -1
	}
	return nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// unwrapPath returns the errno in err when err is a PathError of a folder's
// resolution, so that the error names the path the caller asked about.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileStat is the fs.FileInfo of an fstatat(2).
type fileStat struct {
	name string
	st   unix.Stat_t
}

func (fi *fileStat) Name() string       { return fi.name }
func (fi *fileStat) Size() int64        { return fi.st.Size }
func (fi *fileStat) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileStat) Sys() any           { return &fi.st }
func (fi *fileStat) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }

func (fi *fileStat) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	return m
}
