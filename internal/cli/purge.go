package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdns"
)

// newPurger builds the site's purger from its cdn: settings, or nil when it has none.
// Reports go to w as one line per CDN (unless quiet).
func newPurger(ctx context.Context, c *cli.Context, cfg *config.Loaded, quiet bool) (*purge.Purger, error) {
	if len(cfg.CDN) == 0 {
		return nil, nil
	}
	list, err := cdns.FromConfig(ctx, cfg.CDN, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	var mu sync.Mutex
	p := &purge.Purger{CDNs: list, BaseURL: cfg.Base.String(), Log: logger(c)}
	if !quiet {
		p.OnReport = func(r purge.Report) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(c.App.Writer, "%s: purged %s\n", cfg.Name, describeReport(r))
		}
	}
	return p, nil
}

func describeReport(r purge.Report) string {
	s := fmt.Sprintf("%s: %d calls, %d paths, %d keys", r.CDN, r.Calls, r.Paths, r.Keys)
	if r.Mode != "" {
		s += " (" + r.Mode + ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.Error != "" {
		s += "; FAILED: " + r.Error
	}
	return s
}

func purgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "purge",
		Usage: "purge a site's CDNs: what the last deploy changed, given URLs, everything, or pending work",
		Description: "Without a mode flag, shows the plan (--plan). CDNs come from cdn: in site.yaml; tokens from\n" +
			"the environment variables their settings name. Credentials are never printed.",
		Flags: append(writeFlags(),
			&cli.BoolFlag{Name: "plan", Usage: "show what the last deploy's purge sends, per CDN, and send nothing"},
			&cli.BoolFlag{Name: "urls", Usage: "purge the URL paths given as arguments (/news/ /about/)"},
			&cli.BoolFlag{Name: "all", Usage: "purge the whole site (by its site key where the CDN has keys)"},
			&cli.BoolFlag{Name: "pending", Usage: "retry the purge work earlier deploys left pending"},
		),
		Action: func(c *cli.Context) error {
			modes := 0
			for _, m := range []string{"plan", "urls", "all", "pending"} {
				if c.Bool(m) {
					modes++
				}
			}
			if modes > 1 {
				return usagef("use one of --plan, --urls, --all, --pending")
			}
			if c.Bool("urls") != (c.NArg() > 0) {
				return usagef("--urls takes URL paths as arguments (and arguments need --urls)")
			}
			site, err := oneSite(c)
			if err != nil {
				return err
			}
			ws, err := openWorkspace(c)
			if err != nil {
				return cli.Exit("stump: "+err.Error(), ExitFail)
			}
			err = runPurge(c, ws, site)
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				return cli.Exit("stump: "+site+": "+err.Error(), ExitFail)
			}
			return err
		},
	}
}

func runPurge(c *cli.Context, ws *build.Workspace, site string) error {
	ctx := c.Context
	cfg, err := ws.LoadSiteConfig(site)
	if err != nil {
		return err
	}
	p, err := newPurger(ctx, c, cfg, c.Bool("json"))
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("no CDN is configured (add cdn: to %s; see docs/purge.md)", cfg.File)
	}
	var req *purge.Request
	switch {
	case c.Bool("urls"):
		if req, err = purge.URLs(site, cfg.Base.String(), c.Args().Slice(), p.PlanOptions); err != nil {
			return err
		}
	case c.Bool("all"):
		req = purge.All(site, cfg.Base.String(), "asked for with --all")
	case c.Bool("pending"):
		return purgePending(c, ws, site, p)
	default:
		// --plan: the last deploy against its parent.
		st, err := openTarget(ctx, c, ws, site)
		if err != nil {
			return err
		}
		ptr, _, err := publish.ReadPointer(ctx, st.store)
		if err != nil {
			return err
		}
		if ptr.Live == "" {
			return fmt.Errorf("nothing deployed yet on %s", st.target)
		}
		live, err := publish.ReadRecord(ctx, st.store, ptr.Live)
		if err != nil {
			return err
		}
		var from []publish.Object
		if live.Parent != "" {
			if parent, err := publish.ReadRecord(ctx, st.store, live.Parent); err == nil {
				from = parent.Objects
			}
		}
		req = purge.Plan(site, cfg.Base.String(), from, live.Objects, p.PlanOptions)
		calls, reps, perr := p.Preview(req)
		if c.Bool("json") {
			return printJSON(c, map[string]any{"site": site, "deploy": live.ID, "request": req, "calls": calls, "reports": reps})
		}
		fmt.Fprintf(c.App.Writer, "%s: purge plan of deploy %s: %d paths, %d keys", site, live.ID, len(req.Paths), len(req.Keys))
		if req.All {
			fmt.Fprintf(c.App.Writer, ", whole site")
		}
		if req.Reason != "" {
			fmt.Fprintf(c.App.Writer, " (%s)", req.Reason)
		}
		fmt.Fprintln(c.App.Writer)
		names := make([]string, 0, len(calls))
		for n := range calls {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, r := range reps {
			fmt.Fprintf(c.App.Writer, "  %s\n", describeReport(r))
			for _, line := range calls[r.CDN] {
				fmt.Fprintf(c.App.Writer, "    %s\n", line)
			}
		}
		return perr
	}
	pending, err := p.Send(ctx, req)
	if c.Bool("json") {
		_ = printJSON(c, map[string]any{"site": site, "request": req, "reports": p.LastReports(), "pending": len(pending) > 0})
	}
	if err != nil {
		return fmt.Errorf("purge failed: %w", err)
	}
	return nil
}

// purgePending retries the pending work recorded in the pointer, under the lock, and
// records what still fails.
func purgePending(c *cli.Context, ws *build.Workspace, site string, p *purge.Purger) error {
	st, err := openTarget(c.Context, c, ws, site)
	if err != nil {
		return err
	}
	d, err := deployer(c, st, site)
	if err != nil {
		return err
	}
	left, err := d.RetryPendingPurge(c.Context, p)
	if err != nil {
		return err
	}
	if left {
		return cli.Exit(site+": some purges still fail; they stay pending (stump status shows them)", ExitPurgePending)
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "%s: no purge work pending\n", site)
	}
	return nil
}

// pendingSummary describes pending purge work for status.
func pendingSummary(b []byte) string {
	pd, err := purge.DecodePending(b)
	if err != nil || pd == nil {
		return strings.TrimSpace(string(b))
	}
	return pd.Summary()
}
