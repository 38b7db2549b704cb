// Package wordpress turns a WordPress site's content into stump content: it pulls posts,
// pages and custom post types over the REST API (or reads a WXR export), renders the
// shortcodes that survive, sanitizes the HTML, downloads the media, and writes page
// bundles with front matter into the site's content folder. Package build never learns
// about WordPress: what it reads is ordinary Markdown files (with rawHTML: true, the body
// being sanitized HTML). docs/wordpress.md describes the mapping and the files.
package wordpress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions tune a Client. Zero values take the defaults.
type ClientOptions struct {
	// User and Password are an application password's user and password; empty User
	// means anonymous requests (published content only). The password is sent in the
	// Authorization header only, never in a URL, and never appears in errors or logs.
	User, Password string
	// Concurrency bounds the requests in flight (default 4).
	Concurrency int
	// Timeout bounds each request, body included (default 30s).
	Timeout time.Duration
	// Retries is how often a failed request (network error, 429, 5xx, a truncated or
	// malformed body) is tried again (default 3); RetryWait is the first pause, doubled
	// each time (default 1s), unless the server sends Retry-After (obeyed up to
	// MaxRetryAfter, default 60s).
	Retries       int
	RetryWait     time.Duration
	MaxRetryAfter time.Duration
	// HTTP is the client to use (default: a new one; Timeout applies per request).
	HTTP *http.Client
	Log  *slog.Logger
	// PageSize is per_page of collection requests (default and most WordPress allows: 100).
	PageSize int
}

// Client talks to one WordPress REST API. It is safe for concurrent use.
type Client struct {
	root     *url.URL // the API root: http://host/wp-json/ or http://host/?rest_route=/
	opts     ClientOptions
	http     *http.Client
	sem      chan struct{}
	requests atomic.Int64
	log      *slog.Logger
}

// maxBody bounds a response body read into memory (a page of 100 posts with content).
const maxBody = 64 << 20

// APIError is a response WordPress answered with an error status.
type APIError struct {
	URL     string // without credentials (there are none in URLs)
	Status  int
	Code    string // WordPress's error code (rest_forbidden, incorrect_password, ...)
	Message string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.URL, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrAuth is wrapped by errors from a request WordPress refused for its credentials.
var ErrAuth = errors.New("WordPress refused the credentials")

// authError is an *APIError that WordPress answered for the credentials (401, 403).
type authError struct{ *APIError }

func (e authError) Is(target error) bool { return target == ErrAuth }
func (e authError) Unwrap() error        { return e.APIError }

// NewClient returns a client for the API root (as Discover finds it).
func NewClient(root *url.URL, opts ClientOptions) *Client {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.RetryWait <= 0 {
		opts.RetryWait = time.Second
	}
	if opts.PageSize <= 0 || opts.PageSize > 100 {
		opts.PageSize = 100
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = time.Minute
	}
	h := opts.HTTP
	if h == nil {
		h = &http.Client{}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{root: root, opts: opts, http: h, sem: make(chan struct{}, opts.Concurrency), log: log}
}

// Discover finds the REST API root of the WordPress site at siteURL: from the Link
// header (rel="https://api.w.org/") WordPress sends with every page, else by trying
// /wp-json/ and then /?rest_route=/ (pretty permalinks off). It returns a client for it.
func Discover(ctx context.Context, siteURL string, opts ClientOptions) (*Client, error) {
	base, err := url.Parse(siteURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("WordPress URL %q is not an http(s) URL", siteURL)
	}
	if base.User != nil {
		return nil, fmt.Errorf("WordPress URL must not hold credentials (use the user setting and STUMP_WP_PASSWORD)")
	}
	probe := NewClient(base, opts)
	var firstErr error
	// 1. The Link header of the site's front page.
	if root, err := probe.linkRoot(ctx, base); err == nil && root != nil {
		c := NewClient(root, opts)
		c.requests.Store(probe.requests.Load())
		return c, nil
	} else if err != nil {
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			// Nothing answers: no point probing other paths.
			return nil, fmt.Errorf("WordPress at %s did not answer: %w", siteURL, err)
		}
		if apiErr.Status >= 500 {
			return nil, fmt.Errorf("WordPress at %s is failing (its front page answers HTTP %d): %w", siteURL, apiErr.Status, err)
		}
		firstErr = err
	}
	// 2. The usual places: /wp-json/, then ?rest_route=/ (pretty permalinks off).
	for _, plain := range []bool{false, true} {
		root := *base
		root.RawQuery, root.Fragment = "", ""
		if !strings.HasSuffix(root.Path, "/") {
			root.Path += "/"
		}
		if plain {
			root.RawQuery = "rest_route=/"
		} else {
			root.Path += "wp-json/"
		}
		c := NewClient(&root, opts)
		c.requests.Store(probe.requests.Load())
		var idx struct {
			Namespaces []string `json:"namespaces"`
		}
		if _, err := c.Get(ctx, "", url.Values{"_fields": {"namespaces"}}, &idx); err == nil && contains(idx.Namespaces, "wp/v2") {
			return c, nil
		} else if err != nil && firstErr == nil {
			firstErr = err
		}
		probe.requests.Store(c.requests.Load())
	}
	if firstErr != nil {
		return nil, fmt.Errorf("no WordPress REST API found at %s: %w", siteURL, firstErr)
	}
	return nil, fmt.Errorf("no WordPress REST API found at %s (no Link rel=\"https://api.w.org/\", no /wp-json/, no ?rest_route=/)", siteURL)
}

// linkRoot fetches the front page (HEAD, then GET when HEAD gives no link) and returns
// the API root its Link header names, nil when it names none.
func (c *Client) linkRoot(ctx context.Context, base *url.URL) (*url.URL, error) {
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		var root *url.URL
		err := c.do(ctx, method, base.String(), func(resp *http.Response) error {
			if resp.StatusCode >= 400 {
				return &APIError{URL: base.String(), Status: resp.StatusCode}
			}
			for _, l := range resp.Header.Values("Link") {
				for _, part := range strings.Split(l, ",") {
					if !strings.Contains(part, `rel="https://api.w.org/"`) {
						continue
					}
					s, e := strings.Index(part, "<"), strings.Index(part, ">")
					if s < 0 || e < s {
						continue
					}
					u, err := base.Parse(strings.TrimSpace(part[s+1 : e]))
					if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
						root = u
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if root != nil {
			return root, nil
		}
	}
	return nil, nil
}

// Root is the API root the client uses.
func (c *Client) Root() *url.URL { u := *c.root; return &u }

// Requests is the number of HTTP requests the client has sent (retries included).
func (c *Client) Requests() int64 { return c.requests.Load() }

// routeURL is the URL of route (like "wp/v2/posts") with query q, on either API root form.
func (c *Client) routeURL(route string, q url.Values) string {
	u := *c.root
	query := u.Query()
	for k, v := range q {
		query[k] = v
	}
	if query.Has("rest_route") {
		query.Set("rest_route", "/"+strings.TrimPrefix(route, "/"))
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + strings.TrimPrefix(route, "/")
	}
	u.RawQuery = query.Encode()
	return u.String()
}

// Get fetches route with query q and decodes the JSON body into v. It returns the
// response headers (X-WP-Total, X-WP-TotalPages).
func (c *Client) Get(ctx context.Context, route string, q url.Values, v any) (http.Header, error) {
	u := c.routeURL(route, q)
	var hdr http.Header
	err := c.do(ctx, http.MethodGet, u, func(resp *http.Response) error {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			return retryable{fmt.Errorf("%s: reading the response: %w", u, err)}
		}
		if resp.StatusCode != http.StatusOK {
			e := &APIError{URL: u, Status: resp.StatusCode}
			var wpErr struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if json.Unmarshal(body, &wpErr) == nil {
				e.Code, e.Message = wpErr.Code, wpErr.Message
			}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return authError{e}
			}
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return retryable{e}
			}
			return e
		}
		if len(body) > maxBody {
			return fmt.Errorf("%s: response larger than %d MB", u, maxBody>>20)
		}
		if !json.Valid(body) {
			// A truncated or mangled page can be a passing fault: worth another try.
			return retryable{fmt.Errorf("%s: malformed JSON (%d bytes, %s)", u, len(body), resp.Header.Get("Content-Type"))}
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("%s: unexpected JSON: %w", u, err)
		}
		hdr = resp.Header
		return nil
	})
	return hdr, err
}

// Fetch downloads rawURL (media) and returns its bytes. A 404 or 410 is an *APIError
// that is not retried.
func (c *Client) Fetch(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, rawURL, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			e := &APIError{URL: rawURL, Status: resp.StatusCode}
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return retryable{e}
			}
			return e
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return retryable{fmt.Errorf("%s: %w", rawURL, err)}
		}
		if int64(len(b)) > limit {
			return fmt.Errorf("%s: larger than %d MB", rawURL, limit>>20)
		}
		out = b
		return nil
	})
	return out, err
}

// retryable marks an error worth another try.
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// do sends a request (within the concurrency limit, with the timeout, the credentials
// and retries) and hands the response to handle, whose retryable errors are retried.
func (c *Client) do(ctx context.Context, method, u string, handle func(*http.Response) error) error {
	wait := c.opts.RetryWait
	var lastErr error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			c.log.Debug("wordpress: retrying", "url", u, "attempt", attempt, "wait", wait, "error", lastErr)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			wait *= 2
		}
		var retryAfter time.Duration
		err := func() error {
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-c.sem }()
			rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(rctx, method, u, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept", "application/json")
			req.Header.Set("User-Agent", "stump (+static site publisher)")
			if c.opts.User != "" {
				req.SetBasicAuth(c.opts.User, c.opts.Password)
			}
			c.requests.Add(1)
			c.log.Debug("wordpress: request", "method", method, "url", u)
			resp, err := c.http.Do(req)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return retryable{fmt.Errorf("%s %s: %w", method, u, scrub(err))}
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
				retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.opts.MaxRetryAfter)
			}
			return handle(resp)
		}()
		if err == nil {
			return nil
		}
		var r retryable
		if !errors.As(err, &r) {
			return err
		}
		lastErr = r.error
		if retryAfter > 0 {
			wait = retryAfter
		}
	}
	return fmt.Errorf("%w (gave up after %d tries)", lastErr, c.opts.Retries+1)
}

// scrub removes a URL's user info from an error message (there is none in the URLs
// this client builds; this guards against one passed in).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			u.User = nil
			return fmt.Errorf("%s %s: %w", ue.Op, u.Redacted(), ue.Err)
		}
	}
	return err
}

// parseRetryAfter reads Retry-After (seconds or an HTTP date), capped at max.
func parseRetryAfter(v string, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	if d < 0 {
		d = 0
	}
	if d > max {
		d = max
	}
	return d
}

// GetAll fetches every page of a collection route (per_page=100, X-WP-TotalPages),
// pages after the first in parallel within the concurrency limit, and returns the items
// in order.
func (c *Client) GetAll(ctx context.Context, route string, q url.Values) ([]json.RawMessage, error) {
	q = cloneValues(q)
	if q.Get("per_page") == "" {
		q.Set("per_page", strconv.Itoa(c.opts.PageSize))
	}
	q.Set("page", "1")
	var first []json.RawMessage
	hdr, err := c.Get(ctx, route, q, &first)
	if err != nil {
		return nil, err
	}
	pages, _ := strconv.Atoi(hdr.Get("X-WP-TotalPages"))
	if pages <= 1 {
		return first, nil
	}
	rest := make([][]json.RawMessage, pages-1)
	errs := make([]error, pages-1)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for p := 2; p <= pages; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pq := cloneValues(q)
			pq.Set("page", strconv.Itoa(p))
			if _, err := c.Get(ctx, route, pq, &rest[p-2]); err != nil {
				errs[p-2] = fmt.Errorf("page %d of %d: %w", p, pages, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out := first
	for _, r := range rest {
		out = append(out, r...)
	}
	return out, nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
