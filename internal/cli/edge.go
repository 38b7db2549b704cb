package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/edge"
)

func edgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "edge",
		Usage: "generate and check the Varnish VCL that serves the workspace's sites",
		Description: "The VCL routes every site with an edge: section in site.yaml by Host to its S3 website\n" +
			"origin, with grace, purges, atomic deploys, previews and defenses (docs/edge.md).",
		Subcommands: []*cli.Command{
			{
				Name:      "vcl",
				Usage:     "print the VCL (every site unless --site names some)",
				UsageText: "stump edge vcl [--all | --site NAME...] > /etc/varnish/default.vcl",
				Flags:     siteFlags(),
				Action: func(c *cli.Context) error {
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
				Usage:     "generate the VCL and compile it with varnishd -C",
				UsageText: "stump edge check [--all | --site NAME...]",
				Flags:     siteFlags(),
				Action: func(c *cli.Context) error {
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
		},
	}
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
