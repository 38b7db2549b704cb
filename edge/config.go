// Package edge generates the Varnish configuration (VCL 4.1, with the xkey and
// vsthrottle VMODs of varnish-modules) that routes every site of a workspace by Host to
// its S3 website origin, caches it with grace, purges it the way package purge/varnish
// asks, resolves atomic deploys and previews, and defends the sites (docs/edge.md).
package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stump-dev/stump/build/config"
)

// DefaultHeaders are the security headers every response gets unless edge.headers in
// site.yaml changes them (an empty value removes one).
var DefaultHeaders = map[string]string{
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
	"Content-Security-Policy":   "default-src 'self'",
	"X-Frame-Options":           "DENY",
	"Referrer-Policy":           "strict-origin-when-cross-origin",
	"Permissions-Policy":        "interest-cohort=()",
	"X-Content-Type-Options":    "nosniff",
}

// Defaults of the edge settings.
const (
	DefaultGrace         = 24 * time.Hour
	DefaultNotFound      = "/404.html"
	DefaultBlockedStatus = 403
	DefaultBlockedBody   = "Forbidden\n"
	DefaultGeoHeader     = "X-Country"
	DefaultNotFoundTTL   = 60 * time.Second
	// DefaultPurgeTokenEnv names the environment variable that holds the purge token,
	// for varnishd (std.getenv) and for stump (package purge/varnish).
	DefaultPurgeTokenEnv = "STUMP_PURGE_TOKEN"
	// MinPurgeTokenLen is the shortest purge token the VCL accepts: with a shorter one
	// (or none) in varnishd's environment, every purge is refused.
	MinPurgeTokenLen = 16
)

// DeployIDPattern is what a deploy id looks like (publish names them so: lower case,
// to be a DNS label); a preview label that does not match never reaches the origin.
const DeployIDPattern = `^[0-9]{8}t[0-9]{6}z-[0-9a-f]{6}$`

var (
	hostRE         = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	headerNameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	siteNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	countryRE      = regexp.MustCompile(`^[A-Za-z]{2}$`)
	urlPathRE      = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	listenerRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	fastlyIDRE     = regexp.MustCompile(`^[A-Za-z0-9]{8,64}$`)
	fastlyShieldRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	paramRE        = regexp.MustCompile(`^[A-Za-z0-9_.~\[\]-]+$`)
)

// target is what the edge needs of a site's publish target.
type target struct{ Bucket, Prefix string }

// parseTarget reads a site's target (a URL or a name in stump.yaml's targets) without
// importing package publish: only the bucket and prefix of an s3:// target matter.
func parseTarget(ws *config.Workspace, raw string) (target, error) {
	if ws != nil {
		if u, ok := ws.Targets[raw]; ok {
			raw = u
		}
	}
	if raw == "" {
		return target{}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("target does not parse as a URL")
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return target{}, fmt.Errorf("target s3:// names no bucket")
		}
		p := strings.Trim(u.Path, "/")
		if p != "" {
			p = "/" + p
		}
		if !urlPathRE.MatchString(p+"/") || strings.Contains(p, `"`) {
			return target{}, fmt.Errorf("target prefix %q has characters the edge cannot put in a URL", p)
		}
		return target{Bucket: u.Host, Prefix: p}, nil
	case "file":
		return target{}, nil
	}
	return target{}, fmt.Errorf("target %q is neither s3:// nor file://", u.Scheme+"://")
}

func parseDur(what, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a duration like 10s, 5m or 24h", what, s)
	}
	return d, nil
}

// check turns one site's config into a site, or says what is wrong with it.
func check(ws *config.Workspace, cfg *config.Loaded, n int, order *[]*Backend) (*Site, error) {
	e := cfg.Edge
	if !siteNameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("site name %q cannot name surrogate keys", cfg.Name)
	}
	s := &Site{Name: cfg.Name, Index: n, Atomic: cfg.Deploy.Mode == "atomic", File: shown(cfg), Trusted: len(e.TrustedProxies) > 0}

	// Host names.
	s.Host = strings.ToLower(strings.TrimSpace(e.Host))
	if s.Host == "" && cfg.Base != nil {
		s.Host = strings.ToLower(cfg.Base.Hostname())
	}
	if s.Host == "" {
		return nil, fmt.Errorf("edge.host is not set and baseURL has no host: set edge.host to the site's public host name")
	}
	if !hostRE.MatchString(s.Host) {
		return nil, fmt.Errorf("edge.host %q is not a host name", s.Host)
	}
	for _, a := range e.Aliases {
		a = strings.ToLower(strings.TrimSpace(a))
		if !hostRE.MatchString(a) {
			return nil, fmt.Errorf("edge.aliases: %q is not a host name", a)
		}
		s.Aliases = append(s.Aliases, a)
	}
	if e.PreviewHost != "" {
		s.PreviewHost = strings.ToLower(strings.TrimSpace(e.PreviewHost))
		if !hostRE.MatchString(s.PreviewHost) {
			return nil, fmt.Errorf("edge.preview_host %q is not a host name", e.PreviewHost)
		}
	}

	// Origin.
	if strings.TrimSpace(e.Origin) == "" {
		return nil, fmt.Errorf("edge.origin is missing: set it to the S3 website endpoint, http://host:port")
	}
	ou, err := url.Parse(e.Origin)
	if err != nil || ou.Scheme != "http" || ou.Hostname() == "" || (ou.Path != "" && ou.Path != "/") || ou.User != nil || ou.RawQuery != "" {
		return nil, fmt.Errorf("edge.origin %q is not http://host:port (Varnish fetches over plain HTTP; put TLS in front of it, not behind)", e.Origin)
	}
	port := ou.Port()
	if port == "" {
		port = "80"
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("edge.origin %q has no valid port", e.Origin)
	}
	oh := strings.ToLower(ou.Hostname())
	if net.ParseIP(oh) == nil && !hostRE.MatchString(oh) {
		return nil, fmt.Errorf("edge.origin %q: %q is not a host name or address", e.Origin, oh)
	}
	t, err := parseTarget(ws, cfg.Target)
	if err != nil {
		return nil, err
	}
	s.Prefix = t.Prefix
	switch {
	case e.OriginHost != "":
		s.OriginHost = strings.ToLower(e.OriginHost)
	case e.WebsiteDomain != "" && t.Bucket != "":
		s.OriginHost = strings.ToLower(t.Bucket + "." + e.WebsiteDomain)
	case e.WebsiteDomain != "":
		return nil, fmt.Errorf("edge.website_domain needs an s3:// target to name the bucket; set edge.origin_host instead")
	case net.ParseIP(oh) == nil:
		s.OriginHost = oh
	default:
		return nil, fmt.Errorf("edge.origin %q is an address: set edge.origin_host (BUCKET.s3-website-REGION.amazonaws.com) or edge.website_domain", e.Origin)
	}
	if !hostRE.MatchString(s.OriginHost) {
		return nil, fmt.Errorf("edge origin host %q is not a host name", s.OriginHost)
	}

	// Probe.
	var pr *Probe
	if !e.Probe.Disabled {
		pr = &Probe{URL: e.Probe.URL, Window: e.Probe.Window, Threshold: e.Probe.Threshold}
		if pr.URL == "" {
			pr.URL = s.Prefix + "/"
			if s.Atomic {
				pr.URL = s.Prefix + "/_stump/live"
			}
		}
		if !urlPathRE.MatchString(pr.URL) {
			return nil, fmt.Errorf("edge.probe.url %q is not a URL path", pr.URL)
		}
		if pr.Interval, err = parseDur("edge.probe.interval", e.Probe.Interval, 5*time.Second); err != nil {
			return nil, err
		}
		if pr.Timeout, err = parseDur("edge.probe.timeout", e.Probe.Timeout, 2*time.Second); err != nil {
			return nil, err
		}
		if pr.Window == 0 {
			pr.Window = 5
		}
		if pr.Threshold == 0 {
			pr.Threshold = 3
		}
		if pr.Window < 1 || pr.Window > 64 || pr.Threshold < 1 || pr.Threshold > pr.Window {
			return nil, fmt.Errorf("edge.probe: window must be 1-64 and threshold 1-window (got %d and %d)", pr.Window, pr.Threshold)
		}
	}
	// One backend, and probe, per site, even when sites share an origin: one site's
	// failing probe (its missing _stump/live) must not take the others down.
	b := &Backend{Name: fmt.Sprintf("origin_%d", len(*order)), Host: oh, Port: port, Probe: pr, OriginHost: s.OriginHost}
	*order = append(*order, b)
	s.Backend = b

	// Fastly.
	if f := e.Fastly; f != nil {
		if !fastlyIDRE.MatchString(f.ServiceID) {
			return nil, fmt.Errorf("edge.fastly.service_id %q is not a Fastly service ID (letters and digits, as the Fastly UI shows it)", f.ServiceID)
		}
		if f.Shield != "" && !fastlyShieldRE.MatchString(f.Shield) {
			return nil, fmt.Errorf("edge.fastly.shield %q is not a shield POP code like iad-va-us", f.Shield)
		}
		s.Fastly = &Fastly{ServiceID: f.ServiceID, Shield: f.Shield}
	}

	// Caching and pages.
	if s.Grace, err = parseDur("edge.grace", e.Grace, DefaultGrace); err != nil {
		return nil, err
	}
	s.NotFound = e.NotFound
	if s.NotFound == "" {
		s.NotFound = DefaultNotFound
	}
	if !urlPathRE.MatchString(s.NotFound) || strings.Contains(s.NotFound, "_stump") {
		return nil, fmt.Errorf("edge.not_found %q is not a URL path like /404.html", e.NotFound)
	}
	if s.NotFoundTTL, err = parseDur("edge.not_found_ttl", e.NotFoundTTL, DefaultNotFoundTTL); err != nil {
		return nil, err
	}
	if s.NotFoundTTL < time.Second {
		return nil, fmt.Errorf("edge.not_found_ttl %q is under 1s: missing pages would reach the origin on every request", e.NotFoundTTL)
	}

	// Query strings: none but the allowlisted parameters.
	for i, q := range e.Query {
		re, err := globRegex(q.Path)
		if err != nil {
			return nil, fmt.Errorf("edge.query[%d]: path %q: %v", i, q.Path, err)
		}
		if len(q.Params) == 0 {
			return nil, fmt.Errorf("edge.query[%d]: no params: list the parameter names the pages under %q read", i, q.Path)
		}
		qr := QueryRule{Match: re}
		for _, p := range q.Params {
			if !paramRE.MatchString(p) {
				return nil, fmt.Errorf("edge.query[%d]: %q is not a query parameter name", i, p)
			}
			qr.Params = append(qr.Params, p)
		}
		s.Query = append(s.Query, qr)
	}

	// Purges and previews.
	s.PurgeTokenEnv = e.PurgeTokenEnv
	if s.PurgeTokenEnv == "" {
		s.PurgeTokenEnv = DefaultPurgeTokenEnv
	}
	if !envNameRE.MatchString(s.PurgeTokenEnv) {
		return nil, fmt.Errorf("edge.purge_token_env %q is not an environment variable name", e.PurgeTokenEnv)
	}
	if e.PurgeListener != "" && !listenerRE.MatchString(e.PurgeListener) {
		return nil, fmt.Errorf("edge.purge_listener %q is not a listener name (varnishd -a NAME=ADDRESS)", e.PurgeListener)
	}
	s.PurgeListener = e.PurgeListener
	if e.PreviewAuthEnv != "" {
		if !envNameRE.MatchString(e.PreviewAuthEnv) {
			return nil, fmt.Errorf("edge.preview_auth_env %q is not an environment variable name", e.PreviewAuthEnv)
		}
		if s.PreviewHost == "" {
			return nil, fmt.Errorf("edge.preview_auth_env is set but edge.preview_host is not")
		}
		s.PreviewAuthEnv = e.PreviewAuthEnv
	}

	// Headers.
	hs := map[string]string{}
	for k, v := range DefaultHeaders {
		hs[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range e.Headers {
		if !headerNameRE.MatchString(k) {
			return nil, fmt.Errorf("edge.headers: %q is not a header name", k)
		}
		if err := checkValue("edge.headers."+k, v); err != nil {
			return nil, err
		}
		hs[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range hs {
		if v != "" {
			s.Headers = append(s.Headers, Header{k, v})
		}
	}
	sort.Slice(s.Headers, func(i, j int) bool { return s.Headers[i].Name < s.Headers[j].Name })
	meta := map[string]bool{}
	for i, r := range cfg.Headers {
		re, err := globRegex(r.Path)
		if err != nil {
			return nil, fmt.Errorf("headers[%d]: path %q: %v", i, r.Path, err)
		}
		hr := HeaderRule{Match: re}
		names := make([]string, 0, len(r.Values))
		for k := range r.Values {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			switch strings.ToLower(k) {
			case "cache-control", "content-type":
				continue // publish stores these on the object
			}
			if !headerNameRE.MatchString(k) {
				return nil, fmt.Errorf("headers[%d]: %q is not a header name", i, k)
			}
			if err := checkValue(fmt.Sprintf("headers[%d].values.%s", i, k), r.Values[k]); err != nil {
				return nil, err
			}
			hr.Values = append(hr.Values, Header{http.CanonicalHeaderKey(k), r.Values[k]})
			meta[strings.ToLower(k)] = true
		}
		if len(hr.Values) > 0 {
			s.Rules = append(s.Rules, hr)
		}
	}
	for k := range meta {
		s.MetaHeaders = append(s.MetaHeaders, k)
	}
	sort.Strings(s.MetaHeaders)

	// Redirects.
	for i, r := range cfg.Redirects {
		if !urlPathRE.MatchString(r.From) {
			return nil, fmt.Errorf("redirects[%d]: from %q is not a URL path", i, r.From)
		}
		if err := checkValue(fmt.Sprintf("redirects[%d].to", i), r.To); err != nil || r.To == "" || strings.ContainsAny(r.To, " \t") {
			return nil, fmt.Errorf("redirects[%d]: to %q is not a URL", i, r.To)
		}
		st := r.Status
		if st == 0 {
			st = 301
		}
		s.Redirects = append(s.Redirects, Redirect{
			Match: "^" + regexp.QuoteMeta(r.From) + `(\?.*)?$`, To: r.To, Status: st, Reason: http.StatusText(st)})
	}

	// Defenses.
	d := e.Defenses
	s.WordPress = d.WordPress == nil || *d.WordPress
	if len(d.BlockedCountries) > 0 {
		s.GeoHeader = d.GeoHeader
		if s.GeoHeader == "" {
			s.GeoHeader = DefaultGeoHeader
		}
		if !headerNameRE.MatchString(s.GeoHeader) {
			return nil, fmt.Errorf("edge.defenses.geo_header %q is not a header name", d.GeoHeader)
		}
		for _, c := range d.BlockedCountries {
			if !countryRE.MatchString(c) {
				return nil, fmt.Errorf("edge.defenses.blocked_countries: %q is not a two-letter ISO 3166 country code like RU", c)
			}
			s.Countries = append(s.Countries, strings.ToUpper(c))
		}
	} else if d.GeoHeader != "" && !headerNameRE.MatchString(d.GeoHeader) {
		return nil, fmt.Errorf("edge.defenses.geo_header %q is not a header name", d.GeoHeader)
	}
	if d.RateLimit != nil {
		if d.RateLimit.Requests <= 0 {
			return nil, fmt.Errorf("edge.defenses.rate_limit.requests must be a positive number of requests, not %d", d.RateLimit.Requests)
		}
		per, err := parseDur("edge.defenses.rate_limit.per", d.RateLimit.Per, 0)
		if err != nil || per == 0 {
			return nil, fmt.Errorf("edge.defenses.rate_limit.per %q is not a duration like 10s", d.RateLimit.Per)
		}
		s.Rate = &RateLimit{Requests: d.RateLimit.Requests, Per: per}
		switch d.RateLimit.Count {
		case "", "misses":
			s.Rate.Misses = true
		case "all":
		default:
			return nil, fmt.Errorf("edge.defenses.rate_limit.count %q is neither misses (the default) nor all", d.RateLimit.Count)
		}
	}
	if d.TrustXFF {
		return nil, fmt.Errorf("edge.defenses.trust_xff is gone (it believed the first X-Forwarded-For hop, which the client writes): list the proxies in front of Varnish in edge.trusted_proxies instead")
	}
	s.BlockedStatus = d.BlockedStatus
	if s.BlockedStatus == 0 {
		s.BlockedStatus = DefaultBlockedStatus
	}
	if s.BlockedStatus < 200 || s.BlockedStatus > 599 || http.StatusText(s.BlockedStatus) == "" ||
		(s.BlockedStatus >= 300 && s.BlockedStatus < 400) {
		return nil, fmt.Errorf("edge.defenses.blocked_status %d is not an HTTP status for a refusal (like 403, 404 or 429)", d.BlockedStatus)
	}
	s.BlockedReason = http.StatusText(s.BlockedStatus)
	s.BlockedBody = d.BlockedBody
	if s.BlockedBody == "" {
		s.BlockedBody = DefaultBlockedBody
	}
	if strings.Contains(s.BlockedBody, `"}`) {
		return nil, fmt.Errorf(`edge.defenses.blocked_body may not contain "}`)
	}
	return s, nil
}

// checkValue refuses a header value VCL cannot hold or HTTP cannot carry.
func checkValue(what, v string) error {
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%s: the value has control characters", what)
		}
	}
	if strings.Contains(v, `"}`) {
		return fmt.Errorf(`%s: the value may not contain "}`, what)
	}
	return nil
}

// globRegex turns a site.yaml path glob (as package publish matches them: "*.pdf"
// matches base names, "downloads/**" any depth, "*" and "?" within a segment) into a
// PCRE over the requested file path ("/downloads/a/b.pdf", "/news/index.html").
func globRegex(glob string) (string, error) {
	g := strings.TrimPrefix(glob, "/")
	if g == "" {
		return "", fmt.Errorf("an empty glob")
	}
	if _, err := path.Match(g, ""); err != nil {
		return "", fmt.Errorf("not a valid glob (%v)", err)
	}
	if strings.ContainsAny(g, "\"\n\r") {
		return "", fmt.Errorf("quotes and line breaks cannot be in a glob")
	}
	if !strings.Contains(g, "/") {
		seg, err := segRegex(g)
		if err != nil {
			return "", err
		}
		return "/" + seg + "$", nil
	}
	segs := strings.Split(g, "/")
	var b strings.Builder
	b.WriteString("^/")
	for i, sg := range segs {
		last := i == len(segs)-1
		if sg == "**" {
			if last {
				b.WriteString(".*")
			} else {
				b.WriteString("([^/]+/)*")
			}
			continue
		}
		if sg == "" {
			return "", fmt.Errorf("an empty path segment")
		}
		r, err := segRegex(sg)
		if err != nil {
			return "", err
		}
		b.WriteString(r)
		if !last {
			b.WriteString("/")
		}
	}
	b.WriteString("$")
	return b.String(), nil
}

// segRegex converts one glob segment.
func segRegex(g string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 >= len(g) {
				return "", fmt.Errorf("a trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(g[i])))
		case '[':
			j := strings.IndexByte(g[i+1:], ']')
			if j < 0 {
				return "", fmt.Errorf("an unclosed [")
			}
			class := g[i+1 : i+1+j]
			neg := strings.HasPrefix(class, "^")
			if neg {
				class = class[1:]
			}
			var cb strings.Builder
			cb.WriteString("[")
			if neg {
				cb.WriteString("^/")
			}
			for k := 0; k < len(class); k++ {
				ch := class[k]
				switch ch {
				case '\\':
					if k+1 < len(class) {
						k++
						cb.WriteString(`\` + string(class[k]))
					}
				case '-':
					cb.WriteByte('-')
				case ']', '[', '^':
					cb.WriteString(`\` + string(ch))
				default:
					if (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') {
						cb.WriteByte(ch)
					} else {
						cb.WriteString(`\` + string(ch))
					}
				}
			}
			cb.WriteString("]")
			b.WriteString(cb.String())
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String(), nil
}

// vclStr quotes s as a VCL string: "s", or {"s"} when s holds a double quote or a line
// break.
func vclStr(s string) string {
	if !strings.ContainsAny(s, "\"\n\r") {
		return `"` + s + `"`
	}
	return `{"` + s + `"}`
}

func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}
