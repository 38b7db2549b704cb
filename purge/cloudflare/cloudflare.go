// Package cloudflare purges a Cloudflare zone through its API.
//
// One call does it all (https://developers.cloudflare.com/api/resources/cache/methods/purge/):
//
//	POST /client/v4/zones/{zone_id}/purge_cache
//	Authorization: Bearer <token>
//	{"files": [absolute URLs]} | {"tags": [...]} | {"prefixes": ["host/path"]} |
//	{"hosts": [...]} | {"purge_everything": true}
//
// answered {"success": true, "errors": [], "messages": [], "result": {"id": "..."}}.
// One body holds one kind of item. How many items a call may hold depends on the plan
// and the documentation has said different things over time: the single-file page
// gives 30 URLs a call on Free, Pro and Business and 500 on Enterprise, the limits
// table 100 operations a call. PerRequest (site.yaml per_request) defaults to the 30
// that every plan accepts; raise it to what the account's plan documents. Calls are
// rate-limited per account (a token bucket: Free 5 a minute, Pro 5 and Business 10 a
// second); a 429 is retried after its Retry-After.
//
// Modes (site.yaml mode):
//   - files (default): each URL path as an absolute URL on the base URL's host;
//   - tags: the request's surrogate keys as cache tags (the edge must send them as
//     Cache-Tag), plus the added paths as files (a cached 404 carries no tag);
//   - prefixes: each path as a "host/path" prefix; a page's "/dir/" form becomes the
//     prefix "host/dir", which covers "/dir/" and "/dir/index.html" in one item but
//     also anything under /dir/ (the site's root stays a pair of files, or the prefix
//     would be the whole site).
//
// A whole-site purge is the prefix host+base path (tags mode: the site key), and
// purge_everything only with all_zone: true, since other sites may share the zone.
package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stump-dev/stump/purge"
)

// DefaultAPI is the API's base URL.
const DefaultAPI = "https://api.cloudflare.com/client/v4"

// DefaultPerRequest is the items a call holds by default: the documented single-file
// limit of the Free, Pro and Business plans.
const DefaultPerRequest = 30

// MaxPerRequest is the largest documented per-call limit (Enterprise, files).
const MaxPerRequest = 500

// DefaultTokenEnv is the variable the API token is read from by default.
const DefaultTokenEnv = "CLOUDFLARE_API_TOKEN"

// Modes.
const (
	Files    = "files"
	Tags     = "tags"
	Prefixes = "prefixes"
)

// Config sets up the adapter.
type Config struct {
	// Zone is the zone ID.
	Zone string
	// Token is the API token (a Bearer token with Cache Purge permission).
	Token purge.Secret
	// Mode is files (default), tags or prefixes.
	Mode string
	// PerRequest is how many items a call holds (default DefaultPerRequest).
	PerRequest int
	// AllZone lets a whole-site purge purge everything in the zone.
	AllZone bool
	// API is the API's base URL (default DefaultAPI; tests point it at a fake).
	API     string
	Client  *http.Client
	Backoff purge.Backoff
}

// CDN is a Cloudflare zone.
type CDN struct{ cfg Config }

// New checks cfg and returns the adapter.
func New(cfg Config) (*CDN, error) {
	if err := purge.CheckAPI("cloudflare", "zone ID", cfg.Zone, cfg.Token); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = Files
	case Files, Tags, Prefixes:
	default:
		return nil, fmt.Errorf("cloudflare: mode must be files, tags or prefixes, not %q", cfg.Mode)
	}
	if cfg.PerRequest <= 0 {
		cfg.PerRequest = DefaultPerRequest
	}
	if cfg.PerRequest > MaxPerRequest {
		return nil, fmt.Errorf("cloudflare: per_request must be at most %d", MaxPerRequest)
	}
	cfg.API = purge.APIBase(cfg.API, DefaultAPI)
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &CDN{cfg: cfg}, nil
}

// FromSettings builds the adapter from a site.yaml entry:
//
//	cloudflare: { zone: ID, token_env: CLOUDFLARE_API_TOKEN, mode: files, per_request: 30, all_zone: false, api: URL }
func FromSettings(_ context.Context, s *purge.Settings) (purge.CDN, error) {
	var cfg Config
	var err error
	if cfg.Zone, err = s.String("zone", true); err != nil {
		return nil, err
	}
	if cfg.Mode, err = s.OneOf("mode", Files, Tags, Prefixes); err != nil {
		return nil, err
	}
	if cfg.PerRequest, err = s.Int("per_request", DefaultPerRequest, 1, MaxPerRequest); err != nil {
		return nil, err
	}
	if cfg.AllZone, err = s.Bool("all_zone"); err != nil {
		return nil, err
	}
	if cfg.API, cfg.Token, err = s.APISettings(DefaultTokenEnv); err != nil {
		return nil, err
	}
	return New(cfg)
}

// Name is "cloudflare:<zone>".
func (c *CDN) Name() string { return "cloudflare:" + c.cfg.Zone }

// String is the name: printing the adapter never prints its token.
func (c *CDN) String() string { return c.Name() }

// GoString is the name too.
func (c *CDN) GoString() string { return c.Name() }

// body is one purge_cache call's body.
type body struct {
	Files           []string `json:"files,omitempty"`
	Tags            []string `json:"tags,omitempty"`
	Prefixes        []string `json:"prefixes,omitempty"`
	Hosts           []string `json:"hosts,omitempty"`
	PurgeEverything bool     `json:"purge_everything,omitempty"`
}

// plan is the calls Purge sends for r.
func (c *CDN) plan(r *purge.Request) (mode string, calls []body, err error) {
	mode = c.cfg.Mode
	host := r.Host()
	if host == "" {
		return mode, nil, fmt.Errorf("%s: purging needs the site's base URL (with its host)", c.Name())
	}
	batch := func(items []string, mk func([]string) body) {
		for i := 0; i < len(items); i += c.cfg.PerRequest {
			calls = append(calls, mk(items[i:min(i+c.cfg.PerRequest, len(items))]))
		}
	}
	files := func(items []string) body { return body{Files: items} }
	switch {
	case r.All && c.cfg.AllZone:
		mode = "all"
		calls = append(calls, body{PurgeEverything: true})
	case r.All && c.cfg.Mode == Tags:
		mode = "site"
		calls = append(calls, body{Tags: []string{purge.SiteKey(r.Site)}})
	case r.All:
		mode = Prefixes
		calls = append(calls, body{Prefixes: []string{host + r.BasePath()}})
	case c.cfg.Mode == Tags && len(r.Keys) > 0:
		batch(r.Keys, func(s []string) body { return body{Tags: s} })
		batch(c.absolute(r, r.Added), files)
	case c.cfg.Mode == Prefixes:
		pre, fl := c.prefixes(r)
		batch(pre, func(s []string) body { return body{Prefixes: s} })
		batch(c.absolute(r, fl), files)
	default:
		mode = Files
		batch(c.absolute(r, r.Paths), files)
	}
	return mode, calls, nil
}

// Plan returns the calls Purge would send for r, one line each ("POST
// /zones/ID/purge_cache files: 30"), without sending them (for --plan).
func (c *CDN) Plan(r *purge.Request) ([]string, purge.Report, error) {
	mode, calls, err := c.plan(r)
	rep := purge.Report{CDN: c.Name(), Mode: mode, Calls: len(calls)}
	if err != nil {
		return nil, rep, err
	}
	var out []string
	for _, b := range calls {
		line := "POST /zones/" + c.cfg.Zone + "/purge_cache "
		switch {
		case b.PurgeEverything:
			line += "purge_everything"
		case len(b.Tags) > 0:
			line += fmt.Sprintf("tags: %d", len(b.Tags))
		case len(b.Prefixes) > 0:
			line += fmt.Sprintf("prefixes: %d", len(b.Prefixes))
		default:
			line += fmt.Sprintf("files: %d", len(b.Files))
		}
		rep.Paths += len(b.Files) + len(b.Prefixes)
		rep.Keys += len(b.Tags)
		out = append(out, line)
	}
	return out, rep, nil
}

// Purge sends r in as few calls as the per-call limit allows; a failed call does not
// stop the others.
func (c *CDN) Purge(ctx context.Context, r *purge.Request) (purge.Report, error) {
	mode, calls, err := c.plan(r)
	rep := purge.Report{CDN: c.Name(), Mode: mode}
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, b := range calls {
		tries, err := c.call(ctx, b)
		rep.Calls += tries
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Paths += len(b.Files) + len(b.Prefixes)
		rep.Keys += len(b.Tags)
	}
	return rep, errors.Join(errs...)
}

// absolute turns URL paths into absolute URLs on the base URL's scheme and host.
func (c *CDN) absolute(r *purge.Request, paths []string) []string {
	u, _ := url.Parse(r.BaseURL)
	scheme := "https"
	if u != nil && u.Scheme != "" {
		scheme = u.Scheme
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = scheme + "://" + r.Host() + p
	}
	return out
}

// prefixes splits a request's paths into prefixes and files: "/dir/" becomes the
// prefix "host/dir" (its "/dir/index.html" then needs nothing more), other paths their
// own prefix, and the site root stays files.
func (c *CDN) prefixes(r *purge.Request) (prefixes, files []string) {
	host, root := r.Host(), r.BasePath()+"/"
	covered := map[string]bool{}
	for _, p := range r.Paths {
		if strings.HasSuffix(p, "/") && p != root {
			covered[p+"index.html"] = true
		}
	}
	for _, p := range r.Paths {
		switch {
		case p == root || p == root+"index.html":
			files = append(files, p)
		case covered[p]:
		default:
			prefixes = append(prefixes, host+strings.TrimSuffix(p, "/"))
		}
	}
	return prefixes, files
}

// answer is the API's envelope.
type answer struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (c *CDN) call(ctx context.Context, b body) (int, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return 0, err
	}
	res, tries, err := purge.Send(ctx, purge.APICall{
		CDN: c.Name(), Client: c.cfg.Client, Backoff: c.cfg.Backoff, Secret: c.cfg.Token,
		Method: http.MethodPost, URL: c.cfg.API + "/zones/" + c.cfg.Zone + "/purge_cache", Body: data,
		Header: http.Header{"Authorization": {"Bearer " + string(c.cfg.Token)}},
	})
	if err != nil {
		return tries, err
	}
	var a answer
	if err := json.Unmarshal(res, &a); err != nil {
		return tries, fmt.Errorf("%s: purge_cache: unreadable answer: %v", c.Name(), err)
	}
	if !a.Success {
		var msgs []string
		for _, e := range a.Errors {
			msgs = append(msgs, fmt.Sprintf("%d %s", e.Code, e.Message))
		}
		return tries, fmt.Errorf("%s: purge_cache refused: %s", c.Name(), strings.Join(msgs, "; "))
	}
	return tries, nil
}
