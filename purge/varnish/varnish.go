// Package varnish purges Varnish caches: a purge.CDN over HTTP, for the recommended VCL
// (stump.vcl, see VCL and docs/varnish.md) or any VCL that answers the same requests.
//
// Three modes, each the fewest requests its method allows:
//
//   - "xkey" (the default): PURGE / with an xkey-purge header (xkey-softpurge when Soft)
//     naming many surrogate keys, split so that no header exceeds MaxHeaderBytes. Paths
//     of the request become their URL keys (<site>:url:<path>, "index.html" dropped), so
//     one key covers both "/dir/" and "/dir/index.html", and a cached 404 too (the VCL
//     tags it with the URL's key). All purges the site key.
//   - "purge": one PURGE per URL (the only way HTTP PURGE works). URL keys become their
//     paths; other keys cannot be expressed and are reported as skipped. All, or the
//     site key, sends one BAN of everything of the Host.
//   - "ban": BAN / with an X-Ban-Url regex covering many paths ("/dir/" and
//     "/dir/index.html" as one alternative), split under MaxHeaderBytes. All is one BAN
//     of ".".
//
// Every request goes to every endpoint (a fleet of Varnish servers), the endpoints in
// parallel. Connection errors, 5xx and 429 answers are retried with bounded exponential
// backoff (honouring Retry-After); other answers fail at once with a sentence that says
// what to fix. The Host header is the site's (Config.Host, else the host of the
// request's base URL): Varnish hashes objects by Host and URL.
//
// Every request carries the purge token (Config.Token, from the environment variable
// STUMP_PURGE_TOKEN unless site.yaml names another) in X-Purge-Token: the VCL stump edge
// generates refuses purges without it (docs/edge.md).
package varnish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stump-dev/stump/purge"
)

// Modes.
const (
	ModeXkey  = "xkey"
	ModePurge = "purge"
	ModeBan   = "ban"
)

// Defaults.
const (
	// DefaultMaxHeaderBytes bounds an xkey-purge or X-Ban-Url value. Varnish refuses a
	// request header line over http_req_hdr_len (8 KiB by default); the rest is room
	// for the header's name and the other headers.
	DefaultMaxHeaderBytes = 7 * 1024
	defaultParallel       = 8
	defaultAttempts       = 4
	defaultBaseDelay      = 200 * time.Millisecond
	defaultMaxDelay       = 5 * time.Second

	// DefaultTokenEnv is the environment variable the purge token is read from.
	DefaultTokenEnv = "STUMP_PURGE_TOKEN"
	// TokenHeader carries the purge token.
	TokenHeader = "X-Purge-Token"
)

// Config sets up the adapter (site.yaml: cdn: - varnish: {endpoints, mode, host, soft}).
type Config struct {
	// Endpoints are the base URLs of the Varnish servers, like http://127.0.0.1:6081.
	// Each gets every request.
	Endpoints []string
	// Mode is "xkey" (default), "purge" or "ban"; see the package doc.
	Mode string
	// Host is the Host header to send: the site's host, as visitors send it. "" takes
	// the host of the request's base URL.
	Host string
	// Soft marks objects stale instead of removing them (xkey.softpurge, purge.soft):
	// the origin is spared, but the first visitor after the purge may get the old copy
	// while Varnish fetches the new one. Bans are always hard.
	Soft bool

	// Token is sent in X-Purge-Token with every request ("" sends none). It is a
	// secret: never shown by Plan, reports or errors.
	Token string

	// AddedByURL also PURGEs, in xkey mode, each URL the deploy added (Request.Added):
	// set it when the VCL does not tag a cached 404 with its URL's key, as the
	// recommended one does.
	AddedByURL bool

	// MaxHeaderBytes bounds one xkey-purge or X-Ban-Url value (DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// Parallel bounds the requests in flight to one endpoint (default 8).
	Parallel int
	// Backoff retries connection errors, 5xx and 429 answers (default here: 4 tries,
	// 200ms doubling up to 5s; a Retry-After up to Max is honoured, a longer one fails
	// the purge, which is then left pending).
	Backoff purge.Backoff
	// HTTPClient sends the requests (default: 15s timeout, no proxy, no redirects).
	HTTPClient *http.Client
}

// CDN is the Varnish adapter. It is safe for concurrent use.
type CDN struct {
	cfg       Config
	endpoints []endpoint
	client    *http.Client
}

var _ purge.CDN = (*CDN)(nil)

type endpoint struct {
	base string // scheme://host:port
	name string // what messages show (the same: endpoints hold no credentials)
}

// New checks cfg and returns the adapter.
func New(cfg Config) (*CDN, error) {
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeXkey
	case ModeXkey, ModePurge, ModeBan:
	default:
		return nil, fmt.Errorf("varnish: mode %q is not one of xkey, purge, ban", cfg.Mode)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("varnish: no endpoints (list the Varnish servers, like http://127.0.0.1:6081)")
	}
	c := &CDN{cfg: cfg}
	seen := map[string]bool{}
	for _, raw := range cfg.Endpoints {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.User == nil && ((u.Scheme != "http" && u.Scheme != "https") || u.Host == ""):
			return nil, fmt.Errorf("varnish: endpoint %q is not an http(s) URL like http://127.0.0.1:6081", raw)
		case u.User != nil:
			// Not echoed: it holds a credential.
			return nil, fmt.Errorf("varnish: endpoint %s holds credentials; Varnish authorizes purges by its ACL, so the URL must not", u.Host)
		case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("varnish: endpoint %q has a path or query; give the server only, like http://127.0.0.1:6081", raw)
		}
		base := u.Scheme + "://" + u.Host
		if seen[base] {
			continue
		}
		seen[base] = true
		c.endpoints = append(c.endpoints, endpoint{base: base, name: base})
	}
	if cfg.Host != "" && strings.ContainsAny(cfg.Host, " /\t\r\n") {
		return nil, fmt.Errorf("varnish: host %q is not a host name", cfg.Host)
	}
	if c.cfg.MaxHeaderBytes <= 0 {
		c.cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.cfg.Parallel <= 0 {
		c.cfg.Parallel = defaultParallel
	}
	if c.cfg.Backoff.Attempts <= 0 {
		c.cfg.Backoff.Attempts = defaultAttempts
	}
	if c.cfg.Backoff.Base <= 0 {
		c.cfg.Backoff.Base = defaultBaseDelay
	}
	if c.cfg.Backoff.Max <= 0 {
		c.cfg.Backoff.Max = defaultMaxDelay
	}
	c.cfg.Backoff = c.cfg.Backoff.WithDefaults()
	c.client = cfg.HTTPClient
	if c.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = c.cfg.Parallel
		tr.Proxy = nil // a purge goes to the cache itself, never through a proxy
		c.client = &http.Client{
			Timeout:       15 * time.Second,
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// Name is "varnish:<first endpoint's host:port>", with "+N" for N more endpoints.
func (c *CDN) Name() string {
	n := "varnish:" + strings.TrimPrefix(strings.TrimPrefix(c.endpoints[0].base, "http://"), "https://")
	if len(c.endpoints) > 1 {
		n += fmt.Sprintf("+%d", len(c.endpoints)-1)
	}
	return n
}

// FromSettings builds the adapter from a site.yaml entry:
//
//	varnish: { endpoints: [http://127.0.0.1:6081], mode: xkey, host: www.example.org, soft: false, added_by_url: false, token_env: STUMP_PURGE_TOKEN }
//
// The purge token is read from the environment variable token_env (default
// STUMP_PURGE_TOKEN), never from site.yaml.
func FromSettings(_ context.Context, s *purge.Settings) (purge.CDN, error) {
	var cfg Config
	var err error
	env, err := s.String("token_env", false)
	if err != nil {
		return nil, err
	}
	if env == "" {
		env = DefaultTokenEnv
	}
	if strings.ContainsAny(env, " =$") {
		return nil, s.Errorf("token_env", "must name an environment variable (like %s), not hold a token", DefaultTokenEnv)
	}
	// Optional: the recommended VCL (stump.vcl) needs none; the edge's VCL refuses
	// purges without it, and a 403 says so.
	cfg.Token = strings.TrimSpace(s.Env(env))
	if cfg.Endpoints, err = s.Strings("endpoints", true); err != nil {
		return nil, err
	}
	if cfg.Mode, err = s.OneOf("mode", ModeXkey, ModePurge, ModeBan); err != nil {
		return nil, err
	}
	if cfg.Host, err = s.String("host", false); err != nil {
		return nil, err
	}
	if cfg.Soft, err = s.Bool("soft"); err != nil {
		return nil, err
	}
	if cfg.AddedByURL, err = s.Bool("added_by_url"); err != nil {
		return nil, err
	}
	c, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return c, nil
}

// Mode is the configured mode.
func (c *CDN) Mode() string { return c.cfg.Mode }

// call is one HTTP request, sent to every endpoint.
type call struct {
	method string // PURGE or BAN
	path   string // escaped request path
	header http.Header
	// check names the answer header the recommended VCL sets for this kind of call;
	// an answer without it comes from a VCL that did not do what was asked.
	check string
	// notFoundOK accepts a 404 answer (a PURGE of a URL that was not cached, as some
	// VCLs answer).
	notFoundOK bool
}

// plan is what Purge sends.
type plan struct {
	calls  []call
	report purge.Report
	host   string
}

// Plan returns the requests Purge would send to each endpoint for r (for --plan and
// tests), as "METHOD PATH [HEADER: VALUE]" lines, and the report Purge would give.
func (c *CDN) Plan(r *purge.Request) ([]string, purge.Report, error) {
	p, err := c.plan(r)
	if err != nil {
		return nil, purge.Report{CDN: c.Name()}, err
	}
	out := make([]string, 0, len(p.calls))
	for _, cl := range p.calls {
		line := cl.method + " " + cl.path
		names := make([]string, 0, len(cl.header))
		for k := range cl.header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			line += " [" + k + ": " + cl.header.Get(k) + "]"
		}
		out = append(out, line)
	}
	return out, p.report, nil
}

func (c *CDN) plan(r *purge.Request) (*plan, error) {
	host := c.cfg.Host
	base, err := url.Parse(r.BaseURL)
	if r.BaseURL != "" && err != nil {
		return nil, fmt.Errorf("varnish: the base URL %q is not a URL", r.BaseURL)
	}
	if host == "" && base != nil {
		host = base.Host
	}
	if host == "" {
		return nil, errors.New("varnish: no Host to purge: set host in the varnish settings or the site's baseURL")
	}
	prefix := ""
	if base != nil {
		prefix = strings.TrimSuffix(base.EscapedPath(), "/")
	}
	p := &plan{host: host, report: purge.Report{CDN: c.Name()}}

	all := r.All
	for _, k := range r.Keys {
		if r.Site != "" && k == r.Site {
			all = true // the site key is everything of the site
		}
	}
	paths := make([]string, 0, len(r.Paths))
	for _, raw := range r.Paths {
		ep, err := escapePath(raw)
		if err != nil {
			return nil, err
		}
		paths = append(paths, ep)
	}

	switch c.cfg.Mode {
	case ModeXkey:
		if all {
			if r.Site == "" {
				// No site key to name: a ban of the Host does the same.
				return c.banAll(p)
			}
			return c.xkeyCalls(p, []string{r.Site}, "site", 0)
		}
		var keys []string
		for _, k := range r.Keys {
			if strings.TrimSpace(k) == "" {
				continue
			}
			if strings.ContainsFunc(k, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return nil, fmt.Errorf("varnish: surrogate key %q holds a control character", k)
			}
			keys = append(keys, strings.Fields(k)...)
		}
		if len(paths) > 0 && r.Site == "" {
			return nil, errors.New("varnish: xkey mode needs the site's name to turn paths into URL keys")
		}
		for _, ep := range paths {
			keys = append(keys, urlKey(r.Site, prefix, ep))
		}
		p, err := c.xkeyCalls(p, dedupe(keys), "keys", len(paths))
		if err != nil || !c.cfg.AddedByURL || len(r.Added) == 0 {
			return p, err
		}
		added := make([]string, 0, len(r.Added))
		for _, raw := range r.Added {
			ep, err := escapePath(raw)
			if err != nil {
				return nil, err
			}
			added = append(added, ep)
		}
		added = dedupe(added)
		for _, u := range added {
			p.calls = append(p.calls, c.purgeCall(u))
		}
		p.report.Paths = len(added)
		p.report.Detail += fmt.Sprintf("; PURGE of %d added URLs", len(added))
		return p, nil
	case ModePurge:
		if all {
			return c.banAll(p)
		}
		urls, skipped := keyPaths(r.Site, prefix, r.Keys)
		urls = dedupe(append(paths, urls...))
		for _, u := range urls {
			p.calls = append(p.calls, c.purgeCall(u))
		}
		p.report.Mode, p.report.Paths = "urls", len(urls)
		p.report.Detail = c.detail(fmt.Sprintf("PURGE of %d URLs", len(urls)), len(p.calls), skipped)
		return p, nil
	default: // ModeBan
		if all {
			return c.banAll(p)
		}
		urls, skipped := keyPaths(r.Site, prefix, r.Keys)
		urls = dedupe(append(paths, urls...))
		regexes, err := banRegexes(urls, c.cfg.MaxHeaderBytes)
		if err != nil {
			return nil, err
		}
		for _, re := range regexes {
			p.calls = append(p.calls, banCall(re))
		}
		p.report.Mode, p.report.Paths = "urls", len(urls)
		p.report.Detail = c.detail(fmt.Sprintf("BAN of %d URLs", len(urls)), len(p.calls), skipped)
		return p, nil
	}
}

func (c *CDN) xkeyCalls(p *plan, keys []string, mode string, fromPaths int) (*plan, error) {
	name := "xkey-purge"
	if c.cfg.Soft {
		name = "xkey-softpurge"
	}
	chunks, err := chunk(keys, " ", c.cfg.MaxHeaderBytes)
	if err != nil {
		return nil, fmt.Errorf("varnish: %w", err)
	}
	for _, ch := range chunks {
		h := http.Header{}
		h.Set(name, ch)
		p.calls = append(p.calls, call{method: "PURGE", path: "/", header: h, check: "X-Purged"})
	}
	p.report.Mode, p.report.Keys = mode, len(keys)
	what := fmt.Sprintf("%s of %d keys", name, len(keys))
	if fromPaths > 0 {
		what += fmt.Sprintf(" (%d paths as URL keys)", fromPaths)
	}
	p.report.Detail = c.detail(what, len(p.calls), 0)
	return p, nil
}

func (c *CDN) banAll(p *plan) (*plan, error) {
	p.calls = []call{banCall(".")}
	p.report.Mode = "all"
	p.report.Detail = c.detail("BAN of every URL of "+p.host, 1, 0)
	return p, nil
}

func (c *CDN) purgeCall(path string) call {
	cl := call{method: "PURGE", path: path, header: http.Header{}, notFoundOK: true}
	if c.cfg.Soft {
		cl.header.Set("X-Purge-Soft", "1")
	}
	return cl
}

func banCall(re string) call {
	h := http.Header{}
	h.Set("X-Ban-Url", re)
	return call{method: "BAN", path: "/", header: h, check: "X-Banned"}
}

func (c *CDN) detail(what string, calls, skipped int) string {
	s := fmt.Sprintf("%s in %d %s to %d %s", what, calls, plural(calls, "call", "calls"),
		len(c.endpoints), plural(len(c.endpoints), "endpoint", "endpoints"))
	if c.cfg.Soft && c.cfg.Mode == ModeBan {
		s += "; soft does not apply to bans"
	}
	if skipped > 0 {
		s += fmt.Sprintf("; %d surrogate keys skipped (mode %s purges URLs; use mode xkey for keys)", skipped, c.cfg.Mode)
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// escapePath returns p as it travels in a request line: percent-encoded where needed,
// with existing escapes kept ("/caf%C3%A9/" and "/café/" give the same).
func escapePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("varnish: path %q does not start with /", p)
	}
	if !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "?#") {
		if u, err := url.Parse(p); err == nil && u.Host == "" && u.Path != "" {
			return u.EscapedPath(), nil
		}
	}
	return (&url.URL{Path: p}).EscapedPath(), nil
}

// urlKey is the surrogate key stump's build gives the page at the escaped path ep:
// <site>:url:<path below the base URL's path>, with a final "index.html" dropped.
func urlKey(site, prefix, ep string) string {
	if prefix != "" && strings.HasPrefix(ep, prefix+"/") {
		ep = ep[len(prefix):]
	}
	return site + ":url:" + strings.TrimSuffix(ep, "index.html")
}

// keyPaths turns URL keys back into paths (both forms of a folder's page) and counts the
// keys that name no URL.
func keyPaths(site, prefix string, keys []string) (paths []string, skipped int) {
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, site+":url:")
		if site == "" || !ok || !strings.HasPrefix(rest, "/") {
			skipped++
			continue
		}
		ep, err := escapePath(prefix + rest)
		if err != nil {
			skipped++
			continue
		}
		paths = append(paths, ep)
		if strings.HasSuffix(ep, "/") {
			paths = append(paths, ep+"index.html")
		}
	}
	return paths, skipped
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := make([]string, 0, len(s))
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// chunk joins items with sep into strings of at most max bytes.
func chunk(items []string, sep string, max int) ([]string, error) {
	var out []string
	var b strings.Builder
	for _, it := range items {
		if len(it) > max {
			return nil, fmt.Errorf("%q is longer than the %d bytes a header may hold", it[:min(len(it), 80)]+"...", max)
		}
		if b.Len() > 0 && b.Len()+len(sep)+len(it) > max {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out, nil
}

// banRegexes builds anchored regexes "^(alt|alt...)$" of at most max bytes matching
// exactly the given escaped paths; "/dir/" and "/dir/index.html" share one alternative.
func banRegexes(paths []string, max int) ([]string, error) {
	var alts []string
	for _, p := range paths {
		if dir, ok := strings.CutSuffix(p, "/index.html"); ok {
			alts = append(alts, quoteMeta(dir+"/")+"(index[.]html)?")
		} else if strings.HasSuffix(p, "/") {
			alts = append(alts, quoteMeta(p)+"(index[.]html)?")
		} else {
			alts = append(alts, quoteMeta(p))
		}
	}
	alts = dedupe(alts)
	const wrap = len("^()$")
	chunks, err := chunk(alts, "|", max-wrap)
	if err != nil {
		return nil, fmt.Errorf("varnish: a ban regex for %w", err)
	}
	for i, ch := range chunks {
		chunks[i] = "^(" + ch + ")$"
	}
	return chunks, nil
}

// quoteMeta escapes the regex metacharacters a path can hold with character classes, not
// backslashes (which ban expressions may treat as escapes), and never leaves a space or
// a quote, which the VCL refuses in a ban.
func quoteMeta(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; ch {
		case '.', '$', '(', ')', '*', '+', '?', '{', '}', '|', '[':
			b.WriteByte('[')
			b.WriteByte(ch)
			b.WriteByte(']')
		case ']':
			b.WriteString("[]]")
		case '^', '\\', ' ', '"':
			// Never in an escaped path; as a client sends them.
			fmt.Fprintf(&b, "%%%02X", ch)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// Purge sends r to every endpoint. The report counts requests sent (each endpoint's
// counted, retries not); on error some of r may not have been purged on some endpoints,
// and the error names them.
func (c *CDN) Purge(ctx context.Context, r *purge.Request) (purge.Report, error) {
	if r == nil || r.Empty() {
		return purge.Report{CDN: c.Name(), Detail: "nothing to purge"}, nil
	}
	p, err := c.plan(r)
	if err != nil {
		return purge.Report{CDN: c.Name()}, err
	}
	type result struct {
		sent, failed int
		purged       int64
		first        error
	}
	results := make([]result, len(c.endpoints))
	var wg sync.WaitGroup
	for i, ep := range c.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			var mu sync.Mutex
			sem := make(chan struct{}, c.cfg.Parallel)
			var inner sync.WaitGroup
			for _, cl := range p.calls {
				if ctx.Err() != nil {
					break
				}
				sem <- struct{}{}
				inner.Add(1)
				go func() {
					defer inner.Done()
					defer func() { <-sem }()
					n, err := c.send(ctx, ep, p.host, cl)
					mu.Lock()
					defer mu.Unlock()
					res.sent++
					res.purged += n
					if err != nil {
						res.failed++
						if res.first == nil {
							res.first = err
						}
					}
				}()
			}
			inner.Wait()
			if missed := len(p.calls) - res.sent; missed > 0 {
				res.failed += missed
				if res.first == nil {
					res.first = fmt.Errorf("varnish %s: %d requests not sent: %w", ep.name, missed, ctx.Err())
				}
			}
		}()
	}
	wg.Wait()

	rep := p.report
	var errs []error
	var purged int64
	for i, res := range results {
		rep.Calls += res.sent
		purged += res.purged
		if res.first != nil {
			errs = append(errs, fmt.Errorf("varnish %s: %d of %d requests failed; first: %w",
				c.endpoints[i].name, res.failed, len(p.calls), res.first))
		}
	}
	if purged > 0 {
		rep.Detail += fmt.Sprintf("; %d cached objects purged", purged)
	}
	return rep, errors.Join(errs...)
}

// send sends one call to one endpoint, retrying what may pass on a later try. It
// returns the number of objects the VCL says it purged (X-Purged), when it says.
func (c *CDN) send(ctx context.Context, ep endpoint, host string, cl call) (int64, error) {
	what := cl.method + " " + cl.path
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, cl.method, ep.base+cl.path, nil)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		req.Host = host
		for k, v := range cl.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "stump-purge")
		if c.cfg.Token != "" {
			req.Header.Set(TokenHeader, c.cfg.Token)
		}
		resp, err := c.client.Do(req)
		var retryAfter time.Duration
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			code := resp.StatusCode
			switch {
			case code >= 200 && code < 300:
				if cl.check != "" && resp.Header.Get(cl.check) == "" {
					return 0, fmt.Errorf("%s: answered %s without %s: its VCL does not handle this purge; load the recommended VCL (docs/varnish.md) or set mode: purge",
						what, resp.Status, cl.check)
				}
				n, _ := strconv.ParseInt(resp.Header.Get("X-Purged"), 10, 64)
				return n, nil
			case code == http.StatusNotFound && cl.notFoundOK:
				return 0, nil
			case purge.Retryable(code):
				err = fmt.Errorf("%s: %s", what, resp.Status)
				retryAfter = purge.RetryAfter(resp.Header, time.Now())
			default:
				return 0, fmt.Errorf("%s: %s%s", what, resp.Status, hint(code, cl.method, msg))
			}
		} else {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("%s: %w", what, ctx.Err())
			}
			err = fmt.Errorf("%s: %w", what, scrub(err))
		}
		if attempt >= c.cfg.Backoff.Attempts {
			return 0, fmt.Errorf("%w (gave up after %d tries)", err, attempt)
		}
		delay, ok := c.cfg.Backoff.Delay(attempt, retryAfter)
		if !ok {
			return 0, fmt.Errorf("%w (the server asked to retry after %s, more than the %s this purge waits)", err, retryAfter, c.cfg.Backoff.Max)
		}
		if retryAfter <= 0 {
			delay = jitter(delay)
		}
		if serr := c.cfg.Backoff.Sleep(ctx, delay); serr != nil {
			return 0, fmt.Errorf("%s: %w (after %d tries; last: %v)", what, serr, attempt, err)
		}
	}
}

// jitter spreads a wait by ±20%, so that retries to a fleet do not arrive together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// hint explains the answers a wrong setup gives.
func hint(code int, method string, body []byte) string {
	switch code {
	case http.StatusForbidden:
		return " (this machine is not in the VCL's purgers ACL, or the purge token is missing or wrong: stump sends $" +
			DefaultTokenEnv + " (or the variable token_env names) in " + TokenHeader + ", and varnishd must have the same value)"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusNotFound:
		return fmt.Sprintf(" (the VCL does not accept %s: load the recommended VCL, docs/varnish.md)", method)
	case http.StatusBadRequest:
		if s := strings.TrimSpace(string(body)); s != "" && len(s) < 200 {
			return " (" + s + ")"
		}
	}
	return ""
}

// scrub keeps the cause of a transport error and drops the URL it wraps (the message
// names the endpoint already).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var ne net.Error
		if errors.As(ue.Err, &ne) && ne.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}
