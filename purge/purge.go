// Package purge turns what a deploy changed into the fewest CDN purge calls. The planner
// (Plan) derives, from the live and the new deploy's objects, the URLs and surrogate keys
// to purge: changed, added (an edge may hold a cached 404) and deleted paths, in both
// "/dir/" and "/dir/index.html" forms; nothing unchanged. Each CDN adapter (subpackages
// varnish, fastly, cloudfront, cloudflare) implements CDN and sends a Request in as few
// API calls as its limits allow. Purger runs several CDNs concurrently for publish; what
// fails after retries comes back as pending work, which publish records and the next
// publish or `stump purge --pending` retries (Purger.Retry, MergePending).
//
// FromConfig builds the adapters from a site's `cdn:` list; the adapters import this
// package, so they are linked in by importing purge/cdns. Package purge/cdntest has fake
// Fastly, CloudFront and Cloudflare APIs that check every call against the documented
// contract.
package purge

import (
	"context"
)

// Request is what one purge must make fresh at the edge. It holds both a URL plan
// (Paths) and a key plan (Keys) for the same change, so that each adapter picks what its
// API does best. Requests are stored as pending work in JSON.
type Request struct {
	// Site is the site's name (its surrogate keys start with it).
	Site string `json:"site"`
	// BaseURL is the site's base URL (scheme, host and path prefix).
	BaseURL string `json:"baseURL,omitempty"`
	// Paths are URL paths to purge, each starting with "/" and including the base
	// URL's path prefix ("/news/rally/", "/news/rally/index.html"), URL-escaped.
	Paths []string `json:"paths,omitempty"`
	// Added are the paths of Paths that the previous deploy did not have. The edge may
	// hold a cached 404 for them, and an error response carries none of the object's
	// surrogate keys, so key-based adapters purge these by URL as well.
	Added []string `json:"added,omitempty"`
	// Keys are surrogate keys to purge (as stored in x-amz-meta-surrogate-key).
	Keys []string `json:"keys,omitempty"`
	// All asks for everything of the site (the site key, or a full purge); set by the
	// planner when a change touches most of the site, or by `stump purge --all`.
	All bool `json:"all,omitempty"`
	// Reason says why the planner chose this request (shown to people).
	Reason string `json:"reason,omitempty"`
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
	// Error is set by Purger when the CDN failed (the adapter's error, which never
	// holds a credential).
	Error string `json:"error,omitempty"`
}

// CDN is one adapter. Purge sends r in the fewest calls its API allows, retrying
// throttling and 5xx answers (honouring Retry-After); an error means some of r may not
// have been purged. Credentials never appear in errors or logs.
type CDN interface {
	Name() string
	Purge(ctx context.Context, r *Request) (Report, error)
}

// Previewer is a CDN that can tell what Purge would send for a request without sending
// it, as lines like "POST /service/ID/purge (256 keys)" and the report it would give
// (`stump purge --plan`). Every adapter of stump implements it.
type Previewer interface {
	CDN
	Plan(r *Request) (calls []string, rep Report, err error)
}
