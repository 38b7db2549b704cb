package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/edge"
	"github.com/stump-dev/stump/publish"
	"github.com/stump-dev/stump/publish/website"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve a site's published target the way S3 website hosting does",
		Description: "Serves what `stump publish` put in the site's target (by default the local store in\n" +
			".stump/targets/<site>): index documents, the 404 page, redirects and stored headers.\n" +
			"It binds to 127.0.0.1 unless --bind says otherwise.",
		Flags: append([]cli.Flag{oneSiteFlag(), targetFlag("serve this target `URL` instead of the site's")},
			&cli.StringFlag{Name: "bind", Value: "127.0.0.1", Usage: "the `ADDRESS` to listen on (0.0.0.0 exposes it to the network)", EnvVars: []string{"STUMP_BIND"}},
			&cli.IntFlag{Name: "port", Value: 1718, Usage: "the `PORT` to listen on (0 picks a free one)", EnvVars: []string{"STUMP_PORT"}},
		),
		Action: func(c *cli.Context) error {
			return withTarget(c, func(ws *build.Workspace, site string, st *siteTarget, d *publish.Deployer) error {
				ln, err := net.Listen("tcp", net.JoinHostPort(c.String("bind"), fmt.Sprint(c.Int("port"))))
				if err != nil {
					return fmt.Errorf("cannot listen on %s:%d (%v); is the port taken? pick another with --port", c.String("bind"), c.Int("port"), err)
				}
				h := &website.Handler{Store: st.store, Log: logger(c)}
				// Query strings as the edge treats them (docs/edge.md).
				if cfg, err := ws.LoadSiteConfig(site); err == nil {
					q, err := edge.NewQueryRules(cfg.Edge)
					if err != nil {
						return fmt.Errorf("%s: %w", site, err)
					}
					h.KeepQuery = q.Keep
				}
				srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
				fmt.Fprintf(c.App.Writer, "%s: serving %s at http://%s/ (Ctrl-C stops)\n", site, st.target, ln.Addr())
				if ptr, _, err := publish.ReadPointer(c.Context, st.store); err == nil && ptr.Live == "" {
					hint := fmt.Sprintf("nothing is published on %s yet: run stump publish --site %s (or stump watch --site %s to preview while you edit)", st.target, site, site)
					h.NotFoundHint = hint
					fmt.Fprintf(c.App.ErrWriter, "%s: note: %s\n", site, hint)
				}
				go func() {
					<-c.Context.Done()
					ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Second)
					defer cancel()
					_ = srv.Shutdown(ctx)
				}()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			})
		},
	}
}
