// Package cdns links every CDN adapter into purge.FromConfig. The adapters import
// package purge (for Request, Report and Settings), so purge cannot import them; a
// program that purges imports this package once, for its side effect or for
// FromConfig:
//
//	cdnList, err := cdns.FromConfig(ctx, site.CDN, os.Getenv)
package cdns

import (
	"context"

	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cloudflare"
	"github.com/stump-dev/stump/purge/cloudfront"
	"github.com/stump-dev/stump/purge/fastly"
	"github.com/stump-dev/stump/purge/varnish"
)

func init() {
	// varnish.FromSettings reads {endpoints, mode, host, soft, added_by_url} and calls
	// varnish.New(varnish.Config{...}).
	purge.Register("varnish", varnish.FromSettings)
	purge.Register("fastly", fastly.FromSettings)
	purge.Register("cloudfront", cloudfront.FromSettings)
	purge.Register("cloudflare", cloudflare.FromSettings)
}

// FromConfig is purge.FromConfig with every adapter linked in.
func FromConfig(ctx context.Context, cdn []map[string]any, env func(string) string) ([]purge.CDN, error) {
	return purge.FromConfig(ctx, cdn, env)
}
