package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/source/importer"
)

var siteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func importCommand() *cli.Command {
	sub := func(kind, usage string) *cli.Command {
		return &cli.Command{
			Name:      kind,
			Usage:     usage,
			ArgsUsage: "DIR",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "site", Aliases: []string{"s"}, Usage: "the name of the stump site to create (sites/NAME)", EnvVars: []string{"STUMP_SITE"}},
			},
			Action: func(c *cli.Context) error {
				// The documented form puts --site after DIR, where the flag parser has
				// stopped: take it from the arguments.
				name := c.String("site")
				var args []string
				rest := c.Args().Slice()
				for i := 0; i < len(rest); i++ {
					a := rest[i]
					switch {
					case (a == "--site" || a == "-site" || a == "-s") && i+1 < len(rest):
						name = rest[i+1]
						i++
					case strings.HasPrefix(a, "--site="):
						name = strings.TrimPrefix(a, "--site=")
					default:
						args = append(args, a)
					}
				}
				if len(args) != 1 {
					return usagef("import %s takes one DIR, the %s site's folder", kind, kind)
				}
				if name == "" {
					return usagef("import %s needs --site NAME, the stump site to create", kind)
				}
				if !siteNameRE.MatchString(name) {
					return usagef("--site %q is not a site name (letters, digits, '.', '_' and '-')", name)
				}
				ws, err := openWorkspace(c)
				if err != nil {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				src := args[0]
				dst := ws.SiteDir(name)
				res, err := importer.Import(c.Context, kind, src, dst)
				if err != nil {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				shown := rel(ws.Root, dst)
				fmt.Fprintf(c.App.Writer, "%s: imported %s site %s: %d pages, %d files; %d notes in %s/%s\n",
					name, kind, src, res.Pages, res.Files, len(res.Notes), shown, importer.ReportFile)
				for _, n := range res.Notes {
					fmt.Fprintf(c.App.Writer, "  %s\n", n)
				}
				fmt.Fprintf(c.App.Writer, "next: stump build --site %s\n", name)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "import",
		Usage: "turn a Hugo, Jekyll or Eleventy site into a stump site",
		Description: "Reads the site in DIR (never changing it) and writes sites/NAME: config, content, static files\n" +
			"and data, with permalinks kept so old URLs still answer, Liquid and Nunjucks expressions rewritten\n" +
			"where stump has an equivalent, and a report of what was not carried over (docs/import.md).\n" +
			"Importing again replaces the earlier import.",
		Subcommands: []*cli.Command{
			sub(importer.Hugo, "import a Hugo site"),
			sub(importer.Jekyll, "import a Jekyll site"),
			sub(importer.Eleventy, "import an Eleventy site"),
		},
	}
}
