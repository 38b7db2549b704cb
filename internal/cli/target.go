package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/publish"
)

// openTargetNoBuild opens a site's target for a command that does not build (rollback,
// status, verify, deploys, gc, serve, doctor). Without --target it is openTarget: the
// target comes from site.yaml, so a config error is the command's error. With --target,
// a site.yaml that cannot be loaded (missing, unparsable, invalid) does not stop the
// command: it goes on with the default settings (stump.yaml's defaults, else stump's
// own) and no CDN, after one warning on stderr that names the config error and says
// that no purge can be configured. Such a command takes from the config only the deploy
// mode and order, the cache settings and the CDNs; the target's pointer records the
// live deploy's mode, so rollback follows the target's real layout.
func openTargetNoBuild(ctx context.Context, c *cli.Context, ws *build.Workspace, site string) (*siteTarget, error) {
	raw := c.String("target")
	if raw == "" {
		return openTarget(ctx, c, ws, site)
	}
	cfg, cerr := ws.LoadSiteConfig(site)
	if cerr != nil {
		cfg = defaultSiteConfig(ws, site)
		fmt.Fprintf(c.App.ErrWriter, "stump: %s: warning: %v; going on with --target and the default settings (deploy mode and order, cache); no CDN purge can be configured without the site's config, so nothing is purged\n", site, cerr)
	}
	t, err := publish.ParseTarget(raw, ws.Root)
	if err != nil {
		return nil, err
	}
	return openResolved(ctx, c, cfg, t)
}

// defaultSiteConfig is the config of a site whose site.yaml is empty: the workspace's
// defaults (or stump's own when those do not load) with no CDN, since purging needs
// the site's base URL and its CDN settings.
func defaultSiteConfig(ws *build.Workspace, site string) *config.Loaded {
	shown := filepath.ToSlash(filepath.Join("sites", site, config.SiteFile))
	cfg, err := config.ReadSite(ws.Config, site, os.DevNull, shown)
	if err != nil {
		if cfg, err = config.ReadSite(&config.Workspace{}, site, os.DevNull, shown); err != nil {
			// An empty file under empty defaults always loads; this is a bug.
			panic(fmt.Sprintf("cli: the default site config does not load: %v", err))
		}
	}
	cfg.CDN = nil
	return cfg
}
