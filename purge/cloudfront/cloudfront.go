// Package cloudfront invalidates paths of a CloudFront distribution with
// aws-sdk-go-v2 (CreateInvalidation; GetInvalidation to wait; ListInvalidations to
// count the wildcards already in flight).
//
// Limits it keeps (Amazon CloudFront Developer Guide, "Invalidating files" and
// "Concurrent invalidation request maximum"):
//   - at most 3,000 paths a request (MaxPathsPerRequest), and 3,000 file paths in
//     flight per distribution;
//   - at most 15 wildcard paths in flight per distribution (MaxWildcardsInFlight),
//     counted from the invalidations still InProgress before wildcards are sent;
//   - every request has a unique CallerReference; a retry of the same batch reuses it,
//     so a retry after a lost answer never invalidates twice;
//   - billing: the first 1,000 paths a month are free, a wildcard path counts as one.
//     A purge spends at most MaxPaths paths (default 100): past that, paths collapse
//     into wildcards ("/news/*"), as deep as possible, at most 15 of them; the whole
//     site is "<base path>/*".
//
// Wait makes Purge poll GetInvalidation until every invalidation is Completed.
package cloudfront

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stump-dev/stump/purge"
)

// Limits.
const (
	// MaxPathsPerRequest is the most paths one CreateInvalidation takes.
	MaxPathsPerRequest = 3000
	// MaxWildcardsInFlight is the most wildcard paths in progress per distribution.
	MaxWildcardsInFlight = 15
	// DefaultMaxPaths is the paths a purge spends by default: ten deploys fit in the
	// 1,000 free paths a month.
	DefaultMaxPaths = 100
)

// API is the part of the CloudFront client the adapter uses.
type API interface {
	CreateInvalidation(context.Context, *cloudfront.CreateInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.CreateInvalidationOutput, error)
	GetInvalidation(context.Context, *cloudfront.GetInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.GetInvalidationOutput, error)
	ListInvalidations(context.Context, *cloudfront.ListInvalidationsInput, ...func(*cloudfront.Options)) (*cloudfront.ListInvalidationsOutput, error)
}

// Config sets up the adapter.
type Config struct {
	// Distribution is the distribution ID.
	Distribution string
	// MaxPaths is the most paths one purge sends (default DefaultMaxPaths, at most
	// MaxPathsPerRequest); past it, paths collapse into wildcards.
	MaxPaths int
	// MaxWildcards is the most wildcard paths in flight (default and at most 15).
	MaxWildcards int
	// Wait polls until the invalidations completed.
	Wait bool
	// PollInterval is the wait between polls (default 10s), also while the wildcard
	// budget is used up by invalidations in flight.
	PollInterval time.Duration
	// WaitTimeout bounds all waiting in one purge (default 15m).
	WaitTimeout time.Duration
	// Backoff retries throttling and 5xx answers (the SDK's own retries are off).
	Backoff purge.Backoff
}

// CDN is a CloudFront distribution.
type CDN struct {
	cfg Config
	api API
}

// New returns the adapter over a CloudFront client (or a test double).
func New(cfg Config, api API) (*CDN, error) {
	if strings.TrimSpace(cfg.Distribution) == "" {
		return nil, errors.New("cloudfront: a distribution ID is required")
	}
	if api == nil {
		return nil, errors.New("cloudfront: no client")
	}
	if cfg.MaxPaths <= 0 {
		cfg.MaxPaths = DefaultMaxPaths
	}
	if cfg.MaxPaths > MaxPathsPerRequest {
		return nil, fmt.Errorf("cloudfront: max_paths must be at most %d (paths in flight per distribution)", MaxPathsPerRequest)
	}
	if cfg.MaxWildcards <= 0 || cfg.MaxWildcards > MaxWildcardsInFlight {
		cfg.MaxWildcards = MaxWildcardsInFlight
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 15 * time.Minute
	}
	cfg.Backoff = cfg.Backoff.WithDefaults()
	return &CDN{cfg: cfg, api: api}, nil
}

// NewFromAWS returns the adapter over a client made from an AWS config; optFns may set
// a BaseEndpoint (tests point it at a fake). The SDK's retries are turned off: the
// adapter retries itself, honouring Retry-After.
func NewFromAWS(cfg Config, awsCfg aws.Config, optFns ...func(*cloudfront.Options)) (*CDN, error) {
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // CloudFront is global; its API signs in us-east-1
	}
	client := cloudfront.NewFromConfig(awsCfg, append([]func(*cloudfront.Options){func(o *cloudfront.Options) {
		o.Retryer = aws.NopRetryer{}
	}}, optFns...)...)
	return New(cfg, client)
}

// FromSettings builds the adapter from a site.yaml entry, with credentials from the
// AWS default chain (environment, shared config, SSO, instance role):
//
//	cloudfront: { distribution: E123ABC, max_paths: 100, max_wildcards: 15, wait: false, endpoint: URL }
func FromSettings(ctx context.Context, s *purge.Settings) (purge.CDN, error) {
	var cfg Config
	var err error
	if cfg.Distribution, err = s.String("distribution", true); err != nil {
		return nil, err
	}
	if cfg.MaxPaths, err = s.Int("max_paths", DefaultMaxPaths, 1, MaxPathsPerRequest); err != nil {
		return nil, err
	}
	if cfg.MaxWildcards, err = s.Int("max_wildcards", MaxWildcardsInFlight, 1, MaxWildcardsInFlight); err != nil {
		return nil, err
	}
	if cfg.Wait, err = s.Bool("wait"); err != nil {
		return nil, err
	}
	endpoint, err := s.String("endpoint", false)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: load the AWS configuration: %w", s.Path, err)
	}
	var opts []func(*cloudfront.Options)
	if endpoint != "" {
		opts = append(opts, func(o *cloudfront.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	return NewFromAWS(cfg, awsCfg, opts...)
}

// Name is "cloudfront:<distribution>".
func (c *CDN) Name() string { return "cloudfront:" + c.cfg.Distribution }

// String is the name.
func (c *CDN) String() string { return c.Name() }

// paths are the invalidation paths for r within the budget (wildcards in flight not
// yet counted), with the report's mode and detail.
func (c *CDN) paths(r *purge.Request) ([]string, purge.Report) {
	rep := purge.Report{CDN: c.Name(), Mode: "paths"}
	root := r.BasePath() + "/"
	if r.All {
		rep.Mode = "all"
		return []string{root + "*"}, rep
	}
	var paths []string
	for _, p := range r.Paths {
		// A literal "*" would be a wildcard to CloudFront.
		paths = append(paths, strings.ReplaceAll(p, "*", "%2A"))
	}
	sort.Strings(paths)
	if len(paths) > c.cfg.MaxPaths {
		n := len(paths)
		paths = Collapse(paths, c.cfg.MaxPaths, c.cfg.MaxWildcards, root)
		rep.Mode = "wildcards"
		rep.Detail = fmt.Sprintf("%d paths over the budget of %d: collapsed to %d", n, c.cfg.MaxPaths, len(paths))
	}
	return paths, rep
}

// Plan returns the invalidations Purge would create for r, one line each with its
// wildcards, without sending them (for --plan). Purge may collapse further when other
// invalidations hold wildcards in flight.
func (c *CDN) Plan(r *purge.Request) ([]string, purge.Report, error) {
	paths, rep := c.paths(r)
	var out []string
	for i := 0; i < len(paths); i += MaxPathsPerRequest {
		batch := paths[i:min(i+MaxPathsPerRequest, len(paths))]
		var wild []string
		for _, p := range batch {
			if strings.HasSuffix(p, "*") {
				wild = append(wild, p)
			}
		}
		line := fmt.Sprintf("POST /2020-05-31/distribution/%s/invalidation: %d paths", c.cfg.Distribution, len(batch))
		if len(wild) > 0 {
			line += fmt.Sprintf(", %d wildcards (%s)", len(wild), strings.Join(wild, " "))
		}
		out = append(out, line)
		rep.Calls++
		rep.Paths += len(batch)
	}
	return out, rep, nil
}

// Purge invalidates r's paths (see the package doc).
func (c *CDN) Purge(ctx context.Context, r *purge.Request) (purge.Report, error) {
	deadline := time.Now().Add(c.cfg.WaitTimeout)
	root := r.BasePath() + "/"
	paths, rep := c.paths(r)
	if len(paths) == 0 {
		return rep, nil
	}
	if w := countWild(paths); w > 0 {
		inflight, err := c.wildcardsInFlight(ctx, &rep, w, deadline)
		if err != nil {
			return rep, err
		}
		if avail := c.cfg.MaxWildcards - inflight; w > avail {
			paths = Collapse(paths, len(paths), avail, root)
			if countWild(paths) > avail {
				paths = []string{root + "*"}
			}
			rep.Mode = "wildcards"
			rep.Detail = strings.TrimPrefix(rep.Detail+fmt.Sprintf("; %d wildcards in flight: collapsed to %d paths", inflight, len(paths)), "; ")
		}
	}
	var ids []string
	for i := 0; i < len(paths); i += MaxPathsPerRequest {
		batch := paths[i:min(i+MaxPathsPerRequest, len(paths))]
		id, err := c.create(ctx, &rep, r.Site, batch, deadline)
		if err != nil {
			return rep, err
		}
		ids = append(ids, id)
		rep.Paths += len(batch)
	}
	rep.Detail = strings.TrimPrefix(rep.Detail+"; invalidation "+strings.Join(ids, ", "), "; ")
	if c.cfg.Wait {
		for _, id := range ids {
			if err := c.wait(ctx, &rep, id, deadline); err != nil {
				return rep, err
			}
		}
		rep.Detail += " completed"
	}
	return rep, nil
}

func countWild(paths []string) int {
	n := 0
	for _, p := range paths {
		if strings.HasSuffix(p, "*") {
			n++
		}
	}
	return n
}

// create sends one batch, retrying with the same caller reference.
func (c *CDN) create(ctx context.Context, rep *purge.Report, site string, paths []string, deadline time.Time) (string, error) {
	in := &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(c.cfg.Distribution),
		InvalidationBatch: &types.InvalidationBatch{
			CallerReference: aws.String(callerReference(site)),
			Paths:           &types.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	}
	var out *cloudfront.CreateInvalidationOutput
	err := c.retry(ctx, rep, "CreateInvalidation", deadline, func() error {
		var err error
		out, err = c.api.CreateInvalidation(ctx, in)
		return err
	})
	if err != nil {
		return "", err
	}
	if out.Invalidation == nil || out.Invalidation.Id == nil {
		return "", fmt.Errorf("%s: CreateInvalidation answered without an invalidation ID", c.Name())
	}
	return *out.Invalidation.Id, nil
}

// wildcardsInFlight counts the wildcard paths of invalidations in progress. It waits
// (polling) while they leave no room for want more, up to the deadline.
func (c *CDN) wildcardsInFlight(ctx context.Context, rep *purge.Report, want int, deadline time.Time) (int, error) {
	for {
		n, err := c.countInFlight(ctx, rep, deadline)
		if err != nil {
			return 0, err
		}
		if n < c.cfg.MaxWildcards {
			return n, nil
		}
		if time.Now().Add(c.cfg.PollInterval).After(deadline) {
			return 0, fmt.Errorf("%s: %d wildcard paths are in flight (the limit is %d) and none completed within %s", c.Name(), n, c.cfg.MaxWildcards, c.cfg.WaitTimeout)
		}
		if err := c.cfg.Backoff.Sleep(ctx, c.cfg.PollInterval); err != nil {
			return 0, fmt.Errorf("%s: waiting for wildcard invalidations to complete: %w", c.Name(), err)
		}
	}
}

func (c *CDN) countInFlight(ctx context.Context, rep *purge.Report, deadline time.Time) (int, error) {
	n := 0
	var marker *string
	for {
		var out *cloudfront.ListInvalidationsOutput
		err := c.retry(ctx, rep, "ListInvalidations", deadline, func() error {
			var err error
			out, err = c.api.ListInvalidations(ctx, &cloudfront.ListInvalidationsInput{DistributionId: aws.String(c.cfg.Distribution), Marker: marker, MaxItems: aws.Int32(100)})
			return err
		})
		if err != nil {
			return 0, err
		}
		l := out.InvalidationList
		if l == nil {
			return n, nil
		}
		for _, s := range l.Items {
			if aws.ToString(s.Status) != "InProgress" {
				continue
			}
			var g *cloudfront.GetInvalidationOutput
			err := c.retry(ctx, rep, "GetInvalidation", deadline, func() error {
				var err error
				g, err = c.api.GetInvalidation(ctx, &cloudfront.GetInvalidationInput{DistributionId: aws.String(c.cfg.Distribution), Id: s.Id})
				return err
			})
			if err != nil {
				return 0, err
			}
			if g.Invalidation != nil && g.Invalidation.InvalidationBatch != nil && g.Invalidation.InvalidationBatch.Paths != nil && aws.ToString(g.Invalidation.Status) == "InProgress" {
				n += countWild(g.Invalidation.InvalidationBatch.Paths.Items)
			}
		}
		if !aws.ToBool(l.IsTruncated) || l.NextMarker == nil {
			return n, nil
		}
		marker = l.NextMarker
	}
}

func (c *CDN) wait(ctx context.Context, rep *purge.Report, id string, deadline time.Time) error {
	for {
		var g *cloudfront.GetInvalidationOutput
		err := c.retry(ctx, rep, "GetInvalidation", deadline, func() error {
			var err error
			g, err = c.api.GetInvalidation(ctx, &cloudfront.GetInvalidationInput{DistributionId: aws.String(c.cfg.Distribution), Id: aws.String(id)})
			return err
		})
		if err != nil {
			return err
		}
		if g.Invalidation != nil && aws.ToString(g.Invalidation.Status) == "Completed" {
			return nil
		}
		if time.Now().Add(c.cfg.PollInterval).After(deadline) {
			return fmt.Errorf("%s: invalidation %s did not complete within %s", c.Name(), id, c.cfg.WaitTimeout)
		}
		if err := c.cfg.Backoff.Sleep(ctx, c.cfg.PollInterval); err != nil {
			return fmt.Errorf("%s: waiting for invalidation %s: %w", c.Name(), id, err)
		}
	}
}

// retry runs one API call, retrying throttling, 5xx answers and transport errors with
// backoff (Retry-After honoured), and TooManyInvalidationsInProgress by polling until
// the deadline. Every try counts as a call in the report.
func (c *CDN) retry(ctx context.Context, rep *purge.Report, op string, deadline time.Time, call func() error) error {
	b := c.cfg.Backoff
	for attempt := 1; ; attempt++ {
		rep.Calls++
		err := call()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %s: %w", c.Name(), op, ctx.Err())
		}
		status, code, after := classify(err)
		wrapped := &Error{CDN: c.Name(), Op: op, Status: status, Code: code, Attempts: attempt, Err: err}
		var sendErr *smithyhttp.RequestSendError
		var d time.Duration
		switch {
		case status == 0 && !errors.As(err, &sendErr):
			return wrapped // no answer and not a transport error: credentials, signing...
		case code == "TooManyInvalidationsInProgress":
			if time.Now().Add(c.cfg.PollInterval).After(deadline) {
				return wrapped
			}
			d = c.cfg.PollInterval
		case retryable(status, code):
			if attempt >= b.Attempts {
				return wrapped
			}
			var ok bool
			if d, ok = b.Delay(attempt, after); !ok {
				wrapped.Note = b.TooLong(after)
				return wrapped
			}
		default:
			return wrapped
		}
		if serr := b.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (gave up waiting to retry: %v)", wrapped, serr)
		}
	}
}

// Error is a CloudFront call the adapter gave up on.
type Error struct {
	CDN, Op  string
	Status   int
	Code     string
	Attempts int
	Note     string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.CDN, e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	purge.WriteRetries(&b, e.Attempts, e.Note)
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// classify reads an SDK error: HTTP status (0 when none came back), API error code and
// Retry-After.
func classify(err error) (status int, code string, after time.Duration) {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.HTTPStatusCode()
		after = purge.RetryAfter(re.Response.Header, time.Now())
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return status, code, after
}

func retryable(status int, code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "ServiceUnavailable", "InternalError":
		return true
	}
	if status == 0 {
		return true // no answer: a transport error (see retry)
	}
	return purge.Retryable(status) || status == http.StatusRequestTimeout
}

// callerReference is unique per batch: site, time and 64 random bits.
func callerReference(site string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "stump-" + site + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + hex.EncodeToString(b[:])
}
