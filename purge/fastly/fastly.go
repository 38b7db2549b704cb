// Package fastly purges a Fastly service through its API.
//
// Calls used (https://www.fastly.com/documentation/reference/api/purging/):
//
//	POST /service/{service_id}/purge   bulk purge by surrogate keys, up to 256 keys a
//	                                   call, sent as JSON {"surrogate_keys": [...]}
//	POST /purge/{host}{path}           purge one URL
//
// each with the API token in the Fastly-Key header, and Fastly-Soft-Purge: 1 for a soft
// purge (objects are marked stale, so the edge can still serve them while it refetches).
//
// A request's keys go out in as few bulk calls as the 256-key limit allows. URL purges
// are used only for a request without keys (`stump purge --urls` on a site without
// keys) and for paths the deploy added: a cached 404 carries none of the object's
// surrogate keys, unless the edge tags error responses with the per-URL key (KeysOnly).
// A whole-site purge purges the site key, never purge_all: other sites may share the
// service, and purge_all cannot be soft.
package fastly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/purge"
)

// DefaultAPI is the Fastly API's base URL.
const DefaultAPI = "https://api.fastly.com"

// MaxKeys is the most surrogate keys one bulk purge takes.
const MaxKeys = 256

// DefaultTokenEnv is the variable the API token is read from by default.
const DefaultTokenEnv = "FASTLY_API_TOKEN"

// Config sets up the adapter.
type Config struct {
	// Service is the service ID.
	Service string
	// Token is the API token (sent as Fastly-Key; never printed).
	Token purge.Secret
	// Soft marks objects stale instead of removing them.
	Soft bool
	// KeysOnly skips the URL purges of added paths: set it when the edge tags error
	// responses (a cached 404) with the per-URL surrogate key.
	KeysOnly bool
	// API is the API's base URL (default DefaultAPI; tests point it at a fake).
	API string
	// Client sends the calls (default http.DefaultClient).
	Client *http.Client
	// Backoff retries 429 and 5xx answers.
	Backoff purge.Backoff
	// Workers bounds URL purges sent at once (default 8).
	Workers int
}

// CDN is a Fastly service.
type CDN struct{ cfg Config }

// New checks cfg and returns the adapter.
func New(cfg Config) (*CDN, error) {
	if err := purge.CheckAPI("fastly", "service ID", cfg.Service, cfg.Token); err != nil {
		return nil, err
	}
	cfg.API = purge.APIBase(cfg.API, DefaultAPI)
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &CDN{cfg: cfg}, nil
}

// FromSettings builds the adapter from a site.yaml entry:
//
//	fastly: { service: ID, token_env: FASTLY_API_TOKEN, soft: true, keys_only: false, api: URL }
func FromSettings(_ context.Context, s *purge.Settings) (purge.CDN, error) {
	var cfg Config
	var err error
	if cfg.Service, err = s.String("service", true); err != nil {
		return nil, err
	}
	if cfg.Soft, err = s.Bool("soft"); err != nil {
		return nil, err
	}
	if cfg.KeysOnly, err = s.Bool("keys_only"); err != nil {
		return nil, err
	}
	if cfg.API, cfg.Token, err = s.APISettings(DefaultTokenEnv); err != nil {
		return nil, err
	}
	return New(cfg)
}

// Name is "fastly:<service>".
func (c *CDN) Name() string { return "fastly:" + c.cfg.Service }

// String is the name: printing the adapter never prints its token.
func (c *CDN) String() string { return c.Name() }

// GoString is the name too.
func (c *CDN) GoString() string { return c.Name() }

// call is one API call.
type call struct {
	path string
	body []byte // nil for a URL purge
	keys int
}

// plan is what Purge sends for r.
func (c *CDN) plan(r *purge.Request) (mode string, calls []call, err error) {
	var keys, urls []string
	switch {
	case r.All:
		keys = []string{purge.SiteKey(r.Site)}
		mode = "site"
	case len(r.Keys) > 0:
		keys = r.Keys
		mode = "keys"
		if !c.cfg.KeysOnly && len(r.Added) > 0 {
			urls = r.Added
			mode = "keys+urls"
		}
	default:
		urls = r.Paths
		mode = "urls"
	}
	for i := 0; i < len(keys); i += MaxKeys {
		batch := keys[i:min(i+MaxKeys, len(keys))]
		body, err := json.Marshal(map[string][]string{"surrogate_keys": batch})
		if err != nil {
			return "", nil, err
		}
		calls = append(calls, call{path: "/service/" + c.cfg.Service + "/purge", body: body, keys: len(batch)})
	}
	if len(urls) > 0 {
		host := r.Host()
		if host == "" {
			return "", nil, fmt.Errorf("%s: purging URLs needs the site's base URL (with its host)", c.Name())
		}
		for _, u := range urls {
			calls = append(calls, call{path: "/purge/" + host + u})
		}
	}
	return mode, calls, nil
}

// Plan returns the calls Purge would send for r, one line each ("POST /service/ID/purge
// (256 keys)", "POST /purge/host/path"), without sending them (for --plan).
func (c *CDN) Plan(r *purge.Request) ([]string, purge.Report, error) {
	mode, calls, err := c.plan(r)
	rep := purge.Report{CDN: c.Name(), Mode: mode}
	if err != nil {
		return nil, rep, err
	}
	var out []string
	for _, cl := range calls {
		line := "POST " + cl.path
		if cl.body != nil {
			line += fmt.Sprintf(" (%d keys)", cl.keys)
			rep.Keys += cl.keys
		} else {
			rep.Paths++
		}
		if c.cfg.Soft {
			line += " [Fastly-Soft-Purge: 1]"
		}
		out = append(out, line)
	}
	rep.Calls = len(calls)
	return out, rep, nil
}

// Purge sends r: its keys in bulk calls (the site key for All), else its URLs one by
// one; see the package doc. A failed call does not stop the others.
func (c *CDN) Purge(ctx context.Context, r *purge.Request) (purge.Report, error) {
	mode, calls, err := c.plan(r)
	rep := purge.Report{CDN: c.Name(), Mode: mode}
	if err != nil {
		return rep, err
	}
	if c.cfg.Soft {
		rep.Detail = "soft purge"
	}
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	g.SetLimit(c.cfg.Workers)
	for _, cl := range calls {
		g.Go(func() error {
			tries, err := c.send(ctx, cl)
			mu.Lock()
			defer mu.Unlock()
			rep.Calls += tries
			switch {
			case err != nil:
				errs = append(errs, err)
			case cl.body != nil:
				rep.Keys += cl.keys
			default:
				rep.Paths++
			}
			return nil
		})
	}
	_ = g.Wait()
	return rep, errors.Join(errs...)
}

func (c *CDN) send(ctx context.Context, cl call) (int, error) {
	h := http.Header{}
	h.Set("Fastly-Key", string(c.cfg.Token))
	h.Set("Accept", "application/json")
	if c.cfg.Soft {
		h.Set("Fastly-Soft-Purge", "1")
	}
	_, tries, err := purge.Send(ctx, purge.APICall{
		CDN: c.Name(), Client: c.cfg.Client, Backoff: c.cfg.Backoff, Secret: c.cfg.Token,
		Method: http.MethodPost, URL: c.cfg.API + cl.path, Body: cl.body, Header: h,
	})
	return tries, err
}
