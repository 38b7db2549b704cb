package publish

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Target is a parsed target URL:
//
//	s3://bucket/prefix?region=eu-west-1&endpoint=http://127.0.0.1:7070&path_style=true
//	file:///srv/sites/x   (or file://./relative/to/workspace)
type Target struct {
	Raw       string
	Scheme    string // "s3" or "file"
	Bucket    string
	Prefix    string
	Region    string
	Endpoint  string
	PathStyle bool
	// Dir is the folder of a file target (absolute).
	Dir string
	// Embedded marks the default local target inside the workspace
	// (.stump/targets/<site>): its folders are created on first use.
	Embedded bool
}

// ParseTarget parses a target URL; relative file paths are taken from base.
func ParseTarget(raw, base string) (Target, error) {
	shown := redact(raw)
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("target %s is not a valid target URL: %s (use s3://bucket/prefix or file:///path)", shown, why)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("it does not parse as a URL")
	}
	t := Target{Raw: raw, Scheme: u.Scheme}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return bad("it names no bucket")
		}
		if u.User != nil {
			return bad("credentials may not be written in a target; they come from the environment or the AWS default chain")
		}
		t.Bucket = u.Host
		t.Prefix = strings.Trim(u.Path, "/")
		q := u.Query()
		for k := range q {
			switch k {
			case "region", "endpoint", "path_style":
			default:
				return bad(fmt.Sprintf("unknown parameter %q (region, endpoint, path_style)", k))
			}
		}
		t.Region = q.Get("region")
		t.Endpoint = q.Get("endpoint")
		if t.Endpoint != "" {
			e, err := url.Parse(t.Endpoint)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return bad("endpoint must be an http(s) URL")
			}
			if e.User != nil {
				return bad("the endpoint may not hold credentials: they come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your AWS profile")
			}
		}
		if ps := q.Get("path_style"); ps != "" {
			b, err := strconv.ParseBool(ps)
			if err != nil {
				return bad("path_style must be true or false")
			}
			t.PathStyle = b
		}
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = u.Host + u.Path // file://./x or file://rel/x
		}
		if p == "" {
			return bad("it names no folder")
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		t.Dir = filepath.Clean(p)
	default:
		return bad("the scheme must be s3 or file")
	}
	return t, nil
}

// redact returns a target URL safe to print: without user info (which could hold a
// secret), or a placeholder when it does not parse.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if !strings.Contains(raw, "@") {
		return fmt.Sprintf("%q", raw) // no user info anywhere: print it as written
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i, v := range vs {
				if e, err := url.Parse(v); err == nil && e.User != nil {
					e.User = url.User("REDACTED")
					vs[i] = e.String()
				}
			}
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	return fmt.Sprintf("%q", u.String())
}

// String is the target without query parameters (safe to print).
func (t Target) String() string {
	if t.Scheme == "file" {
		return "file://" + t.Dir
	}
	s := "s3://" + t.Bucket
	if t.Prefix != "" {
		s += "/" + t.Prefix
	}
	return s
}
