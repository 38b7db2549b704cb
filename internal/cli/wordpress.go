package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/source/wordpress"
)

// The environment variables of `stump wordpress` (secrets: never flags, never printed).
const (
	envWPPassword = "STUMP_WP_PASSWORD"       // the application password of source.wordpress.user
	envWPSecret   = "STUMP_WP_WEBHOOK_SECRET" // the HMAC key shared with the must-use plugin
)

func wordpressCommand() *cli.Command {
	one := []cli.Flag{&cli.StringSliceFlag{Name: "site", Aliases: []string{"s"}, Usage: "the site whose site.yaml has source: {wordpress: ...}"}}
	return &cli.Command{
		Name:  "wordpress",
		Usage: "pull content from WordPress (REST API or an export file), or publish on every WordPress publish",
		Description: "The site's site.yaml names the WordPress in source.wordpress (url, user, section, types);\n" +
			"the application password comes from STUMP_WP_PASSWORD. Pulled posts and pages are page bundles in\n" +
			"the site's content folder, the pull state is sites/<site>/.wordpress.json (docs/wordpress.md).",
		Subcommands: []*cli.Command{
			{
				Name:  "pull",
				Usage: "fetch what changed in WordPress since the last pull into the site's content",
				Flags: append(append([]cli.Flag{}, one...),
					&cli.BoolFlag{Name: "full", Usage: "fetch everything, not only what changed since the last pull"},
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
				),
				Action: func(c *cli.Context) error {
					return wordpressOne(c, func(ws *build.Workspace, site string, cfg *config.Loaded) error {
						rep, err := pullSite(c.Context, c, ws, site, cfg)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(c, rep)
						}
						printPullReport(c, site, "fetched", rep, c.App.Writer)
						return nil
					})
				},
			},
			{
				Name:      "import",
				Usage:     "write the posts and pages of a WordPress export (WXR) file into the site's content",
				ArgsUsage: "FILE.xml",
				Flags:     append(append([]cli.Flag{}, one...), &cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("name the export file: stump wordpress import FILE.xml --site NAME")
					}
					return wordpressOne(c, func(ws *build.Workspace, site string, cfg *config.Loaded) error {
						f, err := os.Open(c.Args().First())
						if err != nil {
							return err
						}
						defer f.Close()
						wc := config.WordPress{}
						if cfg.Source != nil && cfg.Source.WordPress != nil {
							wc = *cfg.Source.WordPress
						}
						rep, err := wordpress.ImportWXR(c.Context, f, wordpressOptions(ws, site, cfg, wc, c))
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(c, rep)
						}
						printPullReport(c, site, "imported", rep, c.App.Writer)
						return nil
					}, true)
				},
			},
			{
				Name:  "listen",
				Usage: "receive WordPress's signed webhooks and pull, build and publish the site on each (one run at a time)",
				Description: "Serves POST /hook (HMAC-SHA256 signed events from integrations/wordpress/stump-webhook.php,\n" +
					"secret in " + envWPSecret + "), GET /status (JSON: runs, last result) and GET /healthz.\n" +
					"With --every, it also polls. Runs publish with the flags given here (target, message, ...).",
				Flags: append(append(append([]cli.Flag{}, one...), targetFlags()...),
					&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8787", Usage: "listen on `HOST:PORT` (keep it private: put it behind your network, not the internet)"},
					&cli.DurationFlag{Name: "debounce", Value: 2 * time.Second, Usage: "quiet time after the last event before a run"},
					&cli.DurationFlag{Name: "every", Usage: "also pull (and publish what changed) every `DURATION` (without the plugin: polling alone)"},
					&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "a note kept in each deploy record"},
				),
				Action: wordpressListen,
			},
		},
	}
}

// wordpressOne opens the workspace and the one --site, and checks it has a WordPress
// source (unless anySource: import works without one).
func wordpressOne(c *cli.Context, fn func(ws *build.Workspace, site string, cfg *config.Loaded) error, anySource ...bool) error {
	if c.NArg() > 0 && len(anySource) == 0 {
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
	cfg, err := ws.LoadSiteConfig(site)
	if err != nil {
		return cli.Exit("stump: "+err.Error(), ExitFail)
	}
	if len(anySource) == 0 && (cfg.Source == nil || cfg.Source.WordPress == nil) {
		return cli.Exit(fmt.Sprintf("stump: %s: site.yaml has no source.wordpress (url, user): see docs/wordpress.md", site), ExitFail)
	}
	if err := fn(ws, site, cfg); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return cli.Exit("stump: "+site+": "+err.Error(), ExitFail)
	}
	return nil
}

func wordpressOptions(ws *build.Workspace, site string, cfg *config.Loaded, wc config.WordPress, c *cli.Context) wordpress.Options {
	return wordpress.Options{
		SiteDir:  ws.SiteDir(site),
		BasePath: cfg.Base.Path,
		Config:   wc,
		Password: os.Getenv(envWPPassword),
		CacheDir: filepath.Join(ws.Root, ".stump", "wordpress", site),
		Full:     c.Bool("full"),
		Log:      logger(c),
	}
}

// pullSite pulls the site's WordPress source into its content.
func pullSite(ctx context.Context, c *cli.Context, ws *build.Workspace, site string, cfg *config.Loaded) (*wordpress.Report, error) {
	wc := *cfg.Source.WordPress
	if wc.User != "" && os.Getenv(envWPPassword) == "" {
		return nil, fmt.Errorf("source.wordpress.user is %q but %s is not set (an application password: Users → Profile → Application Passwords)", wc.User, envWPPassword)
	}
	return wordpress.Pull(ctx, wordpressOptions(ws, site, cfg, wc, c))
}

func printPullReport(c *cli.Context, site, verb string, rep *wordpress.Report, w interface{ Write([]byte) (int, error) }) {
	for _, wn := range rep.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", site, wn)
	}
	from := ""
	if rep.API != "" {
		from = " from " + rep.API
	}
	fmt.Fprintf(w, "%s: %s %d items%s (%d requests): %d files written, %d removed\n",
		site, verb, rep.Fetched, from, rep.Requests, len(rep.Written), len(rep.Removed))
	if !rep.NextScheduled.IsZero() {
		fmt.Fprintf(w, "%s: next scheduled post goes live at %s: publish again then\n", site, rep.NextScheduled.UTC().Format(time.RFC3339))
	}
}

// pulledKey marks a context whose site was pulled already (by stump wordpress listen).
type pulledKey struct{}

// pullBeforePublish pulls the site's source (when site.yaml has one) before publishSite
// builds it; the pull's report goes to stderr, so publish --json stays one document. A
// failed pull fails the publish before anything is built: the live site stays as it is.
func pullBeforePublish(c *cli.Context, ws *build.Workspace, site string) error {
	if c.Bool("no-build") || c.Context.Value(pulledKey{}) != nil {
		return nil
	}
	cfg, err := ws.LoadSiteConfig(site)
	if err != nil || cfg.Source == nil || cfg.Source.WordPress == nil {
		return nil // publish reports a broken site.yaml itself
	}
	rep, err := pullSite(c.Context, c, ws, site, cfg)
	if err != nil {
		return fmt.Errorf("pulling from WordPress (nothing was published): %w", err)
	}
	printPullReport(c, site, "fetched", rep, c.App.ErrWriter)
	return nil
}

func wordpressListen(c *cli.Context) error {
	return wordpressOne(c, func(ws *build.Workspace, site string, cfg *config.Loaded) error {
		secret := wordpress.SecretFromEnv(os.Getenv(envWPSecret))
		if len(secret) == 0 && c.Duration("every") <= 0 {
			return fmt.Errorf("set %s (the secret shared with the WordPress plugin), or poll with --every", envWPSecret)
		}
		if len(secret) > 0 && len(secret) < 16 {
			return fmt.Errorf("%s is too short: use 16 characters or more (openssl rand -hex 32)", envWPSecret)
		}
		l := &wordpress.Listener{Secret: secret, Debounce: c.Duration("debounce"), Every: c.Duration("every"), Log: listenLogger(c)}
		l.Run = func(ctx context.Context, reason string) wordpress.RunResult {
			return listenRun(ctx, c, ws, site, reason)
		}
		ln, err := net.Listen("tcp", c.String("addr"))
		if err != nil {
			return err
		}
		h := l.Handler()
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
		if len(secret) == 0 {
			srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hook" {
					http.Error(w, "webhooks are off: "+envWPSecret+" is not set", http.StatusUnauthorized)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
		fmt.Fprintf(c.App.Writer, "%s: listening on http://%s (POST /hook, GET /status)\n", site, ln.Addr())
		ctx, cancel := context.WithCancel(c.Context)
		defer cancel()
		go func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
		// Catch up at start: what changed while nobody listened.
		l.Trigger("start")
		go l.Loop(ctx)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

// listenLogger logs the listener's events on stderr (info, or debug with --verbose).
func listenLogger(c *cli.Context) *slog.Logger {
	if c.Bool("verbose") {
		return logger(c)
	}
	return newInfoLogger(c.App.ErrWriter)
}

// listenRun is one run of the listener: pull; when the pull changed nothing and the
// run was a poll, stop there; else publish (build, upload, switch, purge).
func listenRun(ctx context.Context, c *cli.Context, ws *build.Workspace, site, reason string) (res wordpress.RunResult) {
	res = wordpress.RunResult{Start: time.Now(), Reason: reason}
	defer func() { res.End = time.Now() }()
	cfg, err := ws.LoadSiteConfig(site)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	rep, err := pullSite(ctx, c, ws, site, cfg)
	if err != nil {
		res.Error = "pull: " + err.Error() + " (nothing was published)"
		return res
	}
	res.NextScheduled = rep.NextScheduled
	for _, w := range rep.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", site, w)
	}
	if !rep.Changed() && reason == "poll" {
		res.OK = true
		res.Summary = fmt.Sprintf("nothing changed in WordPress (%d requests)", rep.Requests)
		return res
	}
	prev := c.Context
	c.Context = context.WithValue(ctx, pulledKey{}, true)
	out := publishSite(c, ws, site)
	c.Context = prev
	if !out.OK {
		res.Error = "publish: " + out.Error
		return res
	}
	res.OK = true
	r := out.Result
	res.Summary = fmt.Sprintf("fetched %d items (%d files written, %d removed); deploy %s: %s", rep.Fetched, len(rep.Written), len(rep.Removed), r.Deploy, r.Plan.Summary())
	if !r.Noop {
		for _, o := range r.Plan.Writes {
			res.Changed = append(res.Changed, o.Path)
		}
		for _, o := range r.Plan.Assets {
			res.Changed = append(res.Changed, o.Path)
		}
		res.Changed = append(res.Changed, r.Plan.Deletes...)
	}
	fmt.Fprintf(c.App.Writer, "%s: %s: %s\n", site, reason, strings.TrimSpace(res.Summary))
	return res
}

func newInfoLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
