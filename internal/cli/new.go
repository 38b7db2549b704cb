package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build/scaffold"
)

func newCommand() *cli.Command {
	return &cli.Command{
		Name:  "new",
		Usage: "create a site or a page from a template",
		Subcommands: []*cli.Command{
			{
				Name:      "site",
				Usage:     "create sites/NAME with a site.yaml and a home page",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("new site takes one NAME")
					}
					dir := c.String("C")
					if dir == "" {
						dir = "."
					}
					files, err := scaffold.Site(dir, c.Args().First())
					if err != nil {
						return cli.Exit("stump: "+err.Error(), ExitFail)
					}
					for _, f := range files {
						fmt.Fprintf(c.App.Writer, "created %s\n", relPath(f))
					}
					return nil
				},
			},
			{
				Name:      "page",
				Usage:     "create a Markdown page under sites/SITE/content/",
				ArgsUsage: "PATH (like news/first-post.md)",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "site", Aliases: []string{"s"}, Usage: "the site (required)", EnvVars: []string{"STUMP_SITE"}}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("new page takes one PATH like news/first-post.md")
					}
					if c.String("site") == "" {
						return usagef("new page needs --site NAME")
					}
					ws, err := openWorkspace(c)
					if err != nil {
						return cli.Exit("stump: "+err.Error(), ExitFail)
					}
					p, err := scaffold.Page(ws.Root, c.String("site"), c.Args().First(), nowFunc())
					if err != nil {
						return cli.Exit("stump: "+err.Error(), ExitFail)
					}
					fmt.Fprintf(c.App.Writer, "created %s\n", relPath(p))
					return nil
				},
			},
		},
	}
}

// nowFunc is the clock for new pages.
var nowFunc = time.Now

// relPath is p relative to the current folder when it is below it (as people typed it),
// else p.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, abs); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
		return r
	}
	return p
}
