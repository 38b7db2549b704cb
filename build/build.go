package build

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/build/markdown"
	"github.com/stump-dev/stump/themes"
)

// Result describes a finished build.
type Result struct {
	Site string
	// Pages counts the HTML pages rendered from content and lists (aliases excluded).
	Pages    int
	Files    int
	Bytes    int64
	Duration time.Duration
	// Dir is the folder written ("" with NoWrite).
	Dir      string
	Manifest *manifest.Manifest
	// Tree holds the bytes of every file by path when Options.NoWrite is set.
	Tree map[string][]byte
	// Written counts the files written to Dir; Unchanged those left as they were
	// (same bytes as the previous build's).
	Written, Unchanged int
	// Report lists what the build left out and its warnings.
	Report Report
	// ValidUntil is the first moment the output changes by the clock alone (a future
	// page becomes due, a page expires); zero when no page is dated so.
	ValidUntil time.Time
	// Reused: nothing the build reads changed since the last build into Dir, which
	// still holds that build's output: nothing was built (Options.Version).
	Reused bool

	saveCaches func()
}

// SaveCaches keeps what a build in memory (Options.NoWrite) rendered in the
// workspace's caches (see Options.Version); call it once what used the build
// succeeded. A build into a folder saves them itself.
func (r *Result) SaveCaches() {
	if r != nil && r.saveCaches != nil {
		r.saveCaches()
		r.saveCaches = nil
	}
}

// fingerprinted, when set (tests), runs between a build's fingerprint and its loading.
var fingerprinted func()

// Build builds one site. On error nothing in the output folder changes; errors about
// input are *diag.Error values (possibly joined), naming file, line and column.
func (w *Workspace) Build(ctx context.Context, site string, opts Options) (*Result, error) {
	start := time.Now()
	dir, fp := "", ""
	var pre preread
	if !opts.NoWrite {
		dir = opts.OutDir
		if dir == "" {
			dir = w.OutDir(site)
		}
		if opts.Version != "" {
			now := opts.Now
			if now.IsZero() {
				now = time.Now()
			}
			// The fingerprint is taken before the build reads anything: an input
			// edited while it runs makes the next build's differ.
			if f, b, err := w.inputsFingerprint(site, dir, opts); err == nil {
				fp, pre = f, b
				if fingerprinted != nil {
					fingerprinted()
				}
				if !opts.Force {
					if res := w.reuse(ctx, site, dir, fp, now); res != nil {
						res.Duration = time.Since(start)
						return res, nil
					}
				}
			}
			// This build changes the folder: until it succeeds, no record says
			// what it holds.
			w.forget(site, dir)
		}
	}
	st, ls, err := w.loadWith(ctx, site, opts, pre)
	if err != nil {
		return nil, err
	}
	defer st.close()
	// All Markdown is rendered once content is loaded: the cache file is written
	// while pages render, and put in place only when the build succeeds.
	var cache *cacheSave
	if st.mdc != nil && !opts.NoWrite {
		cache = st.mdc.startSave()
		defer cache.finish(false) // after finish(true): nothing
	}
	var wr *writer
	if !st.opts.NoWrite {
		// Files go to disk as they are rendered and their bytes are dropped (the link
		// check reads the links each page had when it was added).
		if wr, err = newWriter(dir, st.opts.Workers, true); err != nil {
			return nil, err
		}
		defer wr.unlock()
		st.out.onAdd, st.out.lend = wr.put, true
	}
	res, err := w.renderAndWrite(ctx, st, ls, wr)
	if err != nil {
		if wr != nil {
			if aerr := wr.abort(); aerr != nil {
				err = errors.Join(err, fmt.Errorf("undo the partial output in %s: %w", dir, aerr))
			}
		}
		return nil, err
	}
	res.Site, res.Dir = site, dir
	res.ValidUntil = st.due
	if st.mdc != nil && opts.NoWrite {
		// A build in memory feeds something that can still fail (a publish): the
		// caller keeps the cache with SaveCaches once it succeeded, so a failed
		// command leaves the workspace as it was.
		res.saveCaches = st.mdc.save
	}
	cache.finish(true)
	res.Duration = time.Since(start)
	if fp != "" {
		w.remember(site, dir, fp, wr.manifestSum, res)
	}
	return res, nil
}

// renderAndWrite renders the site and, with a writer, finishes writing it.
func (w *Workspace) renderAndWrite(ctx context.Context, st *siteState, ls *layouts, wr *writer) (*Result, error) {
	renderErr := st.render(ctx, ls)
	if wr != nil {
		// Wait for the writer's workers even after a failed render: abort must not race
		// them.
		werr := wr.wait()
		if renderErr == nil && werr != nil {
			return nil, werr
		}
	}
	if renderErr != nil {
		return nil, renderErr
	}
	st.lap("render")
	files, m, err := st.finish(ctx)
	if err != nil {
		return nil, err
	}
	st.lap("hash")
	for _, p := range st.pages {
		if p.rawHTMLLost {
			st.report.RawHTML++
		}
	}
	res := &Result{Files: len(files), Bytes: m.TotalBytes(), Manifest: m, Pages: countPages(files), Report: st.report.result()}
	if wr == nil {
		res.Tree = make(map[string][]byte, len(files))
		for _, f := range files {
			res.Tree[f.path] = f.data
		}
		return res, nil
	}
	if err := wr.commit(m); err != nil {
		return nil, err
	}
	res.Written, res.Unchanged = int(wr.written.Load()), int(wr.unchanged.Load())
	st.lap("write")
	return res, nil
}

// countPages counts rendered HTML pages (aliases excluded).
func countPages(files []*outFile) int {
	n := 0
	for _, f := range files {
		if f.page != nil && f.redirect == "" && filepath.Ext(f.path) == ".html" {
			n++
		}
	}
	return n
}

// load reads a site's config, theme, data, static files, content and layouts, and
// assembles its pages: everything but rendering. The caller closes the state.
func (w *Workspace) load(ctx context.Context, site string, opts Options) (st *siteState, ls *layouts, err error) {
	return w.loadWith(ctx, site, opts, nil)
}

// loadWith is load, taking the bytes of the site's files in pre instead of reading them
// again (see preread).
func (w *Workspace) loadWith(ctx context.Context, site string, opts Options, pre preread) (st *siteState, ls *layouts, err error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	cfg, err := w.LoadSiteConfig(site)
	if err != nil {
		return nil, nil, err
	}
	src, err := openTree(w.SiteDir(site), filepath.ToSlash(filepath.Join("sites", site)))
	if err != nil {
		return nil, nil, err
	}
	src.pre = pre
	theme, err := w.openTheme(cfg.Theme)
	if err != nil {
		src.close()
		if errors.Is(err, errNoTheme) {
			line, col := cfg.Pos("$.theme")
			return nil, nil, diag.New(cfg.File, line, col, "theme %q does not exist: there is no themes/%s folder in the workspace and no built-in theme of that name (built in: %v)", cfg.Theme, cfg.Theme, themes.Names())
		}
		return nil, nil, err
	}
	st = w.newState(cfg, opts, src, theme)
	state := st
	defer func() {
		if err != nil {
			state.close()
		}
	}()
	if st.site.Data, err = st.loadData(); err != nil {
		return nil, nil, err
	}
	if err := st.loadStatic(); err != nil {
		return nil, nil, err
	}
	// Layouts first: content needs to know the shortcodes.
	if ls, err = st.loadLayouts(st.funcMap(&st.layouts)); err != nil {
		return nil, nil, err
	}
	st.layouts = ls
	if opts.Version != "" {
		st.mdc = openMDCache(w.Root, site, st.mdSalt(ls))
	}
	if err := st.loadContent(ctx); err != nil {
		return nil, nil, err
	}
	// Pages keep what they need of their source. The source files hold the map too:
	// emptied, it keeps nothing alive.
	clear(st.src.pre)
	st.lap("content")
	if err := st.assemble(); err != nil {
		return nil, nil, err
	}
	if err := st.expandShortcodes(ctx, st.pages); err != nil {
		return nil, nil, err
	}
	if err := st.checkLeaks(); err != nil {
		return nil, nil, err
	}
	st.lap("assemble")
	return st, ls, nil
}

func (w *Workspace) newState(cfg *config.Loaded, opts Options, src, theme *tree) *siteState {
	typo := cfg.Markdown.Typographer == nil || *cfg.Markdown.Typographer
	var st *siteState
	st = &siteState{
		ws: w, cfg: cfg, opts: opts, src: src, theme: theme,
		md: markdown.New(markdown.Options{
			Unsafe: cfg.Markdown.Unsafe, NoTypographer: !typo,
			HighlightStyle: cfg.Markdown.Highlight.Style, LineNumbers: cfg.Markdown.Highlight.LineNumbers,
			Shortcodes: func(name string) (bool, bool) {
				if st.layouts == nil {
					return false, false
				}
				return st.layouts.shortcodeInfo(name)
			},
		}),
		minifier: newMinifier(),
		report:   &reportState{},
		phase:    time.Now(),
	}
	st.mdRaw = sync.OnceValue(func() *markdown.Renderer {
		if cfg.Markdown.Unsafe {
			return st.md
		}
		return markdown.New(markdown.Options{
			Unsafe: true, NoTypographer: !typo,
			HighlightStyle: cfg.Markdown.Highlight.Style, LineNumbers: cfg.Markdown.Highlight.LineNumbers,
		})
	})
	st.resetOutputs()
	st.site = &Site{
		Name: cfg.Name, Title: cfg.Title, BaseURL: cfg.Base.String(), LanguageCode: cfg.LanguageCode,
		Copyright: cfg.Copyright, Params: cfg.Params, cfg: cfg, base: cfg.Base,
	}
	return st
}

// resetOutputs starts a fresh set of outputs (and of fingerprinted assets).
func (st *siteState) resetOutputs() {
	st.out = newOutputs(st.cfg.CheckLinks != config.LinksOff)
	st.assets = &assetRegistry{st: st, byRel: map[string]*assetEntry{}, out: st.out}
}

// loadStatic indexes static files: the theme's, then the site's, which win.
func (st *siteState) loadStatic() error {
	st.staticByRel = map[string]srcFile{}
	for _, t := range []*tree{st.theme, st.src} {
		files, err := t.walk("static", st.cfg.Ignore)
		if err != nil {
			return err
		}
		for _, f := range files {
			st.staticByRel[f.Rel] = f
		}
	}
	return nil
}

// lap logs the time since the previous phase at debug level.
func (st *siteState) lap(name string) {
	st.ws.Log.Debug("build phase", "site", st.cfg.Name, "phase", name, "took", time.Since(st.phase).Round(time.Millisecond))
	st.phase = time.Now()
}

// close releases the site and theme folders.
func (st *siteState) close() {
	st.src.close()
	st.theme.close()
}
