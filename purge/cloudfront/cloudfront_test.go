package cloudfront

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"

	"github.com/stump-dev/stump/purge"
	"github.com/stump-dev/stump/purge/cdntest"
)

const (
	dist      = "E123ABC"
	accessKey = "AKIDSTUMPTEST"
	secretKey = "stump-test-secret-key"
)

// newCDN is the adapter over the real SDK, its endpoint pointed at the fake.
func newCDN(t *testing.T, f *cdntest.CloudFront, mod func(*Config)) (*CDN, *cdntest.Sleeps) {
	t.Helper()
	s := &cdntest.Sleeps{}
	cfg := Config{Distribution: dist, Backoff: purge.Backoff{Sleep: s.Sleep}, PollInterval: time.Second}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")}
	return cdntest.Adapter(t, cfg, mod, func(cfg Config) (*CDN, error) {
		return NewFromAWS(cfg, awsCfg, func(o *cloudfront.Options) { o.BaseEndpoint = aws.String(f.URL) })
	}), s
}

func pagePaths(prefix string, sections, per int) []string {
	var out []string
	for s := range sections {
		for p := range per {
			out = append(out, fmt.Sprintf("%s/s%d/p%03d/", prefix, s, p), fmt.Sprintf("%s/s%d/p%03d/index.html", prefix, s, p))
		}
	}
	slices.Sort(out)
	return out
}

func TestSmallPurgeIsOneInvalidation(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, _ := newCDN(t, f, nil)
	r := &purge.Request{Site: "s", BaseURL: "https://www.example.org/", Paths: []string{"/", "/index.html", "/news/a%2Ab/", "/news/rally/"}}
	rep, err := c.Purge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	b := f.Batches()
	if len(b) != 1 || !slices.Equal(b[0], r.Paths) {
		t.Errorf("batches %q, want the request's paths", b)
	}
	if ops := f.Ops(); ops["CreateInvalidation"] != 1 || ops["ListInvalidations"] != 0 || rep.Calls != 1 || rep.Paths != 4 || rep.Mode != "paths" {
		t.Errorf("ops %v, report %+v", ops, rep)
	}
	if !strings.Contains(rep.Detail, "invalidation I") {
		t.Errorf("detail %q lacks the invalidation ID", rep.Detail)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", c, rep), secretKey) {
		t.Error("secret key printed")
	}
}

func TestCollapseOverBudget(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, _ := newCDN(t, f, nil)
	paths := pagePaths("/c", 4, 30) // 240 paths in 4 sections, budget 100
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://www.example.org/c/", Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	b := f.Batches()
	if len(b) != 1 || len(b[0]) > DefaultMaxPaths || countWild(b[0]) > MaxWildcardsInFlight {
		t.Fatalf("batches %q", b)
	}
	covered(t, b[0], paths)
	if rep.Mode != "wildcards" || f.Ops()["ListInvalidations"] != 1 {
		t.Errorf("report %+v, ops %v", rep, f.Ops())
	}
	t.Logf("240 paths sent as %q", b[0])
}

// covered fails unless every path is one of sent or under one of its wildcards.
func covered(t *testing.T, sent, paths []string) {
	t.Helper()
	for _, p := range paths {
		ok := false
		for _, s := range sent {
			if s == p || strings.HasSuffix(s, "*") && strings.HasPrefix(p, strings.TrimSuffix(s, "*")) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("%s is not covered by %q", p, sent)
		}
	}
}

func TestWildcardsInFlightRespected(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	// Someone else has 14 wildcard paths in flight: one is left.
	var others []string
	for i := range 14 {
		others = append(others, fmt.Sprintf("/other%d/*", i))
	}
	f.AddInFlight(others...)
	c, _ := newCDN(t, f, nil)
	paths := pagePaths("", 4, 30)
	if _, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://www.example.org/", Paths: paths}); err != nil {
		t.Fatal(err)
	}
	b := f.Batches()
	if len(b) != 1 || countWild(b[0]) != 1 {
		t.Fatalf("batches %q: want one batch with one wildcard", b)
	}
	covered(t, b[0], paths)
}

func TestWildcardsInFlightWait(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	var others []string
	for i := range 15 {
		others = append(others, fmt.Sprintf("/other%d/*", i))
	}
	f.AddInFlight(others...)
	c, s := newCDN(t, f, func(c *Config) {
		c.Backoff.Sleep = func(ctx context.Context, d time.Duration) error {
			f.Complete() // the other invalidation completes while we wait
			return nil
		}
	})
	_ = s
	rep, err := c.Purge(t.Context(), purge.All("s", "https://www.example.org/", ""))
	if err != nil {
		t.Fatal(err)
	}
	if b := f.Batches(); len(b) != 1 || !slices.Equal(b[0], []string{"/*"}) {
		t.Errorf("batches %q", b)
	}
	if ops := f.Ops(); ops["ListInvalidations"] != 2 || rep.Mode != "all" {
		t.Errorf("ops %v, report %+v", ops, rep)
	}
}

func TestRetryThrottlingAnd5xx(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, s := newCDN(t, f, nil)
	f.FailNext(1, cdntest.Failure{Status: 429, RetryAfter: "9"})
	f.FailNext(1, cdntest.Failure{Status: 400, Code: "Throttling"})
	f.FailNext(1, cdntest.Failure{Status: 503})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://www.example.org/", Paths: []string{"/a"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Waits()) != "[9s 2s 4s]" || rep.Calls != 4 {
		t.Errorf("waits %v, report %+v", s.Waits(), rep)
	}
	// Every try reused the first try's caller reference: one invalidation.
	if b := f.Batches(); len(b) != 1 {
		t.Errorf("batches %q", b)
	}
}

func TestPersistent5xxReported(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, s := newCDN(t, f, nil)
	f.FailAlways(&cdntest.Failure{Status: 500})
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", BaseURL: "https://www.example.org/", Paths: []string{"/a"}})
	if err == nil || !strings.Contains(err.Error(), "cloudfront:"+dist+": CreateInvalidation: HTTP 500") || strings.Contains(err.Error(), secretKey) {
		t.Fatalf("error %v", err)
	}
	if f.Requests() != 5 || rep.Calls != 5 || len(s.Waits()) != 4 {
		t.Errorf("%d requests, report %+v", f.Requests(), rep)
	}
	// Access denied is not retried.
	f.FailAlways(&cdntest.Failure{Status: 403, Code: "AccessDenied"})
	before := f.Requests()
	if _, err := c.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{"/a"}}); err == nil || f.Requests()-before != 1 {
		t.Errorf("AccessDenied retried: %d, %v", f.Requests()-before, err)
	}
}

func TestUniqueCallerReferences(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	f.AutoComplete = 1
	c, _ := newCDN(t, f, nil)
	for i := range 20 {
		if _, err := c.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{fmt.Sprintf("/p%d", i%3)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.Batches()); n != 20 {
		t.Errorf("%d invalidations, want 20 (each with its own reference)", n)
	}
}

func TestWait(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	f.AutoComplete = 3
	c, s := newCDN(t, f, func(c *Config) { c.Wait = true })
	rep, err := c.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{"/a"}})
	if err != nil {
		t.Fatal(err)
	}
	if ops := f.Ops(); ops["GetInvalidation"] != 3 || len(s.Waits()) != 2 || !strings.HasSuffix(rep.Detail, "completed") {
		t.Errorf("ops %v, waits %v, report %+v", ops, s.Waits(), rep)
	}
	// A wait that outlasts its timeout is an error.
	f2 := cdntest.NewCloudFront(t, dist, accessKey)
	c2, _ := newCDN(t, f2, func(c *Config) { c.Wait, c.PollInterval, c.WaitTimeout = true, time.Hour, time.Minute })
	if _, err := c2.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{"/a"}}); err == nil || !strings.Contains(err.Error(), "did not complete") {
		t.Errorf("timeout: %v", err)
	}
}

func TestCollapse(t *testing.T) {
	for _, c := range []struct {
		paths        []string
		budget, wild int
		want         []string
	}{
		{[]string{"/a/1", "/a/2", "/b/1"}, 3, 15, []string{"/a/1", "/a/2", "/b/1"}},
		{[]string{"/a/1", "/a/2", "/b/1"}, 2, 15, []string{"/a/*", "/b/1"}},
		{[]string{"/a/x/1", "/a/x/2", "/a/y/1", "/a/y/2", "/b/1"}, 4, 15, []string{"/a/x/*", "/a/y/1", "/a/y/2", "/b/1"}},
		{[]string{"/a/x/1", "/a/x/2", "/a/y/1", "/a/y/2", "/b/1"}, 3, 15, []string{"/a/*", "/b/1"}},
		{[]string{"/a/x/1", "/a/x/2", "/a/y/1", "/a/y/2", "/b/x/1", "/b/x/2", "/b/x/3", "/b/y/1"}, 6, 15, []string{"/a/x/1", "/a/x/2", "/a/y/1", "/a/y/2", "/b/x/*", "/b/y/1"}},
		{[]string{"/a/x/1", "/a/x/2", "/a/y/1", "/a/y/2", "/b/1"}, 3, 1, []string{"/a/*", "/b/1"}},
		{[]string{"/a/1", "/b/1", "/c/1"}, 2, 15, []string{"/*"}},
		{[]string{"/a/x/*", "/a/y/*", "/b/*"}, 3, 2, []string{"/a/*", "/b/*"}},
	} {
		got := Collapse(c.paths, c.budget, c.wild, "/")
		if !slices.Equal(got, c.want) {
			t.Errorf("Collapse(%q, %d, %d) = %q, want %q", c.paths, c.budget, c.wild, got, c.want)
		}
	}
}

// TestCollapseProperties: the result always fits the budget and the wildcard limit and
// covers every path.
func TestCollapseProperties(t *testing.T) {
	for seed := range 200 {
		var paths []string
		n := 1 + seed*7%400
		for i := range n {
			paths = append(paths, fmt.Sprintf("/r/s%d/t%d/p%d/", (i*31+seed)%7, (i*17)%5, i))
		}
		slices.Sort(paths)
		paths = slices.Compact(paths)
		budget, wild := 1+seed%120, 1+seed%15
		got := Collapse(paths, budget, wild, "/r/")
		if len(got) > budget || countWild(got) > wild {
			t.Fatalf("seed %d: %d paths, %d wildcards, over %d/%d", seed, len(got), countWild(got), budget, wild)
		}
		covered(t, got, paths)
		if len(paths) <= budget && !slices.Equal(got, paths) {
			t.Fatalf("seed %d: collapsed paths within budget", seed)
		}
	}
}

func TestFromSettingsErrors(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c, err := FromSettings(t.Context(), purge.NewSettings("cdn[2].cloudfront", map[string]any{"distribution": "E1", "max_paths": 500, "wait": true}, nil))
	if err != nil || c.Name() != "cloudfront:E1" || c.(*CDN).cfg.MaxPaths != 500 || !c.(*CDN).cfg.Wait {
		t.Fatalf("%v %v", c, err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[2].cloudfront", map[string]any{}, nil)); err == nil || err.Error() != "cdn[2].cloudfront.distribution is required" {
		t.Errorf("no distribution: %v", err)
	}
	if _, err := FromSettings(t.Context(), purge.NewSettings("cdn[2].cloudfront", map[string]any{"distribution": "E1", "max_paths": 5000}, nil)); err == nil || !strings.Contains(err.Error(), "cdn[2].cloudfront.max_paths must be between 1 and 3000") {
		t.Errorf("max_paths: %v", err)
	}
}

func TestTransportAndCredentialErrors(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, s := newCDN(t, f, nil)
	f.Close() // connection refused: retried, then reported
	if _, err := c.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{"/a"}}); err == nil || len(s.Waits()) != 4 {
		t.Errorf("transport error: waits %v, %v", s.Waits(), err)
	}
	// No credentials: no retry.
	f2 := cdntest.NewCloudFront(t, dist, accessKey)
	s2 := &cdntest.Sleeps{}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials in this test")
	})}
	c2, err := NewFromAWS(Config{Distribution: dist, Backoff: purge.Backoff{Sleep: s2.Sleep}}, awsCfg, func(o *cloudfront.Options) { o.BaseEndpoint = aws.String(f2.URL) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Purge(t.Context(), &purge.Request{Site: "s", Paths: []string{"/a"}}); err == nil || len(s2.Waits()) != 0 || f2.Requests() != 0 {
		t.Errorf("credential error: waits %v, %d requests, %v", s2.Waits(), f2.Requests(), err)
	}
}

func TestPlan(t *testing.T) {
	f := cdntest.NewCloudFront(t, dist, accessKey)
	c, _ := newCDN(t, f, func(c *Config) { c.MaxPaths = 10 })
	lines, rep, err := c.Plan(&purge.Request{Site: "s", Paths: []string{"/a/1", "/a/2", "/a/3", "/b/1", "/c/1", "/d/1", "/e/1", "/f/1", "/g/1", "/h/1", "/i/1"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"POST /2020-05-31/distribution/E123ABC/invalidation: 9 paths, 1 wildcards (/a/*)"}; !slices.Equal(lines, want) || rep.Mode != "wildcards" || f.Requests() != 0 {
		t.Errorf("plan %q, report %+v", lines, rep)
	}
}
