package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/build/manifest"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/store"
)

// ExitPurgePending: published, but the CDN purge is recorded as pending.
const ExitPurgePending = 3

// targetFlags are the flags of commands that publish: --target, --json and the lock
// flags.
func targetFlags() []cli.Flag {
	return append([]cli.Flag{
		targetFlag("publish to this `URL` instead of the site's target (s3://bucket/prefix?region=..&endpoint=..&path_style=true or file:///dir)"),
		jsonFlag(),
	}, lockFlags()...)
}

// targetFlag is --target, with the help text of the command.
func targetFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "target", Usage: usage, EnvVars: []string{"STUMP_TARGET"}}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print a machine-readable result on stdout", EnvVars: []string{"STUMP_JSON"}}
}

// lockFlags belong to the commands that take the site's lock.
func lockFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "break-lock", Usage: "take over a lock whose lease has expired (only when its holder is surely dead)"},
		&cli.BoolFlag{Name: "wait", Usage: "wait for the lock another command holds instead of failing", EnvVars: []string{"STUMP_WAIT"}},
	}
}

// oneSiteFlag is --site for commands that work on one site.
func oneSiteFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "site", Aliases: []string{"s"}, Usage: "the `SITE` (a folder under sites/)", EnvVars: []string{"STUMP_SITE"}}
}

// readFlags are the flags of a command that reads one site's target.
func readFlags() []cli.Flag {
	return []cli.Flag{oneSiteFlag(), targetFlag("read this target `URL` instead of the site's (works even when site.yaml is broken)"), jsonFlag()}
}

// writeFlags are the flags of a command that changes one site's target under its lock.
func writeFlags() []cli.Flag {
	return append([]cli.Flag{oneSiteFlag(), targetFlag("work on this target `URL` instead of the site's (works even when site.yaml is broken)"), jsonFlag()}, lockFlags()...)
}

// siteTarget opens the store a site publishes to, and its config.
type siteTarget struct {
	cfg    *config.Loaded
	target publish.Target
	store  store.Store
	count  *store.Counter
}

// close releases the store (a file store's folder descriptors: publish --all opens
// one store per site in one process).
func (t *siteTarget) close() {
	if cl, ok := t.count.Store.(interface{ Close() error }); ok {
		_ = cl.Close()
	}
}

// openTarget resolves --target, the site's target (a URL or a name from stump.yaml), or
// the embedded default: a local store in .stump/targets/<site> of the workspace.
func openTarget(ctx context.Context, c *cli.Context, ws *build.Workspace, site string) (*siteTarget, error) {
	cfg, t, err := resolveTarget(c, ws, site)
	if err != nil {
		return nil, err
	}
	return openResolved(ctx, c, cfg, t)
}

// resolveTarget reads the site's config and parses its target, touching nothing.
func resolveTarget(c *cli.Context, ws *build.Workspace, site string) (*config.Loaded, publish.Target, error) {
	cfg, err := ws.LoadSiteConfig(site)
	if err != nil {
		return nil, publish.Target{}, err
	}
	raw := c.String("target")
	if raw == "" {
		raw = cfg.Target
		if u, ok := ws.Config.Targets[raw]; ok {
			raw = u
		}
	}
	embedded := raw == ""
	if embedded {
		raw = "file://" + filepath.Join(ws.Root, ".stump", "targets", site)
	}
	t, err := publish.ParseTarget(raw, ws.Root)
	if err != nil {
		return nil, publish.Target{}, err
	}
	t.Embedded = embedded
	return cfg, t, nil
}

// openResolved opens a parsed target with retries and request counting.
func openResolved(ctx context.Context, c *cli.Context, cfg *config.Loaded, t publish.Target) (*siteTarget, error) {
	s, err := openStore(ctx, t, logger(c))
	if err != nil {
		return nil, err
	}
	counted := store.Count(s)
	return &siteTarget{cfg: cfg, target: t, store: store.Retry(counted, store.RetryOptions{Log: logger(c)}), count: counted}, nil
}

// buildForPublish gives the objects and bytes a publish deploys. By default it builds
// the site in memory: a publish never reads files another process can change (two
// publishes of one site each deploy their own build, and the lock decides which one
// commits). With --no-build it reads the build output folder, as stump build wrote it.
//
// built is the build's result (nil with --no-build): its ValidUntil, and its caches to
// keep (SaveCaches) once the publish succeeded.
func buildForPublish(c *cli.Context, ws *build.Workspace, site string, cfg *config.Loaded) (objs []publish.Object, src publish.Source, closeSrc func(), built *build.Result, err error) {
	if !c.Bool("no-build") {
		res, err := ws.Build(c.Context, site, build.Options{Drafts: c.Bool("drafts"), Future: c.Bool("future"), NoWrite: true, Version: stumpVersion()})
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("build failed, nothing published:\n%w", err)
		}
		objs, err := publish.Objects(res.Manifest, cachePolicy(cfg), headerRules(cfg))
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return objs, publish.MemSource(res.Tree), func() {}, res, nil
	}
	dir := ws.OutDir(site)
	m, err := manifest.Read(filepath.Join(dir, manifest.FileName))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("no build to publish in %s (run stump build first, or drop --no-build): %w", dir, err)
	}
	if objs, err = publish.Objects(m, cachePolicy(cfg), headerRules(cfg)); err != nil {
		return nil, nil, nil, nil, err
	}
	dsrc, err := publish.OpenDir(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return objs, dsrc, func() { dsrc.Close() }, nil, nil
}

// deployer is the one constructor of a fully wired Deployer for every command that
// writes a target (publish, rollback, verify --repair, doctor, gc, purge --pending):
// store, lock options, progress, deploy mode and order, and the site's CDN purger, so
// a rollback purges exactly as a publish does.
func deployer(c *cli.Context, st *siteTarget, site string) (*publish.Deployer, error) {
	d := &publish.Deployer{
		Store: st.store, Site: site, Log: logger(c),
		Lock:     publish.LockOptions{Wait: c.Bool("wait"), Break: c.Bool("break-lock")},
		Progress: newProgress(c, site),
		Order:    st.cfg.Deploy.Order,
		Mode:     st.cfg.Deploy.Mode,
	}
	if onFastly(st.cfg) {
		// The generated Fastly VCL reads a live deploy's layer (its base through the
		// marker a miss leaves), once stump edge deploy --fastly has said so in the
		// target; a preview's layer it cannot (no restart to spare), and it fetches
		// the 404 page from the live deploy's own tree.
		d.NeedEdgeStamp, d.FullPreviewTrees = true, true
		d.Pins = []string{notFoundFile(st.cfg)}
	}
	d.StepHook = faultHook()
	if ttl := os.Getenv("STUMP_LOCK_TTL"); ttl != "" {
		v, err := time.ParseDuration(ttl)
		if err != nil || v < time.Second {
			return nil, usagef("STUMP_LOCK_TTL=%q: want a duration of at least 1s, like 2m", ttl)
		}
		d.Lock.TTL = v
	}
	purger, err := newPurger(c.Context, c, st.cfg, c.Bool("json") || c.Bool("dry-run"))
	if err != nil {
		return nil, err
	}
	if purger != nil {
		d.Purger = purger
	}
	return d, nil
}

func cachePolicy(cfg *config.Loaded) publish.CachePolicy {
	p := publish.DefaultCache
	if cfg.Cache.PageBrowserTTL > 0 {
		p.PageBrowser = cfg.Cache.PageBrowserTTL
	}
	if cfg.Cache.PageEdgeTTL > 0 {
		p.PageEdge = cfg.Cache.PageEdgeTTL
	}
	if cfg.Cache.StaticTTL > 0 {
		p.Static = cfg.Cache.StaticTTL
	}
	return p
}

func headerRules(cfg *config.Loaded) []publish.HeaderRule {
	var out []publish.HeaderRule
	for _, h := range cfg.Headers {
		out = append(out, publish.HeaderRule{Path: h.Path, Values: h.Values})
	}
	return out
}

type publishSummary struct {
	OK    bool             `json:"ok"`
	Error string           `json:"error,omitempty"`
	Sites []publishOutcome `json:"sites"`
}

type publishOutcome struct {
	Site     string           `json:"site"`
	OK       bool             `json:"ok"`
	Target   string           `json:"target,omitempty"`
	Result   *publish.Result  `json:"result,omitempty"`
	Requests map[string]int64 `json:"requests,omitempty"`
	// PreviewURL is where the edge serves a --preview deploy.
	PreviewURL string `json:"previewURL,omitempty"`
	// Unchanged: the site's inputs fingerprint as at its last publish to the target,
	// whose live deploy is still that publish's; nothing was built (see many.go).
	Unchanged bool   `json:"unchanged,omitempty"`
	Error     string `json:"error,omitempty"`
	// validUntil is the build's Result.ValidUntil: the publish may be skipped as
	// unchanged only before then.
	validUntil time.Time
}

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:  "publish",
		Usage: "build sites and deploy them to their targets atomically",
		Description: "Builds each site, uploads only content the target lacks (under content-hashed keys),\n" +
			"makes the new deploy live in one committed step, then deletes removed paths.\n" +
			"A site with no target publishes to .stump/targets/<site> in the workspace (see stump serve).",
		Flags: append(append(append(siteFlags(), targetFlags()...),
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the plan (new blobs, writes, deletes, bytes) and change nothing"},
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "a note kept in the deploy record", EnvVars: []string{"STUMP_MESSAGE"}},
			&cli.IntFlag{Name: "max-deletes", Usage: "refuse to delete more than `N` paths", DefaultText: "a quarter of the live site", EnvVars: []string{"STUMP_MAX_DELETES"}},
			&cli.BoolFlag{Name: "force", Usage: "lift the delete limit"},
			&cli.BoolFlag{Name: "no-build", Usage: "publish the existing build output instead of building first"},
			&cli.BoolFlag{Name: "preview", Usage: "upload and materialize a deploy without making it live; prints its preview URL"},
			&cli.BoolFlag{Name: "drafts", Usage: "include drafts (a preview, not for production)"},
			&cli.BoolFlag{Name: "future", Usage: "include pages dated in the future"},
			&cli.BoolFlag{Name: "repair", Usage: "after the deploy, verify the live site and rewrite (and purge) every object that differs from it, uploading damaged content again from the build"},
			&cli.IntFlag{Name: "parallel", Value: 2, Usage: "sites published at once with --all", EnvVars: []string{"STUMP_PARALLEL"}},
		), manySitesFlags()...),
		Action: func(c *cli.Context) error {
			ws, sites, err := workspaceSites(c)
			if err != nil {
				var ue usageError
				if c.Bool("json") && !errors.As(err, &ue) {
					printJSONError(c, "", err)
				}
				return err
			}
			if sites, err = selectSites(c, ws, sites); err != nil {
				return err
			}
			if c.String("target") != "" && len(sites) > 1 {
				return usagef("--target names one target; use it with one --site")
			}
			sum := publishSummary{OK: true}
			outs := make([]publishOutcome, len(sites))
			var mu sync.Mutex
			g := errgroup.Group{}
			g.SetLimit(max(1, c.Int("parallel")))
			purgePending := false
			for i, site := range sites {
				g.Go(func() error {
					out := publishSiteIfChanged(c, ws, site)
					mu.Lock()
					defer mu.Unlock()
					outs[i] = out
					if out.Result != nil && out.Result.PurgePending {
						purgePending = true
					}
					return nil
				})
			}
			_ = g.Wait()
			failed := 0
			for _, o := range outs {
				if !o.OK {
					sum.OK = false
					failed++
				}
				if !c.Bool("json") {
					printPublished(c, o)
				}
			}
			sum.Sites = outs
			if failed > 0 {
				sum.Error = fmt.Sprintf("%d of %d sites failed to publish", failed, len(outs))
			}
			if c.Bool("json") {
				_ = printJSON(c, sum)
			}
			switch {
			case !sum.OK:
				return cli.Exit("", ExitFail)
			case purgePending:
				return cli.Exit("", ExitPurgePending)
			}
			return nil
		},
	}
}

func publishSite(c *cli.Context, ws *build.Workspace, site string) publishOutcome {
	out := publishOutcome{Site: site}
	fail := func(err error) publishOutcome {
		out.Error = err.Error()
		return out
	}
	if err := pullBeforePublish(c, ws, site); err != nil {
		return fail(err)
	}
	ctx := c.Context
	cfg, t, err := resolveTarget(c, ws, site)
	if err != nil {
		return fail(err)
	}
	out.Target = t.String()
	// Open the target first: wrong credentials or a missing bucket fail before any
	// build output is written.
	st, err := openResolved(ctx, c, cfg, t)
	if err != nil {
		return fail(err)
	}
	defer st.close()
	objs, src, closeSrc, built, err := buildForPublish(c, ws, site, st.cfg)
	if err != nil {
		return fail(err)
	}
	defer closeSrc()
	if built != nil {
		out.validUntil = built.ValidUntil
	}
	maxDel := c.Int("max-deletes")
	if maxDel == 0 {
		maxDel = st.cfg.Deploy.MaxDeletes
	}
	d, err := deployer(c, st, site)
	if err != nil {
		return fail(err)
	}
	res, err := d.Publish(ctx, objs, src, publish.Options{
		DryRun: c.Bool("dry-run"), MaxDeletes: maxDel, Force: c.Bool("force"),
		Message: c.String("message"), Revision: workspaceRevision(c, ws.Root), Preview: c.Bool("preview"),
		Repair: c.Bool("repair"),
	})
	if res != nil && res.Preview {
		out.PreviewURL = previewURL(st.cfg, res.Deploy)
	}
	out.Result = res
	out.Requests = camelKeys(st.count.Counts())
	if err != nil {
		return fail(err)
	}
	if !c.Bool("dry-run") {
		built.SaveCaches()
	}
	out.OK = true
	return out
}

func printOutcome(c *cli.Context, o publishOutcome) {
	w := c.App.Writer
	if !o.OK {
		fmt.Fprintf(c.App.ErrWriter, "%s: publish failed: %s\n", o.Site, o.Error)
		return
	}
	r := o.Result
	switch {
	case r.DryRun:
		fmt.Fprintf(w, "%s: plan for %s: %s\n", o.Site, o.Target, r.Plan.Summary())
		if r.Warning != "" {
			fmt.Fprintf(w, "%s: warning: %s\n", o.Site, r.Warning)
		}
		for _, p := range r.Plan.Writes {
			fmt.Fprintf(w, "  write  %s\n", p.Path)
		}
		for _, p := range r.Plan.Assets {
			fmt.Fprintf(w, "  asset  %s\n", p.Path)
		}
		for _, p := range r.Plan.Deletes {
			fmt.Fprintf(w, "  delete %s\n", p)
		}
	case r.Preview:
		fmt.Fprintf(w, "%s: preview %s is ready on %s (not live): %s\n", o.Site, r.Deploy, o.Target, r.Plan.Summary())
		if o.PreviewURL != "" {
			fmt.Fprintf(w, "%s: preview URL: %s\n", o.Site, o.PreviewURL)
		} else {
			fmt.Fprintf(w, "%s: set edge.preview_host in site.yaml to get a preview URL; make it live with stump rollback --to %s\n", o.Site, r.Deploy)
		}
	case r.Noop:
		fmt.Fprintf(w, "%s: %s is up to date (deploy %s): %s\n", o.Site, o.Target, r.Deploy, r.Plan.Summary())
		if len(r.RepairedPaths) > 0 {
			fmt.Fprintf(w, "%s: --repair rewrote and purged %d live objects that differed from the deploy: %s\n", o.Site, len(r.RepairedPaths), strings.Join(r.RepairedPaths, " "))
		}
	default:
		if r.Repaired != "" {
			fmt.Fprintf(w, "%s: finished the interrupted deploy %s\n", o.Site, r.Repaired)
		}
		fmt.Fprintf(w, "%s: deploy %s is live on %s: %s in %.1fs\n", o.Site, r.Deploy, o.Target, r.Plan.Summary(), r.Seconds)
		if r.Base != "" {
			fmt.Fprintf(w, "%s: its tree is a layer of %d objects over deploy %s\n", o.Site, r.Layer, r.Base)
		} else if r.Layer > 0 {
			fmt.Fprintf(w, "%s: its tree is full (%d objects)\n", o.Site, r.Layer)
		}
		printPaths(c, o.Site, r.Plan)
		if r.Warning != "" {
			fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", o.Site, r.Warning)
		}
		if r.RepairedBlobs > 0 {
			fmt.Fprintf(w, "%s: %d stored blobs were missing or corrupted in the target and were uploaded again from the build\n", o.Site, r.RepairedBlobs)
		}
		if len(r.RepairedPaths) > 0 {
			fmt.Fprintf(w, "%s: --repair rewrote and purged %d live objects that differed from the deploy: %s\n", o.Site, len(r.RepairedPaths), strings.Join(r.RepairedPaths, " "))
		}
		if r.PurgePending {
			fmt.Fprintf(w, "%s: published, but a CDN purge failed and is pending (stump status; stump purge --pending retries it)\n", o.Site)
		}
	}
}

// printPaths lists what a deploy added, changed and deleted: the first 20 of each and
// a count (all of them with --verbose; --json always has all).
func printPaths(c *cli.Context, site string, p *publish.Plan) {
	limit := 20
	if c.Bool("verbose") {
		limit = -1
	}
	for _, l := range pathLines(site, p, limit) {
		fmt.Fprintln(c.App.Writer, l)
	}
}

// pathLines are printPaths' lines: at most limit paths of each kind (< 0: all).
func pathLines(site string, p *publish.Plan, limit int) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, g := range []struct {
		what  string
		paths []string
	}{{"added", p.Added}, {"changed", p.Changed}, {"deleted", p.Deletes}} {
		for i, path := range g.paths {
			if i == limit {
				out = append(out, fmt.Sprintf("%s:   … and %d more %s (all of them with -v or --json)", site, len(g.paths)-limit, g.what))
				break
			}
			out = append(out, fmt.Sprintf("%s:   %-7s /%s", site, g.what, path))
		}
	}
	return out
}

// previewURL is https://<id>.<edge.preview_host>/ ("" without a preview host).
func previewURL(cfg *config.Loaded, id string) string {
	if cfg.Edge == nil || cfg.Edge.PreviewHost == "" {
		return ""
	}
	return "https://" + id + "." + cfg.Edge.PreviewHost + "/"
}

// revisionKey is where workspaceRevision keeps its answer in the App's Metadata.
const revisionKey = "stump.revision"

// revisionMemo holds a gitRevision computed once per command run.
type revisionMemo struct {
	once sync.Once
	rev  string
}

// workspaceRevision is gitRevision(dir), worked out once per command run: publish --all
// records it in every site's deploy, and `git status` looks at every tracked file of
// the workspace (150 sites: 150 runs of it took 15 s of CPU). The folder is the
// workspace's, the same for every site of one run.
func workspaceRevision(c *cli.Context, dir string) string {
	memo, _ := c.App.Metadata[revisionKey].(*revisionMemo)
	if memo == nil {
		return gitRevision(dir)
	}
	memo.once.Do(func() { memo.rev = gitRevision(dir) })
	return memo.rev
}

// gitRevision is the workspace's commit, or "" outside git (with "-dirty" when changed).
func gitRevision(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "-dirty"
	}
	return rev
}

// oneSite returns the single --site a command needs.
func oneSite(c *cli.Context) (string, error) {
	var names []string
	for _, n := range c.StringSlice("site") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) != 1 {
		return "", usagef("name one site with --site NAME")
	}
	return names[0], nil
}

// withTarget opens the workspace and one site's target for the history commands. With
// --target, a broken site.yaml is a warning, not an error (see openTargetNoBuild).
func withTarget(c *cli.Context, fn func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error) error {
	err := withTargetRun(c, fn)
	var ue usageError
	var done jsonDone
	if err != nil && c.Bool("json") && !errors.As(err, &ue) && !errors.As(err, &done) {
		site, _ := oneSite(c)
		printJSONError(c, site, err)
	}
	return err
}

func withTargetRun(c *cli.Context, fn func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error) error {
	if c.NArg() > 0 {
		return usagef("%s takes no arguments (got %q)", c.Command.Name, c.Args().First())
	}
	site, err := oneSite(c)
	if err != nil {
		return err
	}
	ws, err := openWorkspace(c)
	if err != nil {
		return cli.Exit("stump: "+err.Error(), ExitFail)
	}
	st, err := openTargetNoBuild(c.Context, c, ws, site)
	if err != nil {
		return cli.Exit("stump: "+site+": "+err.Error(), ExitFail)
	}
	d, err := deployer(c, st, site)
	if err != nil {
		return cli.Exit("stump: "+site+": "+err.Error(), ExitFail)
	}
	if err := fn(ws, site, st, d); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return cli.Exit("stump: "+site+": "+err.Error(), ExitFail)
	}
	return nil
}

// JSONVersion is the version of stump's --json documents (docs/json.md): every one is
// an object with "version", "ok" and, when ok is false, "error".
const JSONVersion = 1

// printJSON prints v, an object, as a --json document: with "version" and, unless v
// has it, "ok": true.
func printJSON(c *cli.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("--json: %T is not an object: %w", v, err)
	}
	m["version"] = json.RawMessage(fmt.Sprint(JSONVersion))
	if _, ok := m["ok"]; !ok {
		m["ok"] = json.RawMessage("true")
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// printJSONError prints the --json document of a failed command.
func printJSONError(c *cli.Context, site string, err error) {
	doc := map[string]any{"ok": false, "error": strings.TrimPrefix(err.Error(), "stump: ")}
	if site != "" {
		doc["site"] = site
	}
	_ = printJSON(c, doc)
}

// jsonDone wraps the error of a command that printed its own --json document for it.
type jsonDone struct{ error }

func (e jsonDone) Unwrap() error { return e.error }

// camelKeys returns counts with lower-camel-case keys ("PutBytes" → "putBytes").
func camelKeys(counts map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(counts))
	for k, v := range counts {
		if k != "" {
			k = strings.ToLower(k[:1]) + k[1:]
		}
		out[k] = v
	}
	return out
}

func deploysCommand() *cli.Command {
	return &cli.Command{
		Name:  "deploys",
		Usage: "list a site's deploys, newest first",
		Flags: readFlags(),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				recs, err := publish.ListRecords(c.Context, st.store, false)
				if err != nil {
					return err
				}
				ptr, _, err := publish.ReadPointer(c.Context, st.store)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c, map[string]any{"site": site, "live": ptr.Live, "deploys": recs})
				}
				if len(recs) == 0 {
					fmt.Fprintf(c.App.Writer, "%s: no deploys yet on %s\n", site, st.target)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "%-2s %-24s %-20s %-10s %7s %10s %-14s %s\n", "", "ID", "TIME", "USER", "FILES", "BYTES", "REVISION", "MESSAGE")
				for _, r := range recs {
					mark := ""
					if r.ID == ptr.Live {
						mark = "*"
					}
					msg := r.Message
					if r.Preview {
						if u := previewURL(st.cfg, r.ID); u != "" {
							msg = strings.TrimSpace("preview " + u + " " + msg)
						} else {
							msg = strings.TrimSpace("(preview) " + msg)
						}
					}
					fmt.Fprintf(c.App.Writer, "%-2s %-24s %-20s %-10s %7d %10s %-14s %s\n", mark, r.ID, r.Time.UTC().Format("2006-01-02 15:04:05Z"), r.User, r.Files, humanBytes(r.Bytes), r.Revision, msg)
				}
				return nil
			})
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "make an earlier deploy live again (no rebuild, no upload)",
		Flags: append(writeFlags(), &cli.StringFlag{Name: "to", Usage: "the deploy `ID` (default: the one before the live deploy)"}),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				res, err := d.Rollback(c.Context, c.String("to"))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c, res)
				}
				if res.Repaired != "" && res.Noop {
					fmt.Fprintf(c.App.Writer, "%s: undid the interrupted deploy %s: it was killed before it went live, so nothing live changed; %s is still live (run stump rollback again to go back further)\n", site, res.Repaired, res.Deploy)
					return nil
				}
				if res.Repaired != "" && res.Deploy == res.Previous {
					fmt.Fprintf(c.App.Writer, "%s: undid the interrupted deploy %s; %s is live again\n", site, res.Repaired, res.Deploy)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "%s: deploy %s is live again (was %s): %d paths written, %d deleted\n", site, res.Deploy, res.Previous, res.Plan.WriteCount, res.Plan.DeleteCount)
				return nil
			})
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the live deploy, the lock holder and pending work",
		Flags: readFlags(),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				s, err := d.ReadStatus(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c, s)
				}
				w := c.App.Writer
				fmt.Fprintf(w, "site:    %s\ntarget:  %s\n", site, st.target)
				if s.Live == nil {
					fmt.Fprintf(w, "live:    nothing deployed yet\n")
				} else {
					fmt.Fprintf(w, "live:    %s (%s by %s, %d files, %s)\n", s.Live.ID, s.Live.Time.UTC().Format(time.RFC3339), s.Live.User, s.Live.Files, humanBytes(s.Live.Bytes))
				}
				if s.Lock != nil {
					fmt.Fprintf(w, "lock:    held by %s@%s (pid %d) since %s, lease until %s\n", s.Lock.Holder, s.Lock.Host, s.Lock.PID, s.Lock.Acquired.UTC().Format(time.RFC3339), s.Lock.Expires.UTC().Format(time.RFC3339))
				} else {
					fmt.Fprintf(w, "lock:    free\n")
				}
				if s.Interrupted != "" {
					fmt.Fprintf(w, "pending: deploy %s was interrupted while going live; the next publish finishes it, stump rollback undoes it\n", s.Interrupted)
				}
				if n := len(s.Pointer.PendingDeletes); n > 0 {
					fmt.Fprintf(w, "pending: %d removed paths not deleted yet (the next publish deletes them)\n", n)
				}
				if len(s.Pointer.PendingPurge) > 0 {
					fmt.Fprintf(w, "pending: CDN purge: %s (stump purge --pending or the next publish retries it)\n", pendingSummary(s.Pointer.PendingPurge))
				}
				return nil
			})
		},
	}
}

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "delete blobs, assets and records no retained deploy references",
		Flags: append(writeFlags(), &cli.IntFlag{Name: "keep", Value: 20, Usage: "keep the newest `N` deploys (and the live one)"}),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				res, err := d.GC(c.Context, c.Int("keep"))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c, struct {
						Site string `json:"site"`
						*publish.GCResult
					}{site, res})
				}
				fmt.Fprintf(c.App.Writer, "%s: kept %d deploys and %d blobs; deleted %d deploys, %d blobs, %d old assets\n", site, res.KeptDeploys, res.KeptBlobs, res.DeletedDeploys, res.DeletedBlobs, res.DeletedAssets)
				return nil
			})
		},
	}
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that the live tree matches the live deploy, byte for byte (--repair rewrites what differs)",
		Flags: append(writeFlags(),
			&cli.BoolFlag{Name: "repair", Usage: "rewrite every live object that differs from the live deploy (content or headers) from its stored blob, and purge it"},
		),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				if c.Bool("repair") {
					return repairSite(c, site, d)
				}
				probs, err := d.Verify(c.Context)
				if err != nil {
					return err
				}
				var failed error
				if bad := countProblems(probs); bad > 0 {
					failed = fmt.Errorf("%d problems in the live tree (stump verify --repair rewrites them)", bad)
				}
				if c.Bool("json") {
					doc := map[string]any{"site": site, "ok": failed == nil, "problems": probs}
					if failed != nil {
						doc["error"] = failed.Error()
					}
					if err := printJSON(c, doc); err != nil {
						return err
					}
				} else {
					printProblems(c, probs)
				}
				if failed != nil {
					return jsonDone{failed}
				}
				if !c.Bool("json") {
					fmt.Fprintf(c.App.Writer, "%s: the live tree matches the live deploy\n", site)
				}
				return nil
			})
		},
	}
}

func printProblems(c *cli.Context, probs []publish.Problem) {
	for _, p := range probs {
		kind := "problem"
		if p.Warning {
			kind = "note"
		}
		fmt.Fprintf(c.App.Writer, "%s: %s: %s\n", kind, p.Path, p.What)
	}
}

func countProblems(probs []publish.Problem) int {
	bad := 0
	for _, p := range probs {
		if !p.Warning {
			bad++
		}
	}
	return bad
}

// repairSite is verify --repair.
func repairSite(c *cli.Context, site string, d *publish.Deployer) error {
	res, err := d.Repair(c.Context, nil)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if err := printJSON(c, map[string]any{"site": site, "ok": true, "repair": res}); err != nil {
			return err
		}
	} else {
		printProblems(c, res.Problems)
		for _, p := range res.Paths {
			fmt.Fprintf(c.App.Writer, "repaired: %s\n", p)
		}
		fmt.Fprintf(c.App.Writer, "%s: %d live objects rewritten and purged; the live tree matches the live deploy\n", site, len(res.Paths))
	}
	if res.PurgePending {
		return cli.Exit(site+": repaired, but the purge of the rewritten paths is pending (stump purge --pending retries it)", ExitPurgePending)
	}
	return nil
}

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "explain the state of a site's target (pointer, deploy records, lock, stored content); --fix rebuilds broken metadata",
		Description: "Without --fix, doctor only reads. With --fix it rebuilds what can be rebuilt: the record of the live\n" +
			"deploy from the live tree and the current build, the pointer from the newest complete deploy, and an\n" +
			"unreadable lock is moved aside. It never deletes anything: what it replaces is kept under _stump/doctor/.",
		Flags: append(writeFlags(),
			&cli.BoolFlag{Name: "fix", Usage: "rebuild what can be rebuilt (never deletes anything)"},
		),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				var current []publish.Object
				if res, err := ws.Build(c.Context, site, build.Options{NoWrite: true}); err == nil {
					current, _ = publish.Objects(res.Manifest, cachePolicy(st.cfg), headerRules(st.cfg))
				} else {
					fmt.Fprintf(c.App.ErrWriter, "%s: the site does not build, so a lost deploy record cannot be rebuilt: %v\n", site, err)
				}
				dg, err := d.Doctor(c.Context, c.Bool("fix"), current)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c, map[string]any{"site": site, "ok": true, "fixed": c.Bool("fix"), "diagnosis": dg})
				}
				w := c.App.Writer
				fmt.Fprintf(w, "site:    %s\ntarget:  %s\n", site, st.target)
				for _, f := range dg.Findings {
					fmt.Fprintf(w, "- %s\n", f)
				}
				for _, r := range dg.Records {
					state := "ok"
					if r.Problem != "" {
						state = r.Problem
					}
					fmt.Fprintf(w, "  deploy %s %s %s: %s\n", r.ID, r.Time, orMode(r.Mode), state)
				}
				if len(dg.Fixes) == 0 {
					fmt.Fprintf(w, "%s: nothing to fix\n", site)
					return nil
				}
				verb := "would fix (run with --fix)"
				if c.Bool("fix") {
					verb = "fixed"
				}
				for _, f := range dg.Fixes {
					fmt.Fprintf(w, "%s: %s\n", verb, f)
				}
				return nil
			})
		},
	}
}

func orMode(m string) string {
	if m == "" {
		return publish.ModeInPlace
	}
	return m
}

// notFoundFile is the file of the site's 404 page (edge.not_found, default /404.html).
func notFoundFile(cfg *config.Loaded) string {
	p := edge.DefaultNotFound
	if cfg.Edge != nil && cfg.Edge.NotFound != "" {
		p = cfg.Edge.NotFound
	}
	p = strings.TrimPrefix(p, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	return p
}

// onFastly reports whether a site is served by Fastly: an edge.fastly service, or a
// fastly entry in cdn.
func onFastly(cfg *config.Loaded) bool {
	if cfg == nil {
		return false
	}
	if cfg.Edge != nil && cfg.Edge.Fastly != nil {
		return true
	}
	for _, c := range cfg.CDN {
		if _, ok := c["fastly"]; ok {
			return true
		}
	}
	return false
}
