package edge

import (
	"fmt"
	"time"

	"github.com/stump-dev/stump/build/config"
)

// Plan is the neutral model of a workspace's edge: the sites' routes, origins, cache
// rules and defenses, checked once and rendered by each dialect's writer (Varnish's
// VCL here, Fastly's in package edge/fastly). A writer may refuse what its platform
// cannot do (Varnish: a country block without trusted proxies to believe the country
// from), but never changes what a setting means.
type Plan struct {
	// Sites in the order they were given (the first matching route wins).
	Sites []*Site
	// Backends, one per site (its origin and health probe), in the sites' order.
	Backends []*Backend
	// Purgers and Trusted are the union of every site's edge.purgers and
	// edge.trusted_proxies, as ACL entries ("10.0.0.5", "10.0.0.0/8").
	Purgers, Trusted []string
}

// Header is one response header; an empty Value removes it.
type Header struct{ Name, Value string }

// HeaderRule sets Values on the files whose path Match (a PCRE) matches.
type HeaderRule struct {
	Match  string   // over the requested file path ("/news/index.html")
	Values []Header // "" value: unset
}

// Redirect answers Status with Location To for a URL Match (a PCRE over the path and
// query) matches.
type Redirect struct {
	Match, To, Reason string
	Status            int
}

// Probe is a backend's health check (a GET of URL with the origin's Host).
type Probe struct {
	URL               string
	Interval, Timeout time.Duration
	Window, Threshold int
}

// Backend is a site's origin: an S3 website endpoint over plain HTTP.
type Backend struct {
	Name, Host, Port string
	Probe            *Probe // nil: no health check
	OriginHost       string // Host header of the probe
}

// RateLimit allows Requests per Per for each client address.
type RateLimit struct {
	Requests int
	Per      time.Duration
	Misses   bool // count only cache misses
}

// QueryRule keeps Params on the paths Match matches.
type QueryRule struct {
	Match  string // over the URL path ("/search/")
	Params []string
}

// Fastly is a site's Fastly service (edge.fastly in site.yaml).
type Fastly struct {
	ServiceID string
	Shield    string // a shield POP code ("" for none)
}

// Site is one site's edge settings, checked and ready to render.
type Site struct {
	Name        string
	File        string // the site.yaml the settings came from, for errors
	Index       int
	Host        string
	Aliases     []string
	PreviewHost string
	Atomic      bool
	Prefix      string // "" or "/a/b"
	Backend     *Backend
	OriginHost  string
	NotFound    string
	NotFoundTTL time.Duration
	Grace       time.Duration
	Query       []QueryRule

	PurgeTokenEnv  string
	PurgeListener  string
	PreviewAuthEnv string
	Headers        []Header
	Rules          []HeaderRule
	Redirects      []Redirect
	MetaHeaders    []string // x-amz-meta-header-<name> names publish may store

	WordPress     bool
	Trusted       bool   // edge.trusted_proxies is set
	GeoHeader     string // where Varnish reads the country (Fastly: client.geo)
	Countries     []string
	Rate          *RateLimit
	BlockedStatus int
	BlockedReason string
	BlockedBody   string

	Fastly *Fastly // nil: not on Fastly
}

// NewPlan checks the edge settings of the sites that have an edge: section in
// site.yaml (the others are left out; ws resolves target names and may be nil). A
// broken setting is an error naming the site's file.
func NewPlan(ws *config.Workspace, sites ...*config.Loaded) (*Plan, error) {
	p := &Plan{}
	hosts := map[string]string{}
	seenPurger, seenTrusted := map[string]bool{}, map[string]bool{}
	for _, cfg := range sites {
		if cfg == nil || cfg.Edge == nil {
			continue
		}
		s, err := check(ws, cfg, len(p.Sites), &p.Backends)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", shown(cfg), err)
		}
		for _, h := range append([]string{s.Host, s.PreviewHost}, s.Aliases...) {
			if h == "" {
				continue
			}
			if other, ok := hosts[h]; ok {
				return nil, fmt.Errorf("%s: host %s is already the host of site %s", shown(cfg), h, other)
			}
			hosts[h] = s.Name
		}
		for _, e := range cfg.Edge.Purgers {
			acl, err := aclEntry(e)
			if err != nil {
				return nil, fmt.Errorf("%s: edge.purgers: %w", shown(cfg), err)
			}
			if !seenPurger[acl] {
				seenPurger[acl] = true
				p.Purgers = append(p.Purgers, acl)
			}
		}
		for _, e := range cfg.Edge.TrustedProxies {
			acl, err := aclEntry(e)
			if err != nil {
				return nil, fmt.Errorf("%s: edge.trusted_proxies: %w", shown(cfg), err)
			}
			if !seenTrusted[acl] {
				seenTrusted[acl] = true
				p.Trusted = append(p.Trusted, acl)
			}
		}
		p.Sites = append(p.Sites, s)
	}
	return p, nil
}
