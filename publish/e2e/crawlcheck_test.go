package e2e

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stump-dev/stump/internal/testenv"
)

// TestCrawlerFindsBrokenReferences checks the checker: on a published site, a deleted
// asset and an asset whose bytes do not match its fingerprint are reported, both by the
// bucket crawl and by the crawl of the website endpoint.
func TestCrawlerFindsBrokenReferences(t *testing.T) {
	env := testenv.S3(t)
	bucket := testenv.NewBucket(t, env)
	mustStump(t, wsV1, cliEnv(env), "publish", "--site", "k", "--target", targetURL(bucket, env.Endpoint), "--no-build")
	if pages := checkLive(t, env, bucket, "after the publish"); pages < 7 {
		t.Fatalf("the crawl read %d pages, want every page of the site", pages)
	}
	ctx := context.Background()
	c := env.Client()
	keys, err := listLive(ctx, c, bucket)
	if err != nil {
		t.Fatal(err)
	}
	var css, logo string
	for k := range keys {
		switch {
		case strings.HasPrefix(k, "css/site.") && fingerprintRE.MatchString(k):
			css = k
		case strings.HasPrefix(k, "images/logo.") && fingerprintRE.MatchString(k):
			logo = k
		}
	}
	if css == "" || logo == "" {
		t.Fatalf("no fingerprinted CSS and logo among %v", keys)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(css)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(logo), Body: strings.NewReader("<svg/>"), ContentType: aws.String("image/svg+xml")}); err != nil {
		t.Fatal(err)
	}
	want := func(how string, broken []string) {
		t.Helper()
		var gone, corrupt bool
		for _, b := range broken {
			gone = gone || strings.Contains(b, "/"+css)
			corrupt = corrupt || strings.Contains(b, "/"+logo) && strings.Contains(b, "not the hash in its name")
		}
		if !gone || !corrupt {
			t.Errorf("%s: missing asset reported: %v, corrupt asset reported: %v; all reports: %q", how, gone, corrupt, broken)
		}
	}
	_, broken, err := crawlBucket(ctx, c, bucket)
	if err != nil {
		t.Fatal(err)
	}
	want("bucket crawl", broken)
	if env.Website == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("the S3 test server has no website endpoint (scripts/services.sh starts one)")
		}
		t.Skip("the server has no website endpoint")
	}
	testenv.EnableWebsite(t, env, bucket, "404.html")
	w := &webCrawl{client: env.WebsiteClient(), url: func(p string) string { return env.WebsiteURL(bucket, p) },
		seed: func(ctx context.Context) ([]string, error) { return livePages(ctx, c, bucket) }}
	pages, broken, err := w.crawl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 7 {
		t.Errorf("the website crawl read %d pages, want every page of the site", pages)
	}
	want("website crawl", broken)
}
