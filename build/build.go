package build

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"time"

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
}

// Build builds one site. On error nothing in the output folder changes; errors about
// input are *diag.Error values (possibly joined), naming file, line and column.
func (w *Workspace) Build(ctx context.Context, site string, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	cfg, err := w.LoadSiteConfig(site)
	if err != nil {
		return nil, err
	}
	src, err := openTree(w.SiteDir(site), filepath.ToSlash(filepath.Join("sites", site)))
	if err != nil {
		return nil, err
	}
	defer src.close()
	theme, err := w.openTheme(cfg.Theme)
	if err != nil {
		if errors.Is(err, errNoTheme) {
			line, col := cfg.Pos("$.theme")
			return nil, diag.New(cfg.File, line, col, "theme %q does not exist: there is no themes/%s folder in the workspace and no built-in theme of that name (built in: %v)", cfg.Theme, cfg.Theme, themes.Names())
		}
		return nil, err
	}
	defer theme.close()
	typo := cfg.Markdown.Typographer == nil || *cfg.Markdown.Typographer
	st := &siteState{
		ws: w, cfg: cfg, opts: opts, src: src, theme: theme,
		md: markdown.New(markdown.Options{
			Unsafe: cfg.Markdown.Unsafe, NoTypographer: !typo,
			HighlightStyle: cfg.Markdown.Highlight.Style, LineNumbers: cfg.Markdown.Highlight.LineNumbers,
		}),
		out:      newOutputs(),
		minifier: newMinifier(),
	}
	st.assets = &assetRegistry{st: st, byRel: map[string]*assetEntry{}, out: st.out}
	st.site = &Site{
		Name: site, Title: cfg.Title, BaseURL: cfg.Base.String(), LanguageCode: cfg.LanguageCode,
		Copyright: cfg.Copyright, Params: cfg.Params, cfg: cfg, base: cfg.Base,
	}
	if st.site.Data, err = st.loadData(); err != nil {
		return nil, err
	}
	st.staticByRel = map[string]srcFile{}
	for _, t := range []*tree{theme, src} {
		files, err := t.walk("static", cfg.Ignore)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			st.staticByRel[f.Rel] = f
		}
	}
	phase := time.Now()
	lap := func(name string) {
		w.Log.Debug("build phase", "site", site, "phase", name, "took", time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	if err := st.loadContent(ctx); err != nil {
		return nil, err
	}
	lap("content")
	if err := st.assemble(); err != nil {
		return nil, err
	}
	lap("assemble")
	var ls *layouts
	if ls, err = st.loadLayouts(st.funcMap(&ls)); err != nil {
		return nil, err
	}
	if err := st.render(ctx, ls); err != nil {
		return nil, err
	}
	lap("render")
	files, m, err := st.finish(ctx)
	if err != nil {
		return nil, err
	}
	lap("hash")
	res := &Result{Site: site, Files: len(files), Bytes: m.TotalBytes(), Manifest: m}
	for _, f := range files {
		if f.page != nil && f.redirect == "" && filepath.Ext(f.path) == ".html" {
			res.Pages++
		}
	}
	if opts.NoWrite {
		res.Tree = make(map[string][]byte, len(files))
		for _, f := range files {
			res.Tree[f.path] = f.data
		}
	} else {
		dir := opts.OutDir
		if dir == "" {
			dir = w.OutDir(site)
		}
		if err := writeTree(ctx, dir, files, m, opts.Workers); err != nil {
			return nil, err
		}
		lap("write")
		res.Dir = dir
	}
	res.Duration = time.Since(start)
	return res, nil
}
