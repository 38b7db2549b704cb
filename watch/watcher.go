package watch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of WatcherOptions.
const (
	DefaultQuiet   = 50 * time.Millisecond
	DefaultMaxWait = 500 * time.Millisecond
	DefaultPoll    = 500 * time.Millisecond
	// DefaultSettle is the Settle of `stump watch`: long enough for an editor's save
	// (a few system calls in a row) to land in one batch, short against a keystroke.
	DefaultSettle = 2 * time.Millisecond
)

// WatcherOptions say what a Watcher watches and how.
type WatcherOptions struct {
	// Dirs are watched recursively, folders created later included. Folders with an
	// ignored name (see Ignored) are skipped.
	Dirs []string
	// Files are single files watched through their folder (that folder is not watched
	// for anything else): the workspace's stump.yaml.
	Files []string
	// Poll, when set, compares the tree's files (modification time, size, identity) at
	// this interval instead of using fsnotify.
	Poll time.Duration
	// Quiet is how long no change must come before a batch is sent (DefaultQuiet);
	// MaxWait bounds how long the first change of a batch waits (DefaultMaxWait).
	Quiet, MaxWait time.Duration
	// Settle, when set, makes a batch ready after only Settle without changes, so a
	// rebuild starts right after a save, unless the batch is in doubt: one of its paths
	// is missing (an editor that renames the file away before writing it again, a
	// deletion) or was created without an extension (the temporary file of sed -i or
	// perl -i, about to be renamed over the real one). A batch in doubt waits for Quiet
	// as without Settle. Changes that come while the consumer rebuilds are merged into
	// one next batch.
	Settle time.Duration
	// Fallback is called once when fsnotify cannot be used (no inotify instance left,
	// watch limit reached) and the watcher polls every DefaultPoll instead.
	Fallback func(reason error)

	// addHook, in tests, runs before each fsnotify Add and can make it fail.
	addHook func(dir string) error
}

// Watcher reports changed files in batches. A burst of changes (an editor's save, a git
// checkout) comes as one batch once the files are quiet. Editors' temporary and backup
// files are ignored; an atomic save (write a temporary file, rename it over the real
// one) is a change of the real file. Paths are absolute and sorted. A removed or renamed
// folder is reported as the folder's path (with fsnotify, which does not know what it
// held); a created folder as the files in it.
type Watcher struct {
	opts      WatcherOptions
	out       chan []string
	raw       chan change
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex
	roots   []string
	files   map[string]bool
	nw      *fsnotify.Watcher // nil when polling
	watched map[string]bool   // folders added to nw
	poll    *poller           // nil unless polling
	fellOff bool
}

// NewWatcher starts watching. It uses fsnotify unless opts.Poll is set, and falls back
// to polling when fsnotify fails. Close stops it.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.MaxWait < opts.Quiet {
		opts.MaxWait = max(DefaultMaxWait, opts.Quiet)
	}
	w := &Watcher{
		opts:    opts,
		out:     make(chan []string),
		raw:     make(chan change, 4096),
		done:    make(chan struct{}),
		files:   map[string]bool{},
		watched: map[string]bool{},
	}
	for _, d := range opts.Dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		w.roots = append(w.roots, abs)
	}
	for _, f := range opts.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		w.files[abs] = true
	}
	w.mu.Lock()
	if opts.Poll > 0 {
		w.startPollLocked(opts.Poll)
	} else if err := w.startNotifyLocked(); err != nil {
		w.fallbackLocked(err)
	}
	w.mu.Unlock()
	w.wg.Add(1)
	go w.debounce()
	return w, nil
}

// Batches delivers the batches of changed paths. It is closed by Close.
func (w *Watcher) Batches() <-chan []string { return w.out }

// Polling reports whether the watcher polls (by request or after a fallback).
func (w *Watcher) Polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.poll != nil
}

// AddDir watches one more folder recursively (no batch is sent for what it holds). It
// does nothing for a folder already watched, or inside one.
func (w *Watcher) AddDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inTreeLocked(abs) {
		return nil
	}
	w.roots = append(w.roots, abs)
	switch {
	case w.nw != nil:
		if _, err := w.addTreeLocked(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.fallbackLocked(err)
		}
	case w.poll != nil:
		w.poll.addRoot(abs)
	}
	return nil
}

// Close stops watching and closes Batches.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		w.mu.Lock()
		if w.nw != nil {
			_ = w.nw.Close()
			w.nw = nil
		}
		w.mu.Unlock()
		w.wg.Wait()
		close(w.out)
	})
	return nil
}

// change is one raw change: created says the path was created (it did not exist
// before), so that a file created and deleted within one batch is not reported.
type change struct {
	path    string
	created bool
}

func (w *Watcher) emit(p string) { w.send(change{path: p}) }

func (w *Watcher) send(c change) {
	select {
	case w.raw <- c:
	case <-w.done:
	}
}

// inTreeLocked reports whether p is a root or inside one.
func (w *Watcher) inTreeLocked(p string) bool {
	for _, r := range w.roots {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// --- fsnotify ---

func (w *Watcher) startNotifyLocked() error {
	nw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	w.nw = nw
	for _, r := range w.roots {
		if _, err := w.addTreeLocked(r); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.closeNotifyLocked()
			return err
		}
	}
	dirs := map[string]bool{}
	for f := range w.files {
		dirs[filepath.Dir(f)] = true
	}
	for d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.addLocked(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.closeNotifyLocked()
			return err
		}
	}
	w.wg.Add(1)
	go w.notifyLoop(nw)
	return nil
}

func (w *Watcher) closeNotifyLocked() {
	if w.nw != nil {
		_ = w.nw.Close()
		w.nw = nil
	}
	w.watched = map[string]bool{}
}

func (w *Watcher) addLocked(dir string) error {
	if w.opts.addHook != nil {
		if err := w.opts.addHook(dir); err != nil {
			return err
		}
	}
	if err := w.nw.Add(dir); err != nil {
		return err
	}
	w.watched[dir] = true
	return nil
}

// addTreeLocked adds dir and every folder under it (but ignored ones) to fsnotify, and
// returns the files found (those created before their folder was watched).
func (w *Watcher) addTreeLocked(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // gone meanwhile
		}
		if d.IsDir() {
			if p != dir && Ignored(d.Name()) {
				return filepath.SkipDir
			}
			if w.watched[p] {
				return nil
			}
			if err := w.addLocked(p); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return filepath.SkipDir
				}
				return err
			}
			return nil
		}
		if !Ignored(d.Name()) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

func (w *Watcher) notifyLoop(nw *fsnotify.Watcher) {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-nw.Events:
			if !ok {
				return
			}
			w.handle(nw, ev)
		case err, ok := <-nw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: report the roots, which rebuilds everything.
				w.mu.Lock()
				all := append([]string(nil), w.roots...)
				for f := range w.files {
					all = append(all, f)
				}
				w.mu.Unlock()
				for _, p := range all {
					w.emit(p)
				}
			}
		}
	}
}

func (w *Watcher) handle(nw *fsnotify.Watcher, ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	w.mu.Lock()
	if w.nw != nw {
		w.mu.Unlock()
		return // stopped or replaced by polling
	}
	single := w.files[name]
	inTree := w.inTreeLocked(name)
	isRoot := false
	for _, r := range w.roots {
		isRoot = isRoot || r == name
	}
	if (!single && !inTree) || (!single && !isRoot && Ignored(filepath.Base(name))) {
		w.mu.Unlock()
		return
	}
	var emit []string
	created := false
	switch {
	case ev.Has(fsnotify.Create):
		created = true
		fi, err := os.Lstat(name)
		if err == nil && fi.IsDir() && inTree {
			files, err := w.addTreeLocked(name)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				w.fallbackLocked(err)
			}
			if !isRoot {
				emit = files
			}
		} else {
			// A file, or something created and gone already (the engine sees it absent).
			emit = []string{name}
		}
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		if w.watched[name] {
			// A folder went away: forget it and what was under it.
			prefix := name + string(filepath.Separator)
			for d := range w.watched {
				if d == name || strings.HasPrefix(d, prefix) {
					delete(w.watched, d)
					if ev.Has(fsnotify.Rename) {
						_ = nw.Remove(d)
					}
				}
			}
		}
		emit = []string{name}
	case ev.Has(fsnotify.Write):
		emit = []string{name}
	default:
		// Chmod alone (touch -m, attribute changes) changes no content.
	}
	w.mu.Unlock()
	for _, p := range emit {
		w.send(change{path: p, created: created})
	}
}

// fallbackLocked switches to polling after fsnotify failed, says so once, and reports
// the roots so that what may have been missed is rebuilt.
func (w *Watcher) fallbackLocked(reason error) {
	w.closeNotifyLocked()
	if !w.fellOff && w.opts.Fallback != nil {
		w.fellOff = true
		w.opts.Fallback(reason)
	}
	w.fellOff = true
	w.startPollLocked(DefaultPoll)
	all := append([]string(nil), w.roots...)
	go func() {
		for _, p := range all {
			w.emit(p)
		}
	}()
}

// --- polling ---

type poller struct {
	w        *Watcher
	interval time.Duration
	snap     map[string]os.FileInfo
	pending  []string // roots added since the last scan
}

func (w *Watcher) startPollLocked(interval time.Duration) {
	p := &poller{w: w, interval: interval}
	p.snap = scan(w.roots, w.files)
	w.poll = p
	w.wg.Add(1)
	go p.loop()
}

func (p *poller) addRoot(dir string) {
	// Called with w.mu held; its files join the snapshot at the next scan without being
	// reported.
	p.pending = append(p.pending, dir)
}

func (p *poller) loop() {
	defer p.w.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.w.done:
			return
		case <-t.C:
		}
		p.w.mu.Lock()
		roots := append([]string(nil), p.w.roots...)
		files := make(map[string]bool, len(p.w.files))
		for f := range p.w.files {
			files[f] = true
		}
		fresh := p.pending
		p.pending = nil
		p.w.mu.Unlock()
		next := scan(roots, files)
		var changed []string
		for k, fi := range next {
			old, ok := p.snap[k]
			if !ok {
				if underAny(k, fresh) {
					continue
				}
				changed = append(changed, k)
				continue
			}
			if !old.ModTime().Equal(fi.ModTime()) || old.Size() != fi.Size() || !os.SameFile(old, fi) {
				changed = append(changed, k)
			}
		}
		for k := range p.snap {
			if _, ok := next[k]; !ok {
				changed = append(changed, k)
			}
		}
		p.snap = next
		sort.Strings(changed)
		for _, c := range changed {
			p.w.emit(c)
		}
	}
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// scan lists the files under roots (ignored names skipped) and the single files.
func scan(roots []string, files map[string]bool) map[string]os.FileInfo {
	m := map[string]os.FileInfo{}
	for _, r := range roots {
		_ = filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if p != r && Ignored(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if Ignored(d.Name()) {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				m[p] = fi
			}
			return nil
		})
	}
	for f := range files {
		if fi, err := os.Stat(f); err == nil {
			m[f] = fi
		}
	}
	return m
}

// --- debouncing ---

// debounce gathers raw changes into batches: a batch is ready once no change came for
// Quiet, or MaxWait after its first change. It hands ready batches to finish, which
// merges them while the consumer is busy (rebuilding), so a rebuild gets every change
// made during the previous one.
func (w *Watcher) debounce() {
	defer w.wg.Done()
	flush := make(chan map[string]bool)
	w.wg.Add(1)
	go w.finish(flush)
	// pending maps each path of the batch to whether its first change in the batch was
	// its creation.
	pending := map[string]bool{}
	var first, last, armed time.Time
	wait := w.opts.Quiet
	if w.opts.Settle > 0 {
		wait = min(w.opts.Settle, w.opts.Quiet)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var handoff chan map[string]bool // non-nil when pending is ready
	for {
		select {
		case <-w.done:
			timer.Stop()
			return
		case c := <-w.raw:
			now := time.Now()
			last = now
			if len(pending) == 0 {
				first = now
			}
			if _, seen := pending[c.path]; !seen {
				pending[c.path] = c.created
			}
			limit := first.Add(w.opts.MaxWait)
			if !now.Before(limit) {
				handoff = flush // overdue: ready now, and it keeps growing until taken
				continue
			}
			handoff = nil
			due := now.Add(wait)
			if limit.Before(due) {
				due = limit
			}
			if !due.Equal(armed) {
				armed = due
				timer.Reset(due.Sub(now))
			}
		case <-timer.C:
			armed = time.Time{}
			if w.opts.Settle > 0 && len(pending) > 0 && inDoubt(pending) {
				// Possibly mid-save: wait for Quiet after the last change (MaxWait at most).
				due := last.Add(w.opts.Quiet)
				if limit := first.Add(w.opts.MaxWait); limit.Before(due) {
					due = limit
				}
				if d := time.Until(due); d > 0 {
					armed = due
					timer.Reset(d)
					continue
				}
			}
			if len(pending) > 0 {
				handoff = flush
			}
		case handoff <- pending:
			pending = map[string]bool{}
			handoff = nil
			timer.Stop()
			armed = time.Time{}
		}
	}
}

// inDoubt reports whether a batch may be in the middle of a save (see Settle).
func inDoubt(pending map[string]bool) bool {
	for p, born := range pending {
		_, err := os.Lstat(p)
		exists := err == nil
		// A file created and gone already is left out of the batch; one created without
		// an extension may be about to be renamed; one that was there and is missing may
		// be about to come back.
		if born && exists && filepath.Ext(p) == "" || !born && !exists {
			return true
		}
	}
	return false
}

// finish turns ready changes into sorted batches of paths on w.out, merging what comes
// while the consumer has not taken the last batch. A file created and gone within a
// batch (a tool's temporary file, like sed -i's) is left out.
func (w *Watcher) finish(in chan map[string]bool) {
	defer w.wg.Done()
	acc := map[string]bool{}
	var out chan []string
	var batch []string
	for {
		select {
		case <-w.done:
			return
		case m := <-in:
			for p, born := range m {
				if _, ok := acc[p]; !ok {
					acc[p] = born
				}
			}
			batch = batch[:0:0]
			for p, born := range acc {
				if born {
					if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
						continue
					}
				}
				batch = append(batch, p)
			}
			sort.Strings(batch)
			out = w.out
			if len(batch) == 0 {
				acc, out = map[string]bool{}, nil
			}
		case out <- batch:
			acc, out, batch = map[string]bool{}, nil, nil
		}
	}
}
