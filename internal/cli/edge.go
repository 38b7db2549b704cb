package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/edge/fastly"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/purge"
)

func edgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "edge",
		Usage: "generate, check and deploy the VCL that serves the workspace's sites (Varnish or Fastly)",
		Description: "The VCL routes every site with an edge: section in site.yaml by Host to its S3 website\n" +
			"origin, with grace, purges, atomic deploys, previews and defenses (docs/edge.md). With --fastly\n" +
			"it is Fastly's dialect, for the service in edge.fastly.service_id (docs/fastly.md); the API\n" +
			"token comes from FASTLY_API_TOKEN only.",
		Subcommands: []*cli.Command{
			{
				Name:  "vcl",
				Usage: "print the VCL (every site unless --site names some)",
				UsageText: "stump edge vcl [--all | --site NAME...] > /etc/varnish/default.vcl\n" +
					"stump edge vcl --fastly [--site NAME] > main.vcl   # every site on that site's Fastly service",
				Flags: append(siteFlags(), fastlyFlag()),
				Action: func(c *cli.Context) error {
					if c.Bool("fastly") {
						_, ds, err := fastlyDesired(c, false)
						if err != nil {
							return err
						}
						if len(ds) > 1 {
							return usagef("the sites are on %d Fastly services: name one site with --site", len(ds))
						}
						_, err = c.App.Writer.Write([]byte(ds[0].VCL))
						return err
					}
					vcl, err := edgeVCL(c)
					if err != nil {
						return err
					}
					_, err = c.App.Writer.Write(vcl)
					return err
				},
			},
			{
				Name:      "check",
				Usage:     "generate the VCL and compile it with varnishd -C (--fastly: lint and test it with falco)",
				UsageText: "stump edge check [--all | --site NAME...] [--fastly]",
				Flags:     append(siteFlags(), fastlyFlag()),
				Action: func(c *cli.Context) error {
					if c.Bool("fastly") {
						return fastlyCheck(c)
					}
					vcl, err := edgeVCL(c)
					if err != nil {
						return err
					}
					bin, err := edge.FindVarnishd()
					if err != nil {
						return cli.Exit("stump: cannot check the VCL: "+err.Error(), ExitFail)
					}
					if err := edge.Compile(bin, vcl, os.TempDir()); err != nil {
						return cli.Exit("stump: "+err.Error(), ExitFail)
					}
					fmt.Fprintf(c.App.Writer, "the VCL compiles (%s, %d bytes)\n", bin, len(vcl))
					return nil
				},
			},
			{
				Name:  "deploy",
				Usage: "upload the Fastly VCL: clone the active version, write it, validate, activate",
				UsageText: "stump edge deploy --fastly [--site NAME...] [--dry-run]\n" +
					"   (FASTLY_API_TOKEN in the environment; each site's service in edge.fastly.service_id)",
				Flags: append(siteFlags(), fastlyFlag(), dryRunFlag(), fastlyAPIFlag()),
				Action: func(c *cli.Context) error {
					if !c.Bool("fastly") {
						return usagef("stump edge deploy needs --fastly (Varnish loads its VCL with varnishadm: docs/edge.md)")
					}
					ws, ds, err := fastlyDesired(c, true)
					if err != nil {
						return err
					}
					for _, d := range ds {
						sid := d.Plan.Sites[0].Fastly.ServiceID
						client, err := fastlyClient(c, sid)
						if err != nil {
							return err
						}
						v, err := client.Deploy(c.Context, d, fastly.Options{DryRun: c.Bool("dry-run"), Out: c.App.Writer})
						if err != nil {
							return cli.Exit("stump: "+err.Error(), ExitFail)
						}
						if c.Bool("dry-run") {
							continue
						}
						by := "fastly service " + sid + " (unchanged version)"
						if v > 0 {
							by = fmt.Sprintf("fastly service %s version %d", sid, v)
						}
						stampEdge(c, ws, siteNames(d.Plan, sid), by)
					}
					return nil
				},
			},
			{
				Name:      "rollback",
				Usage:     "activate the Fastly service's previous version",
				UsageText: "stump edge rollback --fastly --site NAME [--dry-run] [--force]",
				Flags: append(siteFlags(), fastlyFlag(), dryRunFlag(), fastlyAPIFlag(),
					&cli.BoolFlag{Name: "force", Usage: "roll back to a version that cannot read layered deploys even where one is live"}),
				Action: func(c *cli.Context) error {
					if !c.Bool("fastly") {
						return usagef("stump edge rollback needs --fastly")
					}
					ws, picked, plan, err := edgeSites(c)
					if err != nil {
						return err
					}
					services, err := servicesOf(picked, plan)
					if err != nil {
						return err
					}
					for _, sid := range services {
						client, err := fastlyClient(c, sid)
						if err != nil {
							return err
						}
						names := siteNames(plan, sid)
						release := func() {}
						o := fastly.Options{DryRun: c.Bool("dry-run"), Out: c.App.Writer,
							Losing: func(ctx context.Context) error {
								r, err := unstampEdge(c, ws, names, c.Bool("force"), c.Bool("dry-run"))
								if err == nil {
									release = r
								}
								return err
							}}
						_, err = client.Rollback(c.Context, o)
						release()
						if err != nil {
							return cli.Exit("stump: "+err.Error(), ExitFail)
						}
					}
					return nil
				},
			},
		},
	}
}

func fastlyFlag() cli.Flag {
	return &cli.BoolFlag{Name: "fastly", Usage: "Fastly's VCL and API (the service in edge.fastly.service_id)"}
}

func dryRunFlag() cli.Flag {
	return &cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the change, write nothing"}
}

func fastlyAPIFlag() cli.Flag {
	return &cli.StringFlag{Name: "fastly-api", Usage: "the API's base URL (tests)", Value: fastly.DefaultAPI, Hidden: true}
}

// edgeSites loads the sites --site names (every site by default) and the workspace's
// plan of every site with an edge.
func edgeSites(c *cli.Context) (*build.Workspace, []string, *edge.Plan, error) {
	ws, err := openWorkspace(c)
	if err != nil {
		return nil, nil, nil, err
	}
	all, err := ws.Sites()
	if err != nil {
		return nil, nil, nil, err
	}
	picked := all
	if c.Bool("all") || len(c.StringSlice("site")) > 0 {
		if picked, err = pickSites(c, ws); err != nil {
			return nil, nil, nil, err
		}
	}
	var cfgs []*config.Loaded
	for _, n := range all {
		cfg, err := ws.LoadSiteConfig(n)
		if err != nil {
			return nil, nil, nil, err
		}
		cfgs = append(cfgs, cfg)
	}
	plan, err := edge.NewPlan(ws.Config, cfgs...)
	if err != nil {
		return nil, nil, nil, err
	}
	return ws, picked, plan, nil
}

func servicesOf(picked []string, plan *edge.Plan) ([]string, error) {
	want := map[string]bool{}
	for _, n := range picked {
		want[n] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range plan.Sites {
		if want[s.Name] && s.Fastly != nil && !seen[s.Fastly.ServiceID] {
			seen[s.Fastly.ServiceID] = true
			out = append(out, s.Fastly.ServiceID)
		}
	}
	if len(out) == 0 {
		return nil, usagef("no site picked has edge.fastly.service_id in its site.yaml (docs/fastly.md)")
	}
	sort.Strings(out)
	return out, nil
}

// fastlyDesired renders, for each service of the picked sites, what it should hold: the
// VCL of every site on it. With secrets, the preview credentials are read from the
// environment variables edge.preview_auth_env names.
func fastlyDesired(c *cli.Context, secrets bool) (*build.Workspace, []*fastly.Desired, error) {
	ws, picked, plan, err := edgeSites(c)
	if err != nil {
		return nil, nil, err
	}
	services, err := servicesOf(picked, plan)
	if err != nil {
		return nil, nil, err
	}
	sec := map[string]string{}
	for _, s := range plan.Sites {
		if s.PreviewAuthEnv == "" {
			continue
		}
		v := os.Getenv(s.PreviewAuthEnv)
		if !secrets {
			v = "placeholder:placeholder"
		}
		if user, _, ok := strings.Cut(v, ":"); ok && user != "" {
			sec[fastly.PreviewAuthKey(s.Name)] = "Basic " + base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	var out []*fastly.Desired
	for _, sid := range services {
		d, err := fastly.Want(plan, sid, sec)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	return ws, out, nil
}

// siteNames are the names of the sites of plan on Fastly service sid.
func siteNames(plan *edge.Plan, sid string) []string {
	var out []string
	for _, s := range plan.Sites {
		if s.Fastly != nil && s.Fastly.ServiceID == sid {
			out = append(out, s.Name)
		}
	}
	return out
}

func fastlyClient(c *cli.Context, service string) (*fastly.Client, error) {
	tok := strings.TrimSpace(os.Getenv(fastly.TokenEnv))
	if tok == "" {
		return nil, usagef("%s is not set: stump reads the Fastly API token from the environment only (a token with the global scope of the service: docs/fastly.md)", fastly.TokenEnv)
	}
	return &fastly.Client{Service: service, Token: purge.Secret(tok), API: c.String("fastly-api")}, nil
}

// fastlyCheck lints the Fastly VCL of each service with falco and runs its smoke tests.
func fastlyCheck(c *cli.Context) error {
	ws, ds, err := fastlyDesired(c, false)
	if err != nil {
		return err
	}
	bin, err := fastly.FindFalco(ws.Root)
	if err != nil {
		return cli.Exit("stump: cannot check the Fastly VCL: "+err.Error(), ExitFail)
	}
	for _, d := range ds {
		sid := d.Plan.Sites[0].Fastly.ServiceID
		report, err := fastly.CheckVCL(c.Context, bin, d.Plan, []byte(d.VCL), os.TempDir())
		if err != nil {
			fmt.Fprint(c.App.ErrWriter, report)
			if errors.Is(err, fastly.ErrNoFalco) {
				return cli.Exit("stump: "+err.Error(), ExitFail)
			}
			return cli.Exit(fmt.Sprintf("stump: the Fastly VCL of service %s does not pass falco: %v", sid, err), ExitFail)
		}
		fmt.Fprintf(c.App.Writer, "the Fastly VCL of service %s passes falco lint and its tests (%s, %d bytes)\n", sid, bin, len(d.VCL))
	}
	return nil
}

// edgeVCL generates the VCL for the sites --site names, or for every site.
func edgeVCL(c *cli.Context) ([]byte, error) {
	ws, err := openWorkspace(c)
	if err != nil {
		return nil, err
	}
	var names []string
	if c.Bool("all") || len(c.StringSlice("site")) > 0 {
		if names, err = pickSites(c, ws); err != nil {
			return nil, err
		}
	} else if names, err = ws.Sites(); err != nil {
		return nil, err
	}
	var sites []*config.Loaded
	withEdge := 0
	for _, n := range names {
		cfg, err := ws.LoadSiteConfig(n)
		if err != nil {
			return nil, err
		}
		if cfg.Edge != nil {
			withEdge++
		}
		sites = append(sites, cfg)
	}
	vcl, err := edge.VCL(ws.Config, sites...)
	if err != nil {
		return nil, err
	}
	if withEdge == 0 {
		fmt.Fprintln(c.App.ErrWriter, "stump: note: no site has an edge: section in site.yaml; the VCL routes no site (docs/edge.md)")
	}
	return vcl, nil
}

// stampEdge records in each site's target that its edge, the Fastly VCL just made
// active, reads layered atomic deploys (publish.EdgeStamp): until then their deploys
// are full trees. A target that cannot be written keeps full trees; stump says so.
func stampEdge(c *cli.Context, ws *build.Workspace, sites []string, by string) {
	for _, n := range sites {
		err := openSiteTarget(c, ws, n, func(st *siteTarget) error {
			return publish.WriteEdgeStamp(c.Context, st.store, publish.EdgeStamp{Layers: true, By: by, Time: time.Now().UTC()})
		})
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "stump: warning: site %s: %v: its atomic deploys stay full trees until the stamp is written (run stump edge deploy --fastly again where the target is writable)\n", n, err)
			continue
		}
		fmt.Fprintf(c.App.Writer, "site %s: the edge reads layered deploys (stamp written)\n", n)
	}
}

// unstampEdge runs before a rollback activates a Fastly version that cannot read
// layered deploys: under each site's lock, it refuses (unless force) while a site of
// the service has a layer live, which that version could not serve, and otherwise
// removes the sites' edge stamps first, so that no publish writes a layer for it. It
// returns the release of the locks, for after the activation.
func unstampEdge(c *cli.Context, ws *build.Workspace, sites []string, force, dryRun bool) (func(), error) {
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	var layered []string
	for _, n := range sites {
		st, err := openTarget(c.Context, c, ws, n)
		if err != nil {
			releaseAll()
			return nil, fmt.Errorf("site %s: %w (the version to activate cannot read layered deploys: stump must know that none is live)", n, err)
		}
		d := &publish.Deployer{Store: st.store, Site: n, Log: logger(c)}
		release, err := d.DropEdgeLayers(c.Context, force, dryRun)
		var live *publish.LayerLiveError
		switch {
		case errors.As(err, &live):
			layered = append(layered, fmt.Sprintf("%s (deploy %s over %s)", n, live.Deploy, live.Base))
			st.close()
			continue
		case err != nil:
			st.close()
			releaseAll()
			return nil, fmt.Errorf("site %s: %w", n, err)
		}
		releases = append(releases, func() { release(); st.close() })
	}
	if len(layered) > 0 {
		releaseAll()
		return nil, fmt.Errorf("the version to activate cannot read layered deploys, and these sites have one live: %s; it would serve their unchanged pages as missing. Roll each back to a deploy with a full tree first (stump rollback --site NAME --to ID), or pass --force", strings.Join(layered, ", "))
	}
	return releaseAll, nil
}

// openSiteTarget opens a site's target for f and closes it after.
func openSiteTarget(c *cli.Context, ws *build.Workspace, site string, f func(*siteTarget) error) error {
	st, err := openTarget(c.Context, c, ws, site)
	if err != nil {
		return err
	}
	defer st.close()
	return f(st)
}
