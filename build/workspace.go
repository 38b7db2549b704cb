// Package build turns a workspace of sites into static trees and manifests.
//
// A build reads a site's config, content, data, layouts and static files (through
// os.Root, so no symlink can reach outside the site), renders every page in parallel,
// fingerprints the assets templates ask for, adds feeds, sitemap, robots.txt, aliases and
// the 404 page, and writes the tree plus its manifest (package manifest) into a
// temporary folder that replaces the previous output only when everything succeeded.
// The same inputs always give the same bytes.
package build

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/diag"
)

// Workspace is an opened workspace: a folder with stump.yaml, sites/ and themes/.
type Workspace struct {
	// Root is the absolute path of the workspace folder.
	Root   string
	Config *config.Workspace
	Log    *slog.Logger
}

// Options control a build.
type Options struct {
	Drafts  bool // build pages with draft: true
	Future  bool // build pages whose date or publishDate is after Now
	Expired bool // build pages whose expiryDate is before Now
	// Now is the time drafts and future pages are judged against (default time.Now()).
	Now time.Time
	// OutDir overrides the folder the site is written to (default <output>/<site>).
	OutDir string
	// Workers bounds parallel rendering (default GOMAXPROCS).
	Workers int
	// NoWrite renders in memory only: Result.Files holds the tree, nothing is written.
	NoWrite bool
	// Strict makes warnings about content errors: template syntax ({{, {%) reaching a
	// page outside code.
	Strict bool
	// Version is stump's version. When set, rendered Markdown is cached across builds
	// (see mdcache.go) and, unless Force, a build into a folder is skipped if its
	// inputs, this version and these options are those of the last successful build
	// into that folder and the folder is as that build left it (see reuse.go); the
	// result is then that build's, with Reused set. "" always builds, uncached.
	Version string
	// Force builds even when nothing changed (see Version).
	Force bool
}

// ErrNoWorkspace is returned by Find when no stump.yaml is found.
var ErrNoWorkspace = errors.New("no stump.yaml found in this folder or any folder above it (use -C DIR to pick a workspace)")

// Find walks up from start to the nearest folder holding stump.yaml.
func Find(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", fmt.Errorf("find workspace: %w", err)
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, config.WorkspaceFile)); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoWorkspace
		}
		dir = parent
	}
}

// Open reads the workspace at dir (which must hold stump.yaml).
func Open(dir string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("workspace folder %s does not exist", dir)
	}
	cfgPath := filepath.Join(abs, config.WorkspaceFile)
	if _, err := os.Stat(cfgPath); err != nil {
		return nil, fmt.Errorf("%s has no %s: %w", dir, config.WorkspaceFile, ErrNoWorkspace)
	}
	cfg, err := config.ReadWorkspace(cfgPath, config.WorkspaceFile)
	if err != nil {
		return nil, err
	}
	return &Workspace{Root: abs, Config: cfg, Log: slog.New(slog.DiscardHandler)}, nil
}

// Sites lists the sites of the workspace: folders under sites/ holding site.yaml, sorted.
func (w *Workspace) Sites() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(w.Root, "sites"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list sites: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(w.Root, "sites", e.Name(), config.SiteFile)); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// OutDir is the folder site is built into.
func (w *Workspace) OutDir(site string) string {
	return filepath.Join(w.Root, w.Config.Output, site)
}

// SiteDir is the source folder of site.
func (w *Workspace) SiteDir(site string) string {
	return filepath.Join(w.Root, "sites", site)
}

// LoadSiteConfig reads a site's config with the workspace defaults applied.
func (w *Workspace) LoadSiteConfig(site string) (*config.Loaded, error) {
	if !validSiteName(site) {
		return nil, diag.New("", 0, 0, "%q is not a site name (letters, digits, '.', '_' and '-')", site)
	}
	dir := w.SiteDir(site)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		names, _ := w.Sites()
		hint := "there are no sites yet (stump new site NAME)"
		if len(names) > 0 {
			hint = "sites here: " + strings.Join(names, ", ")
		}
		return nil, diag.New(filepath.ToSlash(filepath.Join("sites", site)), 0, 0, "site %q does not exist; %s", site, hint)
	}
	return config.ReadSite(w.Config, site, filepath.Join(dir, config.SiteFile), filepath.ToSlash(filepath.Join("sites", site, config.SiteFile)))
}

func validSiteName(s string) bool {
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// SiteResult pairs a site with its build result or error.
type SiteResult struct {
	Site   string
	Result *Result
	Err    error
}

// BuildAll builds the named sites in parallel (at most two at once per core's worth of
// workers) and returns one SiteResult per site in the order given. One site's failure
// does not stop the others.
func (w *Workspace) BuildAll(ctx context.Context, sites []string, opts Options) []SiteResult {
	out := make([]SiteResult, len(sites))
	var g errgroup.Group
	g.SetLimit(max(1, runtime.GOMAXPROCS(0)/2+1))
	var mu sync.Mutex
	for i, s := range sites {
		g.Go(func() error {
			r, err := w.Build(ctx, s, opts)
			mu.Lock()
			out[i] = SiteResult{Site: s, Result: r, Err: err}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}
