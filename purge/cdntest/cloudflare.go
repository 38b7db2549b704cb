package cdntest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Cloudflare is a fake Cloudflare API: POST /client/v4/zones/{zone}/purge_cache with
// "Authorization: Bearer <token>" and a JSON body of exactly one of files, tags,
// prefixes, hosts or purge_everything, each list within Limit items.
type Cloudflare struct {
	*httptest.Server
	faults
	reporter
	Zone, Token string
	// Limit is the most items a call may hold (default 30, the documented single-file
	// limit of the Free, Pro and Business plans).
	Limit int
	// Host, when set, is the only host files and prefixes may name.
	Host string

	mu       sync.Mutex
	requests int
	calls    []CloudflareCall
}

// CloudflareCall is one purge the fake accepted.
type CloudflareCall struct {
	Files, Tags, Prefixes, Hosts []string
	Everything                   bool
}

// Items counts what a call purged.
func (c CloudflareCall) Items() int {
	n := len(c.Files) + len(c.Tags) + len(c.Prefixes) + len(c.Hosts)
	if c.Everything {
		n++
	}
	return n
}

// NewCloudflare starts a fake for one zone; t is failed on any breach.
func NewCloudflare(t testing.TB, zone, token string) *Cloudflare {
	c := &Cloudflare{Zone: zone, Token: token, Limit: 30, reporter: reporter{t: t}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	if t != nil {
		t.Cleanup(c.Close)
	}
	return c
}

// API is the base URL to give the adapter.
func (c *Cloudflare) API() string { return c.URL + "/client/v4" }

// Requests counts every request received (failed ones included).
func (c *Cloudflare) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// Calls are the purges answered with success.
func (c *Cloudflare) Calls() []CloudflareCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CloudflareCall(nil), c.calls...)
}

func (c *Cloudflare) fail(w http.ResponseWriter, status, code int, msg string) {
	jsonAnswer(w, status, map[string]any{"success": false, "errors": []map[string]any{{"code": code, "message": msg}}, "messages": []any{}, "result": nil})
}

func (c *Cloudflare) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+c.Token {
		c.breach("%s %s: Authorization is not \"Bearer <test token>\"", r.Method, r.URL.Path)
		c.fail(w, http.StatusForbidden, 10000, "Authentication error")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/client/v4/zones/"+c.Zone+"/purge_cache" {
		c.breach("%s %s is not POST /client/v4/zones/%s/purge_cache", r.Method, r.URL.Path, c.Zone)
		c.fail(w, http.StatusNotFound, 7003, "Could not route")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.breach("Content-Type %q, want application/json", ct)
	}
	var in struct {
		Files           []string `json:"files"`
		Tags            []string `json:"tags"`
		Prefixes        []string `json:"prefixes"`
		Hosts           []string `json:"hosts"`
		PurgeEverything *bool    `json:"purge_everything"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		c.breach("purge_cache body: %v", err)
		c.fail(w, http.StatusBadRequest, 1012, "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"")
		return
	}
	kinds := 0
	for _, l := range [][]string{in.Files, in.Tags, in.Prefixes, in.Hosts} {
		if l != nil {
			kinds++
			if len(l) == 0 {
				c.breach("purge_cache with an empty list")
			}
			if len(l) > c.Limit {
				c.breach("purge_cache with %d items: the limit is %d a call", len(l), c.Limit)
				c.fail(w, http.StatusBadRequest, 1015, "too many items")
				return
			}
		}
	}
	if in.PurgeEverything != nil {
		kinds++
		if !*in.PurgeEverything {
			c.breach("purge_everything: false")
		}
	}
	if kinds != 1 {
		c.breach("purge_cache body holds %d kinds of items, want exactly one", kinds)
		c.fail(w, http.StatusBadRequest, 1012, "one kind of purge a call")
		return
	}
	for _, f := range in.Files {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasPrefix(u.EscapedPath(), "/") {
			c.breach("file %q is not an absolute URL", f)
		} else if c.Host != "" && u.Host != c.Host {
			c.breach("file %q is not on %s", f, c.Host)
		}
	}
	for _, p := range in.Prefixes {
		if strings.Contains(p, "://") || strings.HasPrefix(p, "/") {
			c.breach("prefix %q must be host/path without a scheme", p)
		} else if c.Host != "" && !strings.HasPrefix(p+"/", c.Host+"/") {
			c.breach("prefix %q is not on %s", p, c.Host)
		}
	}
	for _, t := range in.Tags {
		if t == "" || strings.ContainsAny(t, " \t,") || len(t) > 1024 {
			c.breach("tag %q is not a valid cache tag", t)
		}
	}
	if fl, ok := c.next(); ok {
		if fl.RetryAfter != "" {
			w.Header().Set("Retry-After", fl.RetryAfter)
		}
		c.fail(w, fl.Status, 971, "injected failure")
		return
	}
	c.mu.Lock()
	c.calls = append(c.calls, CloudflareCall{Files: in.Files, Tags: in.Tags, Prefixes: in.Prefixes, Hosts: in.Hosts, Everything: in.PurgeEverything != nil})
	c.mu.Unlock()
	jsonAnswer(w, http.StatusOK, map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": map[string]string{"id": c.Zone}})
}
