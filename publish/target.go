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
}

// ParseTarget parses a target URL; relative file paths are taken from base.
func ParseTarget(raw, base string) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("target %q is not a valid target URL: %s (use s3://bucket/prefix or file:///path)", raw, why)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(err.Error())
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
