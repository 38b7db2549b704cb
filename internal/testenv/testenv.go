// Package testenv gives tests the real servers they talk to on loopback. Today that is
// an S3-compatible server, versitygw (posix backend), with its static website endpoint.
//
// Where the server comes from, in this order:
//
//  1. scripts/test (through scripts/services.sh) builds versitygw into .stump/bin,
//     starts one instance for the whole run and exports STUMP_TEST_S3_ENDPOINT,
//     STUMP_TEST_S3_WEBSITE, STUMP_TEST_S3_WEBSITE_DOMAIN, AWS_ACCESS_KEY_ID,
//     AWS_SECRET_ACCESS_KEY and AWS_REGION. S3 returns those.
//  2. Otherwise (a plain `go test`), S3 starts versitygw itself, from
//     <repo>/.stump/bin/versitygw or else from PATH, on free loopback ports with a fresh
//     root folder. A package whose TestMain calls Main shares one instance among all
//     its tests, stopped when the tests end; elsewhere every call of S3 starts its own
//     instance (about 0.15 s) that stops when the test ends. Each started server also
//     dies with the test binary (Linux: parent-death signal), so none outlives a crash.
//  3. No versitygw at all: the test is skipped with the reason, unless CI=true, where a
//     missing service fails the test (CI must never pass by skipping).
//
// Buckets: NewBucket creates a uniquely named bucket per call, so tests can share a
// server and run in parallel. Buckets are not deleted after the test: the server's
// folder goes away with the server.
//
// Packages whose code loads the AWS SDK's default configuration call IsolateAWS in
// their TestMain, before Main. Tests that run the stump CLI as a subprocess build it
// with BuildStump and give it CLIEnv (or CLIBaseEnv) as its environment.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The environment variables that scripts/services.sh exports and S3 reads.
const (
	EnvS3Endpoint      = "STUMP_TEST_S3_ENDPOINT"       // http://127.0.0.1:PORT, the S3 API
	EnvS3Website       = "STUMP_TEST_S3_WEBSITE"        // http://127.0.0.1:PORT, the website endpoint
	EnvS3WebsiteDomain = "STUMP_TEST_S3_WEBSITE_DOMAIN" // bucket B answers there as Host B.<domain>
)

// Fixed credentials of a server that testenv starts (same values as scripts/services.sh).
// They protect nothing: the server listens on 127.0.0.1 only and lives as long as a test.
const (
	TestAccessKey = "stump-test-access"
	TestSecretKey = "stump-test-secret-key"
	TestRegion    = "us-east-1"
	websiteDomain = "localhost"
)

// S3Env tells how to reach the test S3 server.
type S3Env struct {
	Endpoint  string // S3 API base URL, http://127.0.0.1:PORT; use path-style addressing
	AccessKey string
	SecretKey string
	Region    string

	// Website is the base URL to connect to for the static website endpoint
	// (http://127.0.0.1:PORT), or "" when the server has none. It routes by Host header:
	// bucket B is served as Host "B.<WebsiteDomain>" (B.localhost:PORT), once B has a
	// website configuration and public read access (see EnableWebsite). Go does not
	// resolve *.localhost: use WebsiteClient, which connects to Website whatever the
	// URL's host, with WebsiteURL.
	Website       string
	WebsiteDomain string
}

// S3 returns the test S3 server, starting one if the environment names none. It skips
// the test when no server can be had, or fails it under CI=true. See the package doc.
func S3(t testing.TB) S3Env {
	t.Helper()
	if endpoint := os.Getenv(EnvS3Endpoint); endpoint != "" {
		env := S3Env{
			Endpoint:      strings.TrimRight(endpoint, "/"),
			AccessKey:     os.Getenv("AWS_ACCESS_KEY_ID"),
			SecretKey:     os.Getenv("AWS_SECRET_ACCESS_KEY"),
			Region:        os.Getenv("AWS_REGION"),
			Website:       strings.TrimRight(os.Getenv(EnvS3Website), "/"),
			WebsiteDomain: os.Getenv(EnvS3WebsiteDomain),
		}
		if env.AccessKey == "" || env.SecretKey == "" {
			t.Fatalf("%s is set (%s) but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not", EnvS3Endpoint, endpoint)
		}
		if env.Region == "" {
			env.Region = TestRegion
		}
		if env.Website != "" && env.WebsiteDomain == "" {
			env.WebsiteDomain = websiteDomain
		}
		return env
	}

	bin, why := findVersitygw()
	if bin == "" {
		unavailable(t, why)
	}
	if note := versionNote(bin); note != "" {
		t.Log(note)
	}
	if mainActive.Load() {
		env, err := sharedServer(bin)
		if err != nil {
			t.Fatalf("starting versitygw: %v", err)
		}
		return env
	}
	srv, err := startVersitygw(bin, t.TempDir(), "")
	if err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	t.Cleanup(func() {
		srv.stop()
		if t.Failed() {
			t.Logf("versitygw log (%s), last lines:\n%s", srv.logPath, srv.logTail())
		}
	})
	return srv.env
}

// unavailable skips the test, or fails it in CI, where a missing service is a failure.
func unavailable(t testing.TB, why string) {
	t.Helper()
	msg := "no S3 server for this test: " + why + "; run ./scripts/test, which installs and " +
		"starts versitygw, or set " + EnvS3Endpoint + " and the AWS_* credentials"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing service fails the test)")
		return
	}
	t.Skip(msg)
}

// AWSConfig returns an SDK configuration with the server's static credentials and
// endpoint. It reads no shared AWS files and no other environment.
func (e S3Env) AWSConfig() aws.Config {
	return aws.Config{
		Region:       e.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(e.AccessKey, e.SecretKey, ""),
		BaseEndpoint: aws.String(e.Endpoint),
	}
}

// Client returns an S3 client for the server: path-style addressing, custom endpoint.
// opts adjust it further (for example, to add middleware that counts requests).
func (e S3Env) Client(opts ...func(*s3.Options)) *s3.Client {
	opts = append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, opts...)
	return s3.NewFromConfig(e.AWSConfig(), opts...)
}

// WebsiteURL returns the website endpoint's URL of path in bucket, like
// http://BUCKET.localhost:PORT/path. Fetch it with WebsiteClient. It is "" when the
// server has no website endpoint.
func (e S3Env) WebsiteURL(bucket, path string) string {
	if e.Website == "" {
		return ""
	}
	u, err := url.Parse(e.Website)
	if err != nil {
		return ""
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return u.Scheme + "://" + bucket + "." + e.WebsiteDomain + ":" + u.Port() + path
}

// WebsiteClient returns an HTTP client that sends every request to the website
// endpoint's address, keeping the URL's host as the Host header (which names the
// bucket). It does not follow redirects, so that tests see them.
func (e S3Env) WebsiteClient() *http.Client {
	return addrClient(strings.TrimPrefix(strings.TrimPrefix(e.Website, "http://"), "https://"))
}

// addrClient returns an HTTP client that connects to addr (host:port) whatever the
// URL's host, which it sends as the Host header; it does not follow redirects and asks
// for no compression.
func addrClient(addr string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewBucket creates a bucket with a name unique to this call and returns the name.
func NewBucket(t testing.TB, env S3Env) string {
	t.Helper()
	name := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s at %s: %v", name, env.Endpoint, err)
	}
	return name
}

// EnableWebsite makes bucket a public static website on the website endpoint: index
// document index.html, error document errorDoc ("" for none), and a bucket policy that
// lets anyone read its objects (the website endpoint serves public objects only).
func EnableWebsite(t testing.TB, env S3Env, bucket, errorDoc string) {
	t.Helper()
	if env.Website == "" {
		t.Fatalf("the S3 server at %s has no website endpoint", env.Endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := env.Client()
	cfg := &types.WebsiteConfiguration{IndexDocument: &types.IndexDocument{Suffix: aws.String("index.html")}}
	if errorDoc != "" {
		cfg.ErrorDocument = &types.ErrorDocument{Key: aws.String(errorDoc)}
	}
	if _, err := c.PutBucketWebsite(ctx, &s3.PutBucketWebsiteInput{Bucket: aws.String(bucket), WebsiteConfiguration: cfg}); err != nil {
		t.Fatalf("PutBucketWebsite %s: %v", bucket, err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",`+
		`"Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}`, bucket)
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatalf("PutBucketPolicy %s: %v", bucket, err)
	}
}

// bucketName makes a valid, unique bucket name (3-63 of [a-z0-9-]) from a test name.
func bucketName(testName string) string {
	var b strings.Builder
	dash := true // no leading dash, no runs of dashes
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 36 {
			break
		}
	}
	base := strings.Trim(b.String(), "-")
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	if base == "" {
		return "stump-" + hex.EncodeToString(rnd[:])
	}
	return "stump-" + base + "-" + hex.EncodeToString(rnd[:])
}
