package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/atomicfile"
	"github.com/stump-dev/stump/publish"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"
)

// manySitesFlags are publish's flags for workspaces of many sites.
func manySitesFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "changed-since", Usage: "only the sites that changed since git `REV`: their folder, the theme folder they use, or stump.yaml (compared with the working tree)", EnvVars: []string{"STUMP_CHANGED_SINCE"}},
		&cli.StringFlag{Name: "shard", Usage: "`I/N`: only the I-th of N shares of the sites (1 ≤ I ≤ N), for CI runners in a matrix; every site falls in exactly one share", EnvVars: []string{"STUMP_SHARD"}},
		&cli.BoolFlag{Name: "no-fingerprint", Usage: "build and plan every site, even one whose inputs are as at its last publish to the target", EnvVars: []string{"STUMP_NO_FINGERPRINT"}},
	}
}

// selectSites narrows the sites of a command by --changed-since and --shard.
func selectSites(c *cli.Context, ws *build.Workspace, sites []string) ([]string, error) {
	if rev := c.String("changed-since"); rev != "" {
		paths, err := gitChanged(ws.Root, rev)
		if err != nil {
			return nil, err
		}
		sites = touchedSites(ws, sites, paths)
	}
	if spec := c.String("shard"); spec != "" {
		i, n, err := parseShard(spec)
		if err != nil {
			return nil, err
		}
		sites = shard(sites, i, n)
	}
	if fingerprintable(c) && len(sites) > 1 {
		c.Context = context.WithValue(c.Context, precheckKey{}, precheck(c, ws, sites))
	}
	if len(sites) == 0 && !c.Bool("json") {
		fmt.Fprintln(c.App.Writer, "no site to publish: none is touched by --changed-since, or this --shard is empty")
	}
	return sites, nil
}

// gitChanged lists the workspace files (slash paths relative to the workspace) that
// differ between rev and the working tree, and the untracked files git does not ignore.
func gitChanged(root, rev string) ([]string, error) {
	var paths []string
	for _, args := range [][]string{
		{"diff", "--name-only", "--no-renames", "-z", "--relative", rev, "--"},
		{"ls-files", "-z", "--others", "--exclude-standard"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("--changed-since %s: git %s failed: %w: %s", rev, args[0], err, strings.TrimSpace(stderr.String()))
		}
		for _, p := range strings.Split(string(out), "\x00") {
			if p != "" {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// touchedSites keeps the sites a change of paths touches: a file in the site's folder,
// in the workspace folder of the theme it uses, or stump.yaml.
func touchedSites(ws *build.Workspace, sites, paths []string) []string {
	touched := map[string]bool{}
	themes := map[string]bool{}
	all := false
	for _, p := range paths {
		parts := strings.SplitN(p, "/", 3)
		switch {
		case p == config.WorkspaceFile:
			all = true
		case len(parts) >= 3 && parts[0] == "sites":
			touched[parts[1]] = true
		case len(parts) >= 3 && parts[0] == "themes":
			themes[parts[1]] = true
		}
	}
	var out []string
	for _, s := range sites {
		if all || touched[s] {
			out = append(out, s)
			continue
		}
		if len(themes) > 0 {
			// A site whose config does not load is kept: its publish reports why.
			if cfg, err := ws.LoadSiteConfig(s); err != nil || themes[cfg.Theme] {
				out = append(out, s)
			}
		}
	}
	return out
}

// parseShard reads "I/N".
func parseShard(spec string) (int, int, error) {
	a, b, ok := strings.Cut(spec, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, usagef("--shard %q: want I/N with 1 ≤ I ≤ N, like 2/4", spec)
	}
	return i, n, nil
}

// shard returns share i of n (from 1) of sites: every n-th site of the sorted list,
// starting at the i-th, so the shares are even and each site is in exactly one.
func shard(sites []string, i, n int) []string {
	sorted := append([]string(nil), sites...)
	sort.Strings(sorted)
	var out []string
	for k, s := range sorted {
		if k%n == i-1 {
			out = append(out, s)
		}
	}
	return out
}

// ---- fingerprints

// fingerprintRecord is what .stump/fingerprints/<site>.json keeps per target: the
// fingerprint of the inputs of the site's last successful publish to it, and the deploy
// that publish left live.
type fingerprintRecord struct {
	Fingerprint string    `json:"fingerprint"`
	Live        string    `json:"live"`
	Time        time.Time `json:"time"`
	// ValidUntil is when that build's output changes by the clock alone (a page due
	// to appear or expire): from then on the site is built again.
	ValidUntil time.Time `json:"validUntil,omitzero"`
}

func fingerprintFile(ws *build.Workspace, site string) string {
	return filepath.Join(ws.Root, ".stump", "fingerprints", site+".json")
}

func readFingerprints(ws *build.Workspace, site string) map[string]fingerprintRecord {
	m := map[string]fingerprintRecord{}
	if b, err := os.ReadFile(fingerprintFile(ws, site)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// writeFingerprint records a successful publish (best effort: a lost record only costs
// a rebuild next time).
func writeFingerprint(ws *build.Workspace, site, target string, rec fingerprintRecord) {
	m := readFingerprints(ws, site)
	m[target] = rec
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return
	}
	_ = atomicfile.Write(fingerprintFile(ws, site), b)
}

var (
	versionOnce sync.Once
	versionStr  string
)

// stumpVersion identifies the stump binary: its commit when built from a clean
// checkout, else a digest of the executable.
func stumpVersion() string {
	versionOnce.Do(func() {
		if bi, ok := debug.ReadBuildInfo(); ok {
			rev, modified := "", true
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if rev != "" && !modified {
				versionStr = "rev:" + rev
				return
			}
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				versionStr = "mod:" + bi.Main.Version
				return
			}
		}
		versionStr = "unknown:" + strconv.FormatInt(time.Now().UnixNano(), 10) // never matches
		if exe, err := os.Executable(); err == nil {
			if f, err := os.Open(exe); err == nil {
				h := sha256.New()
				if _, err := io.Copy(h, f); err == nil {
					versionStr = "exe:" + hex.EncodeToString(h.Sum(nil))
				}
				f.Close()
			}
		}
	})
	return versionStr
}

// fingerprintable reports whether a publish may be skipped on an unchanged fingerprint:
// a plain publish of many sites (--all, or several --site) that builds (not a dry run,
// preview, repair or --no-build). A publish of one named site always plans, so it also
// clears up after a killed publish (a stale lock, orphaned uploads) and says what the
// target holds.
func fingerprintable(c *cli.Context) bool {
	many := c.Bool("all") || len(c.StringSlice("site")) > 1
	return many && !c.Bool("no-fingerprint") && !c.Bool("dry-run") && !c.Bool("preview") && !c.Bool("repair") && !c.Bool("no-build")
}

// publishSiteIfChanged publishes site unless its inputs fingerprint as at its last
// successful publish to the same target and that target still has the deploy that
// publish left live, with nothing pending (an interrupted deploy, deletes or a purge
// to retry): then the site is reported unchanged without building or planning. After a
// successful publish it records the fingerprint.
func publishSiteIfChanged(c *cli.Context, ws *build.Workspace, site string) publishOutcome {
	if !fingerprintable(c) {
		return publishSite(c, ws, site)
	}
	checks, _ := c.Context.Value(precheckKey{}).(map[string]*siteCheck)
	chk, ok := checks[site]
	if !ok {
		chk = checkSite(c, ws, site)
	}
	if chk.skip != nil {
		return *chk.skip
	}
	out := publishSite(c, ws, site)
	if chk.fingerprint != "" && out.OK && out.Result != nil && !out.Result.DryRun && !out.Result.Preview && out.Result.Deploy != "" && !out.Result.PurgePending {
		writeFingerprint(ws, site, chk.target, fingerprintRecord{Fingerprint: chk.fingerprint, Live: out.Result.Deploy, Time: time.Now().UTC(), ValidUntil: out.validUntil})
	}
	return out
}

type precheckKey struct{}

// siteCheck is what checkSite found: the site's fingerprint and target, and the
// outcome to report when the publish can be skipped.
type siteCheck struct {
	fingerprint, target string
	skip                *publishOutcome
}

// precheck checks many sites at once (reading files and one pointer each: I/O bound),
// before the publishes, which run --parallel at a time.
func precheck(c *cli.Context, ws *build.Workspace, sites []string) map[string]*siteCheck {
	out := make(map[string]*siteCheck, len(sites))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	for _, s := range sites {
		g.Go(func() error {
			chk := checkSite(c, ws, s)
			mu.Lock()
			out[s] = chk
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// checkSite fingerprints a site and decides whether its publish can be skipped. Any
// error means "publish it" (the publish then reports the error).
func checkSite(c *cli.Context, ws *build.Workspace, site string) *siteCheck {
	chk := &siteCheck{}
	cfg, t, err := resolveTarget(c, ws, site)
	if err != nil {
		return chk
	}
	fp, err := ws.Fingerprint(site, "stump="+stumpVersion(), fmt.Sprintf("drafts=%v future=%v", c.Bool("drafts"), c.Bool("future")))
	if err != nil {
		return chk
	}
	chk.fingerprint, chk.target = fp, t.String()
	rec, ok := readFingerprints(ws, site)[chk.target]
	if !ok || rec.Fingerprint != fp || rec.Live == "" || (!rec.ValidUntil.IsZero() && !time.Now().Before(rec.ValidUntil)) {
		return chk
	}
	st, err := openResolved(c.Context, c, cfg, t)
	if err != nil {
		return chk
	}
	defer st.close()
	ptr, _, err := publish.ReadPointer(c.Context, st.store)
	if err != nil || ptr.Live != rec.Live || ptr.State != publish.StateLive || ptr.Pending != "" ||
		len(ptr.PendingDeletes) > 0 || ptr.PurgeOwed != "" || len(ptr.PendingPurge) > 0 {
		return chk
	}
	chk.skip = &publishOutcome{
		Site: site, OK: true, Target: chk.target, Unchanged: true,
		Result:   &publish.Result{Site: site, Deploy: ptr.Live, Noop: true, Plan: &publish.Plan{}},
		Requests: st.count.Counts(),
	}
	return chk
}

// printPublished prints one site's outcome.
func printPublished(c *cli.Context, o publishOutcome) {
	if o.Unchanged {
		fmt.Fprintf(c.App.Writer, "%s: unchanged since its last publish to %s (deploy %s is live); not rebuilt\n", o.Site, o.Target, o.Result.Deploy)
		return
	}
	printOutcome(c, o)
}
