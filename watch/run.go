// Package watch is `stump watch`: it builds a site in memory (build.Session), serves it
// on loopback the way the published site is served, watches the site, its theme and
// stump.yaml for changes, rebuilds what a change touches, and reloads open pages over
// Server-Sent Events (stylesheets are swapped without a reload; build errors show over
// the page until they are fixed).
//
// The parts: Watcher (fsnotify with a polling fallback, editor-aware, debounced),
// Server (the HTTP handler with live reload and the error overlay), and Run, which ties
// them together for the command.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/publish"
)

// DefaultPort is the port `stump watch` listens on.
const DefaultPort = 1717

// Config is one `stump watch`.
type Config struct {
	Workspace *build.Workspace
	Site      string
	Options   build.Options
	// Bind and Port say where to listen (127.0.0.1 and DefaultPort when empty; Port -1
	// picks a free port). Listener, when set, is used instead.
	Bind     string
	Port     int
	Listener net.Listener
	// Poll polls the files at this interval instead of using fsnotify.
	Poll time.Duration
	// Quiet and MaxWait tune the watcher's debouncing (defaults when zero). Settle is
	// the watcher's Settle: DefaultSettle when zero, a negative value turns it off (a
	// batch then waits for Quiet).
	Quiet, MaxWait, Settle time.Duration
	// Open opens the site in a browser once it is served (xdg-open).
	Open bool
	// Out is the terminal (one line per rebuild, errors once).
	Out io.Writer
	Log *slog.Logger

	// Ready, when set, is called with the site's URL once it is served.
	Ready func(url string)
	// Rebuilt, when set, is called after each rebuild, once the browser was told.
	Rebuilt func(Rebuild)
}

// Rebuild describes one rebuild after a batch of changes.
type Rebuild struct {
	Paths  []string      // the changed files (absolute)
	Update *build.Update // nil when Err is set
	Err    error
	// Event is what open pages were sent: "reload", "css", "error" or "" (nothing).
	Event string
	// Received is when the batch came from the watcher; Done when the event was sent.
	Received, Done time.Time
}

// PortTakenError is returned when the port is taken.
type PortTakenError struct {
	Bind string
	Port int
	Err  error
}

func (e *PortTakenError) Error() string {
	return fmt.Sprintf("stump watch: port %d on %s is taken (another stump watch?); use --port N", e.Port, e.Bind)
}

func (e *PortTakenError) Unwrap() error { return e.Err }

// Listen opens the listener of Config's Bind and Port, with a clear error when the port
// is taken.
func Listen(bind string, port int) (net.Listener, error) {
	if bind == "" {
		bind = "127.0.0.1"
	}
	if port == 0 {
		port = DefaultPort
	}
	p := port
	if p < 0 {
		p = 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(p)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &PortTakenError{Bind: bind, Port: port, Err: err}
		}
		return nil, fmt.Errorf("stump watch: cannot listen on %s port %d: %w", bind, port, err)
	}
	return ln, nil
}

type runner struct {
	cfg     Config
	out     io.Writer
	ws      *build.Workspace
	sess    *build.Session
	srv     *Server
	w       *Watcher
	wsFile  string          // the workspace's stump.yaml
	dirty   map[string]bool // changes since the last good build, retried with each batch
	failed  bool            // the last build failed
	lastErr string          // the error last printed
	// lastEvent is the event the last good or failed build sent ("css", "reload"...).
	lastEvent string
	watched   map[string]bool
}

// Run builds the site, serves it and rebuilds on change until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(cfg.Bind, cfg.Port); err != nil {
			return err
		}
	}
	defer ln.Close()
	r := &runner{
		cfg: cfg, out: cfg.Out, ws: cfg.Workspace, srv: NewServer(),
		wsFile:  filepath.Join(cfg.Workspace.Root, config.WorkspaceFile),
		dirty:   map[string]bool{},
		watched: map[string]bool{},
	}
	defer func() {
		if r.sess != nil {
			r.sess.Close()
		}
	}()

	// Serve at once: until the first build is done, pages say "building" and reload
	// when it is.
	r.sess = r.ws.NewSession(cfg.Site, cfg.Options)
	r.srv.SetSource(r.sess, "/", nil)
	hs := &http.Server{Handler: r.srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	url := siteURL(ln.Addr())
	fmt.Fprintf(r.out, "%s: serving at %s (Ctrl-C stops)\n", cfg.Site, url)
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		fmt.Fprintf(r.out, "note: listening on %s, not only on loopback: other machines can see this preview\n", ta.IP)
	}
	stop := func() {
		// End the live-reload streams (or Shutdown would wait for them), stop watching,
		// let requests in flight finish.
		r.srv.CloseStreams()
		if r.w != nil {
			_ = r.w.Close()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
	}

	// Watch before building, so that a save during the first build is not lost. The
	// theme's folder is known once the site config is read (after the first good build).
	dirs := r.sess.Dirs()
	for _, d := range dirs {
		r.watched[d] = true
	}
	var err error
	r.w, err = NewWatcher(WatcherOptions{
		Dirs: dirs, Files: []string{r.wsFile}, Poll: cfg.Poll, Quiet: cfg.Quiet, MaxWait: cfg.MaxWait, Settle: settle(cfg.Settle),
		Fallback: func(reason error) {
			fmt.Fprintf(r.out, "stump watch: cannot watch with fsnotify (%v); polling every %s instead (raise fs.inotify.max_user_watches, or use --poll)\n", reason, DefaultPoll)
		},
	})
	if err != nil {
		stop()
		return err
	}

	// The first build. A failure is shown in the browser like any later one.
	start := time.Now()
	u, err := r.sess.Build(ctx)
	if ctx.Err() != nil {
		stop()
		fmt.Fprintf(r.out, "%s: stopped\n", cfg.Site)
		return nil
	}
	if err != nil {
		r.fail(err, nil)
	} else {
		r.siteConfig()
		r.srv.Reload()
		fmt.Fprintf(r.out, "%s: built %d pages in %s\n", cfg.Site, u.Rendered, roundDur(time.Since(start)))
	}
	r.watchNewDirs()
	mode := "fsnotify"
	if r.w.Polling() {
		mode = "polling every " + DefaultPoll.String()
		if cfg.Poll > 0 {
			mode = "polling every " + cfg.Poll.String()
		}
	}
	fmt.Fprintf(r.out, "watching %s and %s (%s)\n", strings.Join(r.shownDirs(r.watchedDirs()), ", "), config.WorkspaceFile, mode)
	if cfg.Open {
		openBrowser(r.out, url)
	}
	if cfg.Ready != nil {
		cfg.Ready(url)
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				runErr = err
			}
			break loop
		case batch, ok := <-r.w.Batches():
			if !ok {
				break loop
			}
			r.rebuild(ctx, batch)
		}
	}

	stop()
	fmt.Fprintf(r.out, "%s: stopped\n", cfg.Site)
	return runErr
}

// rebuild applies a batch of changes and tells open pages.
func (r *runner) rebuild(ctx context.Context, batch []string) {
	received := time.Now()
	for _, p := range batch {
		r.dirty[p] = true
	}
	paths := make([]string, 0, len(r.dirty))
	for p := range r.dirty {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var u *build.Update
	var err error
	if slices.Contains(paths, r.wsFile) {
		// The workspace config is read when the workspace is opened: open it again.
		u, err = r.reopen(ctx)
	} else {
		u, err = r.sess.Apply(ctx, paths)
	}
	if ctx.Err() != nil {
		return
	}
	info := Rebuild{Paths: batch, Update: u, Err: err, Received: received}
	if err != nil {
		info.Event = "error"
		r.fail(err, batch)
		info.Done = time.Now()
		if r.cfg.Rebuilt != nil {
			r.cfg.Rebuilt(info)
		}
		return
	}
	clear(r.dirty)
	wasFailed := r.failed
	r.failed, r.lastErr = false, ""
	if u.Full {
		r.siteConfig()
		r.watchNewDirs()
	}
	info.Event = r.notify(u, paths, wasFailed)
	info.Done = time.Now()

	what := fmt.Sprintf("rebuilt %d pages in %s", u.Rendered, roundDur(u.Duration))
	if u.Full {
		what = fmt.Sprintf("rebuilt the whole site (%d pages) in %s", u.Rendered, roundDur(u.Duration))
	}
	switch {
	case wasFailed:
		what = "fixed: " + what
	case info.Event == "":
		what += ", nothing changed"
	case info.Event == "css":
		what += ", stylesheets swapped"
	}
	fmt.Fprintf(r.out, "%s (%s)\n", what, r.describe(batch))
	if r.cfg.Rebuilt != nil {
		r.cfg.Rebuilt(info)
	}
}

// reopen reads stump.yaml again and builds the site in a new session, which replaces
// the old one only when it builds.
func (r *runner) reopen(ctx context.Context) (*build.Update, error) {
	ws, err := build.Open(r.ws.Root)
	if err != nil {
		return nil, err
	}
	ws.Log = r.ws.Log
	s := ws.NewSession(r.cfg.Site, r.cfg.Options)
	u, err := s.Build(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	old := r.sess
	r.ws, r.sess = ws, s
	r.srv.SetSource(s, "/", nil)
	old.Close()
	// Every page may differ: make sure open pages reload.
	u.Full = true
	if len(u.Changed) == 0 {
		u.Changed = []string{"index.html"}
	}
	return u, nil
}

// siteConfig passes the site's base path and header rules to the server.
func (r *runner) siteConfig() {
	cfg, err := r.ws.LoadSiteConfig(r.cfg.Site)
	if err != nil {
		return
	}
	var rules []publish.HeaderRule
	for _, h := range cfg.Headers {
		rules = append(rules, publish.HeaderRule{Path: h.Path, Values: h.Values})
	}
	base := "/"
	if cfg.Base != nil && cfg.Base.Path != "" {
		base = cfg.Base.Path
	}
	if q, err := edge.NewQueryRules(cfg.Edge); err == nil {
		r.srv.SetQuery(q.Keep)
	}
	r.srv.SetSource(r.sess, base, rules)
}

// watchNewDirs watches folders the session names that are not watched yet (the theme's,
// after the first good build or a change of theme).
func (r *runner) watchNewDirs() {
	if r.w == nil {
		return
	}
	dirs := r.sess.Dirs()
	// Before a first good build the session does not know the theme: read it from the
	// site config, so that a broken theme can be fixed while watching.
	if cfg, err := r.ws.LoadSiteConfig(r.cfg.Site); err == nil && cfg.Theme != "" {
		if d := filepath.Join(r.ws.Root, "themes", cfg.Theme); isDir(d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if !r.watched[d] {
			r.watched[d] = true
			_ = r.w.AddDir(d)
		}
	}
}

// fail shows a failed build: in open pages, and on the terminal once per distinct error.
func (r *runner) fail(err error, batch []string) {
	r.failed = true
	r.srv.Failed(err)
	// The same error again (another save that did not fix it) is not printed again. A
	// template error names the page it was rendering; which page does not matter.
	items := ErrorItems(err)
	var key strings.Builder
	for _, it := range items {
		msg, _, _ := strings.Cut(it.Msg, " (while rendering ")
		key.WriteString(it.Where() + ": " + msg + "\n")
	}
	if key.String() == r.lastErr {
		return
	}
	r.lastErr = key.String()
	after := ""
	if len(batch) > 0 {
		after = " (" + r.describe(batch) + ")"
	}
	fmt.Fprintf(r.out, "build failed%s:\n", after)
	for _, it := range items {
		if w := it.Where(); w != "" {
			fmt.Fprintf(r.out, "  %s: %s\n", w, it.Msg)
		} else {
			fmt.Fprintf(r.out, "  %s\n", it.Msg)
		}
	}
}

// notify tells open pages about a good build and returns the event sent.
func (r *runner) notify(u *build.Update, inputs []string, wasFailed bool) string {
	ev := r.event(u, inputs, wasFailed)
	r.lastEvent = ev
	return ev
}

func (r *runner) event(u *build.Update, inputs []string, wasFailed bool) string {
	if wasFailed {
		r.srv.Reload()
		return "reload"
	}
	if len(u.Changed) == 0 && len(u.Removed) == 0 {
		if r.lastEvent == "css" && slices.ContainsFunc(inputs, func(p string) bool { return filepath.Ext(p) != ".css" }) {
			// A file other than a stylesheet changed with no effect now: its effect
			// came with the previous rebuild (saved while it ran, after the batch that
			// named only stylesheets), which open pages only got as a stylesheet swap.
			r.srv.Reload()
			return "reload"
		}
		r.srv.Quiet()
		return ""
	}
	if swaps, refetch, ok := cssOnly(u, inputs, r.sess, r.srv.basePath()); ok {
		r.srv.SwapCSS(swaps, refetch)
		return "css"
	}
	r.srv.Reload()
	return "reload"
}

func (s *Server) basePath() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// cssOnly decides whether open pages can swap stylesheets instead of reloading: the
// update changed only stylesheets (and pages, through their links to them), and every
// changed source file is a stylesheet. The second test matters: Update.OnlyCSS looks
// only at the kinds of output files, so a template edited in the same batch would pass
// it. Each fingerprinted stylesheet removed maps to the new one of the same name.
func cssOnly(u *build.Update, inputs []string, src Source, base string) (swaps []CSSSwap, refetch []string, ok bool) {
	if !u.OnlyCSS() {
		return nil, nil, false
	}
	for _, p := range inputs {
		if filepath.Ext(p) != ".css" {
			return nil, nil, false
		}
	}
	byBase := map[string]string{}
	for _, p := range u.Changed {
		if b, fp := cssBase(p); fp {
			byBase[b] = p
		} else if strings.HasSuffix(p, ".css") {
			refetch = append(refetch, base+p)
		}
	}
	for _, p := range u.Removed {
		b, fp := cssBase(p)
		if !fp {
			continue
		}
		to, found := byBase[b]
		if !found {
			continue
		}
		s := CSSSwap{From: base + p, To: base + to}
		if data, _, ok := src.File(to); ok {
			s.Integrity = Integrity(data)
		}
		swaps = append(swaps, s)
	}
	if len(swaps) == 0 && len(refetch) == 0 {
		return nil, nil, false
	}
	return swaps, refetch, true
}

// describe names changed files for the terminal: content files relative to content/,
// other files of the site relative to the site, the rest relative to the workspace.
func (r *runner) describe(paths []string) string {
	siteDir := r.ws.SiteDir(r.cfg.Site)
	var names []string
	for _, p := range paths {
		n := p
		if rel, err := filepath.Rel(siteDir, p); err == nil && !strings.HasPrefix(rel, "..") {
			n = strings.TrimPrefix(filepath.ToSlash(rel), "content/")
		} else if rel, err := filepath.Rel(r.ws.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
			n = filepath.ToSlash(rel)
		}
		names = append(names, n)
	}
	if len(names) > 3 {
		return strings.Join(names[:2], ", ") + fmt.Sprintf(" and %d more", len(names)-2)
	}
	return strings.Join(names, ", ")
}

func (r *runner) watchedDirs() []string {
	var out []string
	for d := range r.watched {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func (r *runner) shownDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if rel, err := filepath.Rel(r.ws.Root, d); err == nil && !strings.HasPrefix(rel, "..") {
			d = filepath.ToSlash(rel)
		}
		out = append(out, d)
	}
	return out
}

func settle(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return DefaultSettle
	}
	return d
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func siteURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// openBrowser opens url with the desktop's opener, if there is one.
func openBrowser(out io.Writer, url string) {
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	}
	bin, err := exec.LookPath(opener)
	if err != nil {
		fmt.Fprintf(out, "--open: no %s found; open %s yourself\n", opener, url)
		return
	}
	cmd := exec.Command(bin, url)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "--open: %v\n", err)
		return
	}
	go func() { _ = cmd.Wait() }()
}
