package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stump-dev/stump/internal/testenv"
)

// refRE finds href and src attribute values in HTML.
var refRE = regexp.MustCompile(`(?i)\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')`)

// fingerprintRE matches a fingerprinted asset's name: its SHA-256 before the extension.
var fingerprintRE = regexp.MustCompile(`\.([0-9a-f]{64})\.[A-Za-z0-9]+$`)

// rootRefs returns the root-relative references of an HTML page as URL paths (query
// and fragment dropped), each once, sorted. Absolute URLs, protocol-relative URLs,
// fragments and relative references are not the live tree's concern here.
func rootRefs(page []byte) []string {
	seen := map[string]bool{}
	for _, m := range refRE.FindAllSubmatch(page, -1) {
		v := string(m[1])
		if v == "" {
			v = string(m[2])
		}
		v = html.UnescapeString(strings.TrimSpace(v))
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
			continue
		}
		if i := strings.IndexAny(v, "?#"); i >= 0 {
			v = v[:i]
		}
		if p, err := url.PathUnescape(v); err == nil {
			v = p
		}
		seen[v] = true
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// keyOf is the object key a URL path is served from: pretty URLs /x/ are x/index.html.
func keyOf(urlPath string) string {
	if strings.HasSuffix(urlPath, "/") {
		urlPath += "index.html"
	}
	return strings.TrimPrefix(urlPath, "/")
}

// isPage reports whether a key is an HTML page.
func isPage(key string) bool { return strings.HasSuffix(key, ".html") }

// fingerprintOK checks a fingerprinted asset's bytes against the hash in its name.
func fingerprintOK(key string, body []byte) error {
	m := fingerprintRE.FindStringSubmatch(key)
	if m == nil {
		return nil
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != m[1] {
		return fmt.Errorf("%s holds %d bytes hashing to %s, not the hash in its name", key, len(body), got[:12])
	}
	return nil
}

// listLive lists the live tree of bucket: every key outside _stump/, with its size.
func listLive(ctx context.Context, c *s3.Client, bucket string) (map[string]int64, error) {
	keys := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if strings.HasPrefix(k, "_stump/") {
				continue
			}
			keys[k] = aws.ToInt64(o.Size)
		}
	}
	return keys, nil
}

// listAll lists every key of bucket, _stump/ included.
func listAll(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, *s3.GetObjectOutput, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

func isNoSuchKey(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}

// crawlBucket reads the live tree straight from the bucket (ListObjectsV2, GetObject)
// and returns how many pages it read and every root-relative reference of a page that
// names no live object, or a fingerprinted asset whose bytes do not match its name.
// Each page is read before the objects it names are looked up (a reference missing
// from the listing is looked up again with HeadObject), so a deploy running meanwhile
// cannot cause false reports.
func crawlBucket(ctx context.Context, c *s3.Client, bucket string) (pages int, broken []string, err error) {
	keys, err := listLive(ctx, c, bucket)
	if err != nil {
		return 0, nil, err
	}
	checked := map[string]error{}
	exists := func(key string) (bool, error) {
		if _, ok := keys[key]; ok {
			return true, nil
		}
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			return true, nil
		}
		if isNoSuchKey(err) {
			return false, nil
		}
		return false, err
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if !isPage(k) {
			continue
		}
		body, _, err := getObject(ctx, c, bucket, k)
		if isNoSuchKey(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return pages, broken, fmt.Errorf("get %s: %w", k, err)
		}
		pages++
		for _, ref := range rootRefs(body) {
			key := keyOf(ref)
			if prev, ok := checked[key]; ok {
				if prev != nil {
					broken = append(broken, fmt.Sprintf("%s names %s: %v", k, ref, prev))
				}
				continue
			}
			ok, err := exists(key)
			if err != nil {
				return pages, broken, fmt.Errorf("head %s: %w", key, err)
			}
			if !ok && path.Ext(key) == "" {
				// /x without a slash: website hosting serves x/index.html.
				ok, err = exists(key + "/index.html")
				if err != nil {
					return pages, broken, err
				}
			}
			var problem error
			if !ok {
				problem = errors.New("no such live object")
			} else if fingerprintRE.MatchString(key) {
				b, _, err := getObject(ctx, c, bucket, key)
				if err != nil {
					return pages, broken, fmt.Errorf("get %s: %w", key, err)
				}
				problem = fingerprintOK(key, b)
			}
			checked[key] = problem
			if problem != nil {
				broken = append(broken, fmt.Sprintf("%s names %s: %v", k, ref, problem))
			}
		}
	}
	return pages, broken, nil
}

// checkLive crawls the bucket once and fails the test on any broken reference. It
// returns the number of pages read.
func checkLive(t testing.TB, env testenv.S3Env, bucket, when string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pages, broken, err := crawlBucket(ctx, env.Client(), bucket)
	if err != nil {
		t.Fatalf("%s: crawling the live tree: %v", when, err)
	}
	for _, b := range broken {
		t.Errorf("%s: broken reference in the live tree: %s", when, b)
	}
	return pages
}

// crawler crawls a live site over and over in a goroutine until stopped, recording
// every broken reference it meets. It crawls the website endpoint (index documents,
// like a visitor) when the server has one, else the bucket.
type crawler struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	passes int
	pages  int
	broken []string
	errs   []string
}

// startCrawler starts a crawler of bucket; stop it with stop. The bucket gets a website
// configuration and public read access (testenv.EnableWebsite) when the server has a
// website endpoint.
func startCrawler(t testing.TB, env testenv.S3Env, bucket string) *crawler {
	t.Helper()
	crawl := func(ctx context.Context) (int, []string, error) { return crawlBucket(ctx, env.Client(), bucket) }
	if env.Website != "" {
		testenv.EnableWebsite(t, env, bucket, "404.html")
		c := env.Client()
		w := &webCrawl{client: env.WebsiteClient(), url: func(p string) string { return env.WebsiteURL(bucket, p) },
			seed: func(ctx context.Context) ([]string, error) { return livePages(ctx, c, bucket) }}
		crawl = w.crawl
	}
	return runCrawler(crawl)
}

// runCrawler runs crawl over and over in a goroutine until stopped (see crawler.stop),
// 20 ms apart, adding up what each pass found.
func runCrawler(crawl func(ctx context.Context) (pages int, broken []string, err error)) *crawler {
	ctx, cancel := context.WithCancel(context.Background())
	cr := &crawler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(cr.done)
		for ctx.Err() == nil {
			pages, broken, err := crawl(ctx)
			if ctx.Err() != nil {
				return // a pass cut short by stop counts for nothing
			}
			cr.mu.Lock()
			cr.passes++
			cr.pages += pages
			cr.broken = append(cr.broken, broken...)
			if err != nil {
				cr.errs = append(cr.errs, err.Error())
			}
			cr.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return cr
}

// stop lets the crawler finish two more passes (so the final tree is crawled too), ends
// it, and fails the test on any broken reference or crawl error seen, or when no pass
// read a page.
func (cr *crawler) stop(t testing.TB) {
	t.Helper()
	// Let a pass finish after the last change, so the final state is crawled too.
	cr.mu.Lock()
	target := cr.passes + 2
	cr.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cr.mu.Lock()
		n := cr.passes
		cr.mu.Unlock()
		if n >= target {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cr.cancel()
	<-cr.done
	cr.mu.Lock()
	defer cr.mu.Unlock()
	for _, b := range uniqStrings(cr.broken) {
		t.Errorf("crawler (during the deploys): broken reference: %s", b)
	}
	for _, e := range uniqStrings(cr.errs) {
		t.Errorf("crawler (during the deploys): %s", e)
	}
	if cr.pages == 0 {
		t.Errorf("the crawler read no page in %d passes", cr.passes)
	}
	t.Logf("crawler: %d passes, %d pages read", cr.passes, cr.pages)
}

func uniqStrings(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// webCrawl crawls a site on the website endpoint like a visitor, from / and the pages
// seed lists: every page's root-relative references are fetched after the page, pages
// among them are crawled in turn. 2xx and 3xx answers resolve; a 404 is a broken
// reference.
type webCrawl struct {
	client *http.Client
	url    func(path string) string
	seed   func(ctx context.Context) ([]string, error)
	// strict: every seed must answer 200 (the seeds are pages known to be live, not a
	// listing that a deploy may have changed since).
	strict bool
}

func (w *webCrawl) get(ctx context.Context, p string) (int, string, []byte, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url(p), nil)
		if err != nil {
			return 0, "", nil, err
		}
		resp, err := w.client.Do(req)
		if err != nil {
			lastErr = err
		} else {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode < 500 {
				return resp.StatusCode, resp.Header.Get("Content-Type"), b, nil
			}
			lastErr = fmt.Errorf("GET %s: %s", p, resp.Status)
			if err != nil {
				lastErr = err
			}
		}
		if ctx.Err() != nil {
			return 0, "", nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, "", nil, lastErr
}

func (w *webCrawl) crawl(ctx context.Context) (pages int, broken []string, err error) {
	seeds := []string{"/"}
	if w.seed != nil {
		more, err := w.seed(ctx)
		if err != nil {
			return 0, nil, err
		}
		seeds = append(seeds, more...)
	}
	type item struct {
		p    string
		body []byte
	}
	var queue []item
	seen := map[string]bool{}
	for _, p := range seeds {
		if seen[p] {
			continue
		}
		seen[p] = true
		status, ctype, body, err := w.get(ctx, p)
		if err != nil {
			return 0, nil, err
		}
		if w.strict && status != http.StatusOK {
			broken = append(broken, fmt.Sprintf("page %s: HTTP %d", p, status))
			continue
		}
		// A seed may be gone (deleted since the listing) or not live yet (the first
		// deploy): only pages that answer are crawled.
		if status == http.StatusOK && strings.HasPrefix(ctype, "text/html") {
			queue = append(queue, item{p, body})
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		pages++
		for _, ref := range rootRefs(it.body) {
			if seen[ref] {
				continue
			}
			seen[ref] = true
			status, ctype, b, err := w.get(ctx, ref)
			if err != nil {
				return pages, broken, err
			}
			switch {
			case status == http.StatusNotFound:
				broken = append(broken, fmt.Sprintf("%s names %s: 404 on the website endpoint", it.p, ref))
			case status >= 300 && status < 400:
			case status != http.StatusOK:
				broken = append(broken, fmt.Sprintf("%s names %s: HTTP %d", it.p, ref, status))
			case strings.HasPrefix(ctype, "text/html"):
				queue = append(queue, item{ref, b})
			default:
				if err := fingerprintOK(keyOf(ref), b); err != nil {
					broken = append(broken, fmt.Sprintf("%s names %s: %v", it.p, ref, err))
				}
			}
		}
	}
	return pages, broken, nil
}

// livePages lists the URL paths of the HTML pages in bucket (/x/ for x/index.html).
func livePages(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	keys, err := listLive(ctx, c, bucket)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range keys {
		if !isPage(k) {
			continue
		}
		if k == "index.html" || strings.HasSuffix(k, "/index.html") {
			out = append(out, "/"+strings.TrimSuffix(k, "index.html"))
		} else {
			out = append(out, "/"+k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// snapshot is every live object's bytes and headers, to compare a tree before and after.
type objSnap struct {
	Sum, ContentType, CacheControl, Redirect string
	Meta                                     string
	Size                                     int64
}

func snapshotLive(t testing.TB, env testenv.S3Env, bucket string) map[string]objSnap {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := env.Client()
	keys, err := listLive(ctx, c, bucket)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]objSnap{}
	for k := range keys {
		b, o, err := getObject(ctx, c, bucket, k)
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		sum := sha256.Sum256(b)
		var meta []string
		for mk, mv := range o.Metadata {
			meta = append(meta, strings.ToLower(mk)+"="+mv)
		}
		sort.Strings(meta)
		out[k] = objSnap{
			Sum: hex.EncodeToString(sum[:]), ContentType: aws.ToString(o.ContentType), CacheControl: aws.ToString(o.CacheControl),
			Redirect: aws.ToString(o.WebsiteRedirectLocation), Meta: strings.Join(meta, " "), Size: int64(len(b)),
		}
	}
	return out
}

// liveBody reads one live object, failing the test if it is missing.
func liveBody(t testing.TB, env testenv.S3Env, bucket, key string) []byte {
	t.Helper()
	b, _, err := getObject(context.Background(), env.Client(), bucket, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}
