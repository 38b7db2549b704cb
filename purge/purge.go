// Package purge turns what a deploy changed into the fewest CDN purge calls. The planner
// (Plan) derives, from the live and the new deploy's objects, the URLs and surrogate keys
// to purge: changed, added (an edge may hold a cached 404) and deleted paths, in both
// "/dir/" and "/dir/index.html" forms; nothing unchanged. Each CDN adapter (subpackages
// varnish, fastly, cloudfront, cloudflare) implements CDN and sends a Request in as few
// API calls as its limits allow. Purger runs several CDNs concurrently for publish; what
// fails after retries comes back as pending work, which publish records and the next
// publish or `stump purge --pending` retries.
package purge

import (
	"context"
)

// Request is what one purge must make fresh at the edge.
type Request struct {
	// Site is the site's name (its surrogate keys start with it).
	Site string
	// BaseURL is the site's base URL (scheme, host and path prefix).
	BaseURL string
	// Paths are URL paths to purge, each starting with "/" and including the base
	// URL's path prefix ("/news/rally/", "/news/rally/index.html").
	Paths []string
	// Keys are surrogate keys to purge (as stored in x-amz-meta-surrogate-key).
	Keys []string
	// All asks for everything of the site (the site key, or a full purge); set by the
	// planner when a change touches most of the site, or by `stump purge --all`.
	All bool
	// Reason says why the planner chose this request (shown to people).
	Reason string
}

// Empty reports a request with nothing to purge.
func (r *Request) Empty() bool { return !r.All && len(r.Paths) == 0 && len(r.Keys) == 0 }

// Report says what one CDN did.
type Report struct {
	CDN   string `json:"cdn"`
	Calls int    `json:"calls"`
	Paths int    `json:"paths"`
	Keys  int    `json:"keys"`
	// Mode is how it purged: "urls", "keys", "prefixes", "wildcards", "site", "all".
	Mode   string `json:"mode"`
	Detail string `json:"detail,omitempty"`
}

// CDN is one adapter. Purge sends r in the fewest calls its API allows, retrying
// throttling and 5xx answers (honouring Retry-After); an error means some of r may not
// have been purged. Credentials never appear in errors or logs.
type CDN interface {
	Name() string
	Purge(ctx context.Context, r *Request) (Report, error)
}
