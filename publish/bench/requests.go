// Package bench measures what a publish costs on a real S3 server: wall time and the
// S3 requests it sends, by operation. The benchmark itself is TestPublishBench (run it
// with bench/publish.sh, or go test -tags bench -run TestPublishBench); this
// file holds the two request counters it uses:
//
//   - Transport, an http.RoundTripper for s3store.Config.HTTPClient, which counts the
//     HTTP requests that actually go out, classified by S3 operation from the method,
//     the query and the headers, with the bytes sent and received;
//   - Ops, an SDK middleware for s3store.Config.Middleware, which counts every attempt
//     of every operation by the SDK's own operation name.
//
// The two are counted independently, so the benchmark can check one against the other.
package bench

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// OpCount is what was counted for one operation.
type OpCount struct {
	// Requests sent (every attempt of a retried request counts).
	Requests int64
	// Failed counts answers with a status of 300 or more (a HEAD of a missing blob
	// answers 404, a conditional write that loses answers 412).
	Failed int64
	// BytesOut is the request bodies' size, BytesIn the response bodies' (as read).
	BytesOut, BytesIn int64
}

// Counts are counts by operation name ("PutObject", "CopyObject", ...).
type Counts map[string]OpCount

// Total is the number of requests of every operation.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v.Requests
	}
	return n
}

// Bytes is the bytes sent and received by every operation.
func (c Counts) Bytes() (out, in int64) {
	for _, v := range c {
		out += v.BytesOut
		in += v.BytesIn
	}
	return out, in
}

// Names lists the operations counted, sorted.
func (c Counts) Names() []string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

type opCounter struct {
	requests, failed, out, in atomic.Int64
}

// counter is a set of per-operation counters, safe for concurrent use.
type counter struct {
	mu  sync.Mutex
	ops map[string]*opCounter
}

func (c *counter) op(name string) *opCounter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]*opCounter{}
	}
	o := c.ops[name]
	if o == nil {
		o = &opCounter{}
		c.ops[name] = o
	}
	return o
}

func (c *counter) snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Counts{}
	for k, o := range c.ops {
		out[k] = OpCount{Requests: o.requests.Load(), Failed: o.failed.Load(), BytesOut: o.out.Load(), BytesIn: o.in.Load()}
	}
	return out
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = nil
}

// Transport counts the HTTP requests it sends, by S3 operation (see Classify), and the
// body bytes each way. Base sends them (http.DefaultTransport when nil).
type Transport struct {
	Base http.RoundTripper
	// PathStyle says the bucket is the first segment of the URL path (path-style
	// addressing), not the host name.
	PathStyle bool
	c         counter
}

// RoundTrip sends req and counts it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := t.c.op(Classify(req, t.PathStyle))
	o.requests.Add(1)
	if req.ContentLength > 0 {
		o.out.Add(req.ContentLength)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		o.failed.Add(1)
		return resp, err
	}
	if resp.StatusCode >= 300 {
		o.failed.Add(1)
	}
	if resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &o.in}
	}
	return resp, nil
}

// Counts returns the counts so far.
func (t *Transport) Counts() Counts { return t.c.snapshot() }

// Reset sets every count to zero.
func (t *Transport) Reset() { t.c.reset() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Classify names the S3 operation of an HTTP request from its method, query and
// headers: PUT with x-amz-copy-source is CopyObject, PUT of a key PutObject, GET with
// list-type=2 ListObjectsV2, POST ?delete DeleteObjects, HEAD of a key HeadObject, of
// the bucket HeadBucket, GET of a key GetObject. Anything else is "METHOD bucket?sub"
// or "METHOD key?sub" (for example "GET bucket?location").
func Classify(req *http.Request, pathStyle bool) string {
	q := req.URL.Query()
	hasKey := objectKey(req.URL, pathStyle) != ""
	switch req.Method {
	case http.MethodHead:
		if hasKey {
			return "HeadObject"
		}
		return "HeadBucket"
	case http.MethodGet:
		switch {
		case !hasKey && q.Get("list-type") == "2":
			return "ListObjectsV2"
		case !hasKey && len(q) == 0:
			return "ListObjects"
		case hasKey && onlyParams(q, "versionId", "partNumber", "x-id"):
			return "GetObject"
		}
	case http.MethodPut:
		switch {
		case hasKey && req.Header.Get("X-Amz-Copy-Source") != "":
			if q.Has("partNumber") {
				return "UploadPartCopy"
			}
			return "CopyObject"
		case hasKey && q.Has("partNumber") && q.Has("uploadId"):
			return "UploadPart"
		case hasKey && onlyParams(q, "x-id"):
			return "PutObject"
		case !hasKey && len(q) == 0:
			return "CreateBucket"
		}
	case http.MethodPost:
		switch {
		case !hasKey && q.Has("delete"):
			return "DeleteObjects"
		case hasKey && q.Has("uploads"):
			return "CreateMultipartUpload"
		case hasKey && q.Has("uploadId"):
			return "CompleteMultipartUpload"
		}
	case http.MethodDelete:
		switch {
		case hasKey && q.Has("uploadId"):
			return "AbortMultipartUpload"
		case hasKey && onlyParams(q, "versionId", "x-id"):
			return "DeleteObject"
		case !hasKey && len(q) == 0:
			return "DeleteBucket"
		}
	}
	what := "key"
	if !hasKey {
		what = "bucket"
	}
	subs := make([]string, 0, len(q))
	for k := range q {
		if k != "x-id" {
			subs = append(subs, k)
		}
	}
	sort.Strings(subs)
	if len(subs) > 0 {
		what += "?" + strings.Join(subs, "&")
	}
	return req.Method + " " + what
}

// objectKey is the key a request URL names ("" for a bucket-level request).
func objectKey(u *url.URL, pathStyle bool) string {
	p := strings.TrimPrefix(u.Path, "/")
	if pathStyle {
		_, key, _ := strings.Cut(p, "/")
		return key
	}
	return p
}

// onlyParams reports whether q has no parameters but these.
func onlyParams(q url.Values, allowed ...string) bool {
	for k := range q {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Ops counts SDK operation attempts by the SDK's operation name. Add Middleware to
// s3store.Config.Middleware.
type Ops struct{ c counter }

// Middleware adds the counter at the end of the deserialize step, the last one before
// the HTTP client, so it sees every attempt the retryer makes.
func (o *Ops) Middleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("stumpBenchCountOps",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			o.c.op(awsmiddleware.GetOperationName(ctx)).requests.Add(1)
			return next.HandleDeserialize(ctx, in)
		}), middleware.After)
}

// Counts returns the attempts so far by operation (only Requests is filled in).
func (o *Ops) Counts() Counts { return o.c.snapshot() }

// Reset sets every count to zero.
func (o *Ops) Reset() { o.c.reset() }
