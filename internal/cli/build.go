package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/publish"
)

func siteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "site", Aliases: []string{"s"}, Usage: "the site (folder under sites/) to work on; repeat for several", EnvVars: []string{"STUMP_SITE"}},
		&cli.BoolFlag{Name: "all", Usage: "every site of the workspace", EnvVars: []string{"STUMP_ALL"}},
	}
}

// pickSites returns the sites named by --site or --all.
func pickSites(c *cli.Context, ws *build.Workspace) ([]string, error) {
	var names []string
	for _, n := range c.StringSlice("site") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	all := c.Bool("all")
	switch {
	case all && len(names) > 0:
		return nil, usagef("use either --site or --all, not both")
	case all:
		sites, err := ws.Sites()
		if err != nil {
			return nil, err
		}
		if len(sites) == 0 {
			return nil, fmt.Errorf("the workspace has no sites yet (stump new site NAME)")
		}
		return sites, nil
	case len(names) == 0:
		return nil, usagef("name a site with --site NAME, or use --all")
	}
	return names, nil
}

// workspaceSites opens the workspace and picks the sites of a command that takes no
// arguments (build, publish).
func workspaceSites(c *cli.Context) (*build.Workspace, []string, error) {
	if c.NArg() > 0 {
		return nil, nil, usagef("%s takes no arguments (got %q); name sites with --site", c.Command.Name, c.Args().First())
	}
	ws, err := openWorkspace(c)
	if err != nil {
		return nil, nil, cli.Exit("stump: "+err.Error(), ExitFail)
	}
	sites, err := pickSites(c, ws)
	if err != nil {
		return nil, nil, err
	}
	return ws, sites, nil
}

type siteSummary struct {
	Site       string `json:"site"`
	OK         bool   `json:"ok"`
	Pages      int    `json:"pages,omitempty"`
	Files      int    `json:"files,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
	DurationMS int64  `json:"durationMs"`
	Dir        string `json:"dir,omitempty"`
	Error      string `json:"error,omitempty"`
	// Report is what the build left out (skipped pages and files, raw HTML) and its warnings.
	Report *build.Report `json:"report,omitempty"`
	// Unchanged: nothing the build reads changed since the last build into Dir, which
	// still holds it, so nothing was built (--force builds anyway).
	Unchanged bool `json:"unchanged,omitempty"`
}

type buildSummary struct {
	OK         bool          `json:"ok"`
	Error      string        `json:"error,omitempty"`
	Sites      []siteSummary `json:"sites"`
	DurationMS int64         `json:"durationMs"`
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:  "build",
		Usage: "build sites into static files and a manifest",
		Description: "Builds sites/<site> into <output>/<site>/ (output is 'public' unless stump.yaml says otherwise)\n" +
			"and writes .stump-manifest.json there. A failed build leaves the previous output untouched.",
		Flags: append(siteFlags(),
			&cli.BoolFlag{Name: "drafts", Aliases: []string{"D"}, Usage: "include pages with draft: true", EnvVars: []string{"STUMP_DRAFTS"}},
			&cli.BoolFlag{Name: "future", Aliases: []string{"F"}, Usage: "include pages dated in the future", EnvVars: []string{"STUMP_FUTURE"}},
			&cli.BoolFlag{Name: "expired", Aliases: []string{"E"}, Usage: "include pages past their expiryDate", EnvVars: []string{"STUMP_EXPIRED"}},
			&cli.BoolFlag{Name: "json", Usage: "print a machine-readable summary on stdout", EnvVars: []string{"STUMP_JSON"}},
			&cli.BoolFlag{Name: "strict", Usage: "fail on content warnings (template syntax like {{ or {% left in a page)", EnvVars: []string{"STUMP_STRICT"}},
			&cli.BoolFlag{Name: "force", Usage: "build even when nothing the build reads changed since the last build into the output folder", EnvVars: []string{"STUMP_FORCE"}},
		),
		Action: func(c *cli.Context) error {
			ws, sites, err := workspaceSites(c)
			if err != nil {
				var ue usageError
				if c.Bool("json") && !errors.As(err, &ue) {
					printJSONError(c, "", err)
				}
				return err
			}
			start := time.Now()
			opts := build.Options{Drafts: c.Bool("drafts"), Future: c.Bool("future"), Expired: c.Bool("expired"), Strict: c.Bool("strict"),
				Version: stumpVersion(), Force: c.Bool("force")}
			results := ws.BuildAll(c.Context, sites, opts)
			sum := buildSummary{OK: true, DurationMS: time.Since(start).Milliseconds()}
			for _, r := range results {
				s := siteSummary{Site: r.Site, OK: r.Err == nil}
				if r.Err != nil {
					sum.OK = false
					s.Error = r.Err.Error()
					fmt.Fprintf(c.App.ErrWriter, "%s: build failed:\n%s\n", r.Site, indent(r.Err.Error()))
				} else {
					s.Pages, s.Files, s.Bytes, s.DurationMS = r.Result.Pages, r.Result.Files, r.Result.Bytes, r.Result.Duration.Milliseconds()
					s.Dir = rel(ws.Root, r.Result.Dir)
					s.Unchanged = r.Result.Reused
					rep := r.Result.Report
					s.Report = &rep
					if !c.Bool("json") && r.Result.Reused {
						fmt.Fprintf(c.App.Writer, "%s: unchanged since the last build (%d pages, %d files) → %s%s\n", r.Site, s.Pages, s.Files, s.Dir, reportLine(rep))
					} else if !c.Bool("json") {
						fmt.Fprintf(c.App.Writer, "%s: %d pages, %d files, %s in %s → %s%s\n", r.Site, s.Pages, s.Files, humanBytes(s.Bytes), r.Result.Duration.Round(time.Millisecond), s.Dir, reportLine(rep))
					}
					for _, w := range rep.Warnings {
						fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", r.Site, w)
					}
					for _, f := range rep.Skipped {
						fmt.Fprintf(c.App.ErrWriter, "%s: skipped %s: %s\n", r.Site, f.File, f.Reason)
					}
				}
				sum.Sites = append(sum.Sites, s)
			}
			if !sum.OK {
				n := 0
				for _, s := range sum.Sites {
					if !s.OK {
						n++
					}
				}
				sum.Error = fmt.Sprintf("%d of %d sites failed to build", n, len(sum.Sites))
			}
			if c.Bool("json") {
				if err := printJSON(c, sum); err != nil {
					return err
				}
			}
			if !sum.OK {
				return cli.Exit("", ExitFail)
			}
			return nil
		},
	}
}

// reportLine is the summary line's tail: what the build left out, when it left anything.
func reportLine(r build.Report) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.Drafts, "drafts")
	add(r.Future, "future")
	add(r.Expired, "expired")
	out := ""
	if len(parts) > 0 {
		out = "; skipped " + strings.Join(parts, ", ")
	}
	if r.RawHTML > 0 {
		out += fmt.Sprintf("; %d pages lost raw HTML (markdown: {unsafe: true} keeps it)", r.RawHTML)
	}
	if n := len(r.Skipped); n > 0 {
		out += fmt.Sprintf("; %d content files not published", n)
	}
	if n := len(r.Warnings); n > 0 {
		out += fmt.Sprintf("; %d warnings", n)
	}
	return out
}

func indent(s string) string {
	out := "  "
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += "  "
		}
	}
	return out
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

func humanBytes(n int64) string { return publish.HumanBytes(n) }
