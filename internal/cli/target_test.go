package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stump-dev/stump/build"
)

func openTestWorkspace(t *testing.T, stumpYAML string) *build.Workspace {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stump.yaml"), []byte(stumpYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := build.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestDefaultSiteConfig checks the config commands fall back to with --target and a
// broken site.yaml: the workspace's defaults apply, and no CDN is left to purge with.
func TestDefaultSiteConfig(t *testing.T) {
	ws := openTestWorkspace(t, `output: public
defaults:
  deploy:
    mode: atomic
    order: ["css/*"]
  cache:
    pageEdge: 2h
  cdn:
    - varnish:
        endpoints: [http://127.0.0.1:1]
`)
	cfg := defaultSiteConfig(ws, "x")
	if cfg.Name != "x" || cfg.File != "sites/x/site.yaml" {
		t.Errorf("name %q file %q, want x and sites/x/site.yaml", cfg.Name, cfg.File)
	}
	if cfg.Deploy.Mode != "atomic" || len(cfg.Deploy.Order) != 1 || cfg.Cache.PageEdgeTTL.Hours() != 2 {
		t.Errorf("deploy %+v cache %+v: the workspace defaults were not applied", cfg.Deploy, cfg.Cache)
	}
	if cfg.CDN != nil {
		t.Errorf("CDN = %v, want none", cfg.CDN)
	}
}

// TestDefaultSiteConfigBadDefaults: defaults that do not load (an unknown deploy mode)
// give stump's own defaults rather than an error or a panic.
func TestDefaultSiteConfigBadDefaults(t *testing.T) {
	ws := openTestWorkspace(t, "output: public\ndefaults:\n  deploy:\n    mode: sideways\n")
	cfg := defaultSiteConfig(ws, "x")
	if cfg.Deploy.Mode != "inplace" || cfg.Base == nil || cfg.Base.Path != "/" {
		t.Errorf("deploy %+v base %v, want stump's defaults", cfg.Deploy, cfg.Base)
	}
}
