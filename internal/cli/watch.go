package cli

import (
	"errors"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/watch"
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "build a site, serve it with live reload, and rebuild what changes",
		Description: "Builds the site in memory (public/ is never touched) and serves it the way the published\n" +
			"site is served: pretty URLs, the 404 page, aliases, headers. It watches the site, its theme\n" +
			"and stump.yaml; a save re-renders what the change touches and reloads open pages (a\n" +
			"stylesheet change swaps the stylesheet without a reload). A build error shows over the\n" +
			"page and on the terminal until it is fixed. It binds to 127.0.0.1 unless --bind says\n" +
			"otherwise; Ctrl-C stops it. See docs/watch.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "site", Aliases: []string{"s"}, Usage: "the site (folder under sites/) to watch", EnvVars: []string{"STUMP_SITE"}},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: watch.DefaultPort, Usage: "the `PORT` to listen on", EnvVars: []string{"STUMP_PORT"}},
			&cli.StringFlag{Name: "bind", Value: "127.0.0.1", Usage: "the `ADDRESS` to listen on (0.0.0.0 exposes it to the network)", EnvVars: []string{"STUMP_BIND"}},
			&cli.BoolFlag{Name: "drafts", Aliases: []string{"D"}, Usage: "include pages with draft: true", EnvVars: []string{"STUMP_DRAFTS"}},
			&cli.BoolFlag{Name: "future", Aliases: []string{"F"}, Usage: "include pages dated in the future", EnvVars: []string{"STUMP_FUTURE"}},
			&cli.BoolFlag{Name: "open", Usage: "open the site in a browser (xdg-open)", EnvVars: []string{"STUMP_OPEN"}},
			&cli.DurationFlag{Name: "poll", Usage: "poll files every `INTERVAL` (like 500ms) instead of using fsnotify (chosen by itself when fsnotify fails)", EnvVars: []string{"STUMP_POLL"}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("watch takes no arguments (got %q); name the site with --site", c.Args().First())
			}
			site := strings.TrimSpace(c.String("site"))
			if site == "" {
				return usagef("name the site to watch with --site NAME")
			}
			if p := c.Int("port"); p < 0 || p > 65535 {
				return usagef("--port %d is not a port (1-65535)", p)
			}
			if c.Duration("poll") < 0 {
				return usagef("--poll must be a positive interval like 500ms")
			}
			ws, err := openWorkspace(c)
			if err != nil {
				return cli.Exit("stump: "+err.Error(), ExitFail)
			}
			if _, err := ws.LoadSiteConfig(site); err != nil {
				names, _ := ws.Sites()
				if len(names) == 0 || !slices.Contains(names, site) {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				// A site that exists but does not build yet is watched: the error shows
				// in the browser until it is fixed.
			}
			port := c.Int("port")
			if port == 0 {
				port = -1 // any free port
			}
			err = watch.Run(c.Context, watch.Config{
				Workspace: ws,
				Site:      site,
				Options:   build.Options{Drafts: c.Bool("drafts"), Future: c.Bool("future")},
				Bind:      c.String("bind"),
				Port:      port,
				Poll:      c.Duration("poll"),
				Open:      c.Bool("open"),
				Out:       c.App.Writer,
				Log:       logger(c),
			})
			if err != nil {
				var pt *watch.PortTakenError
				if errors.As(err, &pt) {
					return cli.Exit(err.Error(), ExitFail)
				}
				return cli.Exit("stump: "+err.Error(), ExitFail)
			}
			return nil
		},
	}
}
