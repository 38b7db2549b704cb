package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The tests of this package share one server, as Main documents; TestOwnInstance
// covers the other mode.
func TestMain(m *testing.M) { Main(m) }

// TestS3 proves the server works: a bucket, a put, a get, and the website endpoint.
func TestS3(t *testing.T) {
	env := S3(t)
	bucket := NewBucket(t, env)
	c := env.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	body := []byte("<h1>hello</h1>\n")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String("index.html"),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("text/html; charset=utf-8"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("index.html")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetObject body = %q, %v; want %q", got, err, body)
	}
	if ct := aws.ToString(out.ContentType); ct != "text/html; charset=utf-8" {
		t.Errorf("GetObject ContentType = %q", ct)
	}

	if env.Website == "" {
		t.Log("no website endpoint")
		return
	}
	EnableWebsite(t, env, bucket, "")
	resp, err := env.WebsiteClient().Get(env.WebsiteURL(bucket, "/"))
	if err != nil {
		t.Fatalf("website GET: %v", err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("website GET / = %d %q; want 200 %q", resp.StatusCode, got, body)
	}
}

func TestNewBucketNamesAreUnique(t *testing.T) {
	env := S3(t)
	a, b := NewBucket(t, env), NewBucket(t, env)
	if a == b {
		t.Fatalf("two buckets named %s", a)
	}
}

func TestBucketName(t *testing.T) {
	for _, name := range []string{"TestX", "TestPublish/Sub_Test#01", strings.Repeat("Long", 40), "/_/", ""} {
		got := bucketName(name)
		if len(got) < 3 || len(got) > 63 || strings.Contains(got, "--") || strings.HasSuffix(got, "-") {
			t.Errorf("bucketName(%q) = %q: not a valid bucket name", name, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("bucketName(%q) = %q: bad character %q", name, got, r)
			}
		}
	}
}

// TestOwnInstance covers the mode without Main: the test starts its own server.
func TestOwnInstance(t *testing.T) {
	t.Setenv(EnvS3Endpoint, "") // ignore a server that scripts/test started
	mainActive.Store(false)
	defer mainActive.Store(true)
	env := S3(t)
	if shared.srv != nil && env.Endpoint == shared.srv.env.Endpoint {
		t.Fatalf("got the shared server %s, want an own one", env.Endpoint)
	}
	bucket := NewBucket(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
}

// recorder stands in for a test to see whether unavailable skips or fails.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Fatal(...any)          { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestUnavailableSkipsExceptInCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	unavailable(r, "test")
	if !r.skipped || r.failed {
		t.Errorf("without CI: skipped=%v failed=%v, want a skip", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	unavailable(r, "test")
	if r.skipped || !r.failed {
		t.Errorf("with CI=true: skipped=%v failed=%v, want a failure", r.skipped, r.failed)
	}
}
