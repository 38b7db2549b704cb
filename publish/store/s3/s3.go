// Package s3store is a store.Store in an S3 bucket, through aws-sdk-go-v2: AWS S3 or
// any S3-compatible server (versitygw, MinIO, Ceph, R2...) at a custom endpoint.
//
// # Credentials
//
// They come only from the environment and the AWS default chain (AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files, SSO, web identity, the
// instance role), never from a URL, and no message of this package shows them: an
// endpoint URL holding user info is refused, and errors are rewritten into plain
// sentences that name the operation, the key and the server's error code.
//
// # Retries
//
// The SDK's standard retryer is kept but limited to 3 attempts with no client-side
// retry quota: it absorbs a dropped connection or a single 503 within a few hundred
// milliseconds, while longer waits are left to the store.Retry decorator that wraps
// every store, so the two do not multiply into minutes of retrying. AWS_MAX_ATTEMPTS,
// when set, overrides the 3. Conditional Puts (IfNoneMatch, IfMatch) get no SDK
// retries at all: if an attempt's answer were lost, the SDK's next attempt would fail
// its condition because of the first and report ErrPrecondition for a write that
// happened; store.Retry marks that case ErrUncertain, which it can only do when the
// retries are its own.
//
// # Differences from the file store
//
// ETags are the server's (on AWS the quoted MD5 of the bytes), so two objects with the
// same bytes and different Meta may have equal ETags. A Put without ContentType gets
// the server's default type (binary/octet-stream on AWS). List skips keys that
// store.CheckKey rejects (such as the "folder/" markers some consoles create).
package s3store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stump-dev/stump/publish/store"
)

// maxAttempts is the SDK retryer's limit per request (see the package doc).
const maxAttempts = 3

// maxDeleteBatch is the most keys one DeleteObjects request may name on AWS.
const maxDeleteBatch = 1000

// defaultRegion is the region used with a custom endpoint when none is configured, and
// with AWS when none is configured (a bucket in another region then gets a message that
// names its region).
const defaultRegion = "us-east-1"

// Config says which bucket to open and how to reach it. Credentials are not part of
// it: they come from the environment or the AWS default chain.
type Config struct {
	Bucket string
	// Region of the bucket; "" takes AWS_REGION or the profile's, else us-east-1.
	Region string
	// Endpoint is the base URL of an S3-compatible server (http://127.0.0.1:7070);
	// "" is AWS. It may not hold credentials.
	Endpoint string
	// PathStyle addresses the bucket in the path (http://host/bucket/key) instead of
	// the host name; most S3-compatible servers need it.
	PathStyle bool
	// HTTPClient, when set, sends the S3 requests (tests put a fault proxy here).
	// AWS_CA_BUNDLE does not apply to it.
	HTTPClient *http.Client
	// Log receives the SDK's own messages at debug level (nil: dropped).
	Log *slog.Logger
	// Middleware is added to every request's middleware stack (to count requests,
	// for example).
	Middleware []func(*middleware.Stack) error
}

// api is the part of the S3 client this package uses, so that tests can fake it.
type api interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
}

var _ api = (*s3.Client)(nil)

// Store is a store.Store in one S3 bucket. Its methods are safe for concurrent use.
type Store struct {
	api    api
	bucket string
	// where names the server in messages: the endpoint URL, or "AWS S3".
	where string
	// host is the custom endpoint's host (for String), or "".
	host string
}

var _ store.Store = (*Store)(nil)

// Open connects to cfg.Bucket and checks, with a HeadBucket, that it exists and that
// the credentials are accepted. Its errors are single sentences: a missing bucket wraps
// store.ErrNotFound, refused credentials and bad settings wrap store.ErrPermanent, an
// unreachable endpoint is left transient.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" || strings.ContainsAny(cfg.Bucket, "/\\?#@ ") {
		return nil, store.Errorf(store.ErrPermanent, nil, "s3 target: %q is not a bucket name", cfg.Bucket)
	}
	s := &Store{bucket: cfg.Bucket, where: "AWS S3"}
	var endpoint string
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		switch {
		case err != nil:
			// Not echoed: it might hold a secret.
			return nil, store.Errorf(store.ErrPermanent, nil, "the S3 endpoint is not a valid URL")
		case u.User != nil:
			return nil, store.Errorf(store.ErrPermanent, nil,
				"the S3 endpoint %s may not hold credentials: they come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your AWS profile", u.Host)
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
			// Echoed without its query, which might hold a secret.
			return nil, store.Errorf(store.ErrPermanent, nil, "the S3 endpoint %q is not an http(s) URL like https://host:port",
				u.Scheme+"://"+u.Host+u.Path)
		}
		endpoint = strings.TrimRight(u.String(), "/")
		s.where, s.host = endpoint, u.Host
	}

	loadOpts := []func(*config.LoadOptions) error{
		// The SDK's own messages (such as "WARN falling back to IMDSv1" while it looks
		// for credentials) would reach stderr before stump's one sentence: they go to
		// the debug log instead.
		config.WithLogger(sdkLogger{cfg.Log}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.HTTPClient == nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(NewHTTPClient()))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, store.Errorf(store.ErrPermanent, err, "loading the AWS configuration (environment and shared files): %v", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open %s: %w", s, ctx.Err())
		}
		return nil, store.Errorf(store.ErrPermanent, err,
			"no AWS credentials found for %s (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure an AWS profile)", s)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// Only the checksums an operation requires (and the SHA-256 Put sends
			// itself): many S3-compatible servers reject the SDK's default trailing
			// CRC32 over https.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		o.UsePathStyle = cfg.PathStyle
		if cfg.HTTPClient != nil {
			// Set here, not in LoadDefaultConfig, which refuses a plain *http.Client
			// when AWS_CA_BUNDLE is set; the credential providers keep their own.
			o.HTTPClient = cfg.HTTPClient
		}
		o.APIOptions = append(o.APIOptions, addWriteDeadline)
		o.APIOptions = append(o.APIOptions, cfg.Middleware...)
	})
	s.api = client
	if err := s.checkBucket(ctx, awsCfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

// maxIdleConns is how many idle connections to the server the client keeps: more
// than any sensible number of parallel requests (publish.Deployer.Workers), so that
// every request reuses a connection. The SDK's default keeps 10 per host: with more
// requests in flight, each one past the tenth closed its connection when it ended and
// the next one dialed a new one (on a first deploy at 64 parallel requests, most of
// them), costing a TCP handshake and a server-side connection setup per request.
const maxIdleConns = 512

// NewHTTPClient is the HTTP client Open uses when Config.HTTPClient is nil: the SDK's,
// with bounded waits (no request may hang forever: a stalled server would keep the
// lease alive; bodies stream as long as they flow) and enough idle connections kept
// for every parallel request to reuse one. Tests that wrap the transport start from
// its GetTransport().
func NewHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = 60 * time.Second
			tr.TLSHandshakeTimeout = 10 * time.Second
			tr.MaxIdleConns = maxIdleConns
			tr.MaxIdleConnsPerHost = maxIdleConns
		})
}

// sdkLogger passes the SDK's log messages to slog at debug level.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	if l.log != nil {
		l.log.Debug("aws sdk: "+fmt.Sprintf(format, v...), "class", string(c))
	}
}

// newStore makes a Store over a (fake) client, for tests.
func newStore(c api, bucket, where string) *Store {
	return &Store{api: c, bucket: bucket, where: where}
}

// String is "s3://bucket", followed by the endpoint's host when it is not AWS.
func (s *Store) String() string {
	if s.host != "" {
		return "s3://" + s.bucket + " on " + s.host
	}
	return "s3://" + s.bucket
}

// Bucket is the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// begin checks key and ctx before an operation.
func begin(ctx context.Context, op, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// Get opens an object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	if err := begin(ctx, "get", key); err != nil {
		return nil, store.Info{}, err
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, store.Info{}, s.wrap("get", key, err)
	}
	info := store.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
		Meta:    meta(out.ContentType, out.CacheControl, out.WebsiteRedirectLocation, out.Metadata),
	}
	return out.Body, info, nil
}

// Head returns an object's Info.
func (s *Store) Head(ctx context.Context, key string) (store.Info, error) {
	if err := begin(ctx, "head", key); err != nil {
		return store.Info{}, err
	}
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return store.Info{}, s.wrap("head", key, err)
	}
	return store.Info{
		SHA256:  checksumHex(out.ChecksumSHA256),
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
		Meta:    meta(out.ContentType, out.CacheControl, out.WebsiteRedirectLocation, out.Metadata),
	}, nil
}

// checksumHex turns the base64 x-amz-checksum-sha256 of a whole object into hex; ""
// when absent or not a whole-object SHA-256 (a multipart checksum ends in -N).
func checksumHex(b64 *string) string {
	v := aws.ToString(b64)
	if v == "" || strings.Contains(v, "-") {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(b)
}

// meta makes a store.Meta of an object's headers, with lower-case metadata keys.
func meta(contentType, cacheControl, redirect *string, md map[string]string) store.Meta {
	m := store.Meta{
		ContentType:      aws.ToString(contentType),
		CacheControl:     aws.ToString(cacheControl),
		RedirectLocation: aws.ToString(redirect),
	}
	if len(md) > 0 {
		m.Metadata = make(map[string]string, len(md))
		for k, v := range md {
			m.Metadata[strings.ToLower(k)] = v
		}
	}
	return m
}

// remaining is the number of bytes from body's position to its end; it leaves the
// position where it was.
func remaining(body io.Seeker) (int64, error) {
	cur, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	end, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if _, err := body.Seek(cur, io.SeekStart); err != nil {
		return 0, err
	}
	return end - cur, nil
}

// Put writes an object with PutObject. The body's SHA-256, when given, is sent as the
// x-amz-checksum-sha256 header (and, over plain http, as the signed payload hash), so
// the server rejects other bytes (BadDigest, XAmzContentSHA256Mismatch). A
// conditional Put is sent once, without the SDK's retries (see below).
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	if err := begin(ctx, "put", key); err != nil {
		return "", err
	}
	var sum []byte
	if opts.SHA256 != "" {
		b, err := hex.DecodeString(opts.SHA256)
		if err != nil || len(b) != 32 {
			return "", store.Errorf(store.ErrPermanent, nil, "put %s: SHA256 %q is not 64 hex digits", key, opts.SHA256)
		}
		sum = b
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: IfNoneMatch and IfMatch together", key)
	}
	if body == nil {
		body = strings.NewReader("")
	}
	n, err := remaining(body)
	if err != nil {
		return "", fmt.Errorf("put %s: measure body: %w", key, err)
	}
	if size >= 0 && n != size {
		return "", store.Errorf(store.ErrPermanent, nil, "put %s: the body has %d bytes, not the %d announced", key, n, size)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(n),
	}
	in.ContentType, in.CacheControl, in.WebsiteRedirectLocation, in.Metadata = metaInput(opts.Meta)
	if sum != nil {
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(sum))
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(quote(opts.IfMatch))
	}
	var optFns []func(*s3.Options)
	if sum != nil {
		hexSum := hex.EncodeToString(sum)
		optFns = append(optFns, func(o *s3.Options) { o.APIOptions = append(o.APIOptions, knownPayloadHash(hexSum)) })
	}
	if opts.IfNoneMatch || opts.IfMatch != "" {
		// One attempt only: when an attempt's answer is lost, the next one fails its
		// condition because of it, and only the caller's retries (store.Retry) know to
		// call that uncertain.
		optFns = append(optFns, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
	}
	out, err := s.api.PutObject(ctx, in, optFns...)
	if err != nil {
		if opts.IfMatch != "" && isNotFound(err) {
			// S3 answers If-Match on a missing key with 404 NoSuchKey.
			return "", store.Errorf(store.ErrPrecondition, err, "put %s: no such object to replace (IfMatch %s)", key, opts.IfMatch)
		}
		return "", s.wrap("put", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// knownPayloadHash hands the SigV4 signer the SHA-256 of the body that the caller
// already has (PutOptions.SHA256, lower-case hex, which is what SigV4 signs), so that
// the SDK does not read and hash every body a second time before sending it: it does
// so for plain-http endpoints (an S3-compatible server on a private network or on
// loopback). Over https the SDK sends the payload unsigned and this changes nothing.
// The server still checks the bytes against the x-amz-checksum-sha256 header (and,
// over http, against the signed hash too).
func knownPayloadHash(hexSum string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("StumpKnownPayloadHash", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok && !req.IsHTTPS() {
				ctx = v4.SetPayloadHash(ctx, hexSum)
			}
			return next.HandleFinalize(ctx, in)
		}), payloadHashMiddleware, middleware.Before)
	}
}

// payloadHashMiddleware is the ID of the SDK's middleware that computes the payload
// hash for SigV4 (aws/signer/v4 computePayloadHashMiddlewareID); it skips the work when
// the hash is already in the context.
const payloadHashMiddleware = "ComputePayloadHash"

// metaInput is m as the optional fields of a PutObject or CopyObject request.
func metaInput(m store.Meta) (contentType, cacheControl, redirect *string, md map[string]string) {
	if len(m.Metadata) > 0 {
		md = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			md[strings.ToLower(k)] = v
		}
	}
	return optional(m.ContentType), optional(m.CacheControl), optional(m.RedirectLocation), md
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// quote adds the quotes a caller may have dropped from an ETag.
func quote(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`) {
		return etag
	}
	return `"` + etag + `"`
}

// Copy copies src to dst on the server (CopyObject), replacing the Meta: with the
// REPLACE directive, so that a redirect location the source has is not kept either.
// One CopyObject copies at most 5 GiB; the server refuses larger objects
// (ErrPermanent).
func (s *Store) Copy(ctx context.Context, src, dst string, opts store.PutOptions) error {
	if err := begin(ctx, "copy", src); err != nil {
		return err
	}
	if err := store.CheckKey(dst); err != nil {
		return err
	}
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(dst),
		CopySource:        aws.String(copySource(s.bucket, src)),
		MetadataDirective: types.MetadataDirectiveReplace,
	}
	in.ContentType, in.CacheControl, in.WebsiteRedirectLocation, in.Metadata = metaInput(opts.Meta)
	if _, err := s.api.CopyObject(ctx, in); err != nil {
		if isNotFound(err) {
			return store.Errorf(store.ErrNotFound, err, "copy %s to %s: no such object %s", src, dst, src)
		}
		return s.wrap("copy "+src+" to", dst, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: the bucket and the key, every byte of the
// key but unreserved characters and "/" percent-encoded (as botocore does; "+" too,
// which some servers would read as a space).
func copySource(bucket, key string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(bucket + "/")
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// Delete removes keys with DeleteObjects, at most 1000 a request (the AWS limit).
// It stops at the first request that fails; the keys of the batches before are gone.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	seen := make(map[string]bool, len(keys))
	uniq := make([]string, 0, len(keys))
	for _, key := range keys {
		if err := begin(ctx, "delete", key); err != nil {
			return err
		}
		if !seen[key] {
			seen[key] = true
			uniq = append(uniq, key)
		}
	}
	for len(uniq) > 0 {
		batch := uniq[:min(len(uniq), maxDeleteBatch)]
		uniq = uniq[len(batch):]
		if err := s.deleteBatch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) deleteBatch(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, key := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(key)}
	}
	out, err := s.api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		what := keys[0]
		if len(keys) > 1 {
			what = fmt.Sprintf("%s and %d more keys", keys[0], len(keys)-1)
		}
		return s.wrap("delete", what, err)
	}
	return s.deleteErrors(out.Errors, len(keys))
}

// List calls fn for every object whose key starts with prefix, in the lexical order
// S3 lists them. Info.Meta is not filled in (listing does not return it).
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: optional(prefix)}
	p := s3.NewListObjectsV2Paginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap("list", prefix+"*", err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if store.CheckKey(key) != nil {
				continue // a key no store key can name ("folder/" markers)
			}
			info := store.Info{Key: key, Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), ModTime: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}
