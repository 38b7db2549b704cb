package e2e

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fault is what the proxy does to one request.
type fault int

const (
	pass       fault = iota
	slowDown         // answer 503 SlowDown (S3's throttling), without asking the server
	internal         // answer 500 InternalError, without asking the server
	reset            // reset the connection before the request reaches the server
	hang             // never answer (the client times out); the server is not asked
	lostAnswer       // the server does the request; its answer is lost (a reset)
)

func (f fault) String() string {
	return [...]string{"pass", "503 SlowDown", "500 InternalError", "connection reset", "timeout", "lost answer"}[f]
}

// hangCap is the longest a "timeout" fault holds a request (then it is reset).
const hangCap = 60 * time.Second

// request is one request as the proxy's rules see it.
type request struct {
	Op  string // S3 operation; PutObject is split into PutBlob, PutLock, PutPointer, PutRecord
	Key string
	N   int // 1-based count of this Op among the requests seen so far
	Seq int // 1-based count of all requests
}

// faultProxy is a reverse proxy in front of the S3 server that injects faults into the
// requests its rule picks, and counts what it sees.
type faultProxy struct {
	URL string
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu       sync.Mutex
	rule     func(request) fault
	latency  func(request) time.Duration
	seq      int
	ops      map[string]int
	injected map[fault]int
	log      []string
}

func newFaultProxy(t testing.TB, endpoint string) *faultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ops: map[string]int{}, injected: map[fault]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the request is signed for the proxy's host
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// set replaces the fault rule (nil: no faults) and the latency (nil: none).
func (p *faultProxy) set(rule func(request) fault, latency func(request) time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.latency = rule, latency
}

// counts returns the requests seen by operation and the faults injected by kind.
func (p *faultProxy) counts() (ops map[string]int, injected map[fault]int, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops, injected = map[string]int{}, map[fault]int{}
	for k, v := range p.ops {
		ops[k] = v
	}
	for k, v := range p.injected {
		injected[k] = v
		total += v
	}
	return ops, injected, total
}

func (p *faultProxy) summary() string {
	ops, inj, _ := p.counts()
	var parts []string
	for k, v := range ops {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	var fs []string
	for k, v := range inj {
		fs = append(fs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(fs)
	return fmt.Sprintf("requests: %s; faults: %s", strings.Join(parts, " "), strings.Join(fs, " "))
}

// classify names the S3 operation of a path-style request, and its key.
func classify(r *http.Request) (op, bucket, key string) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ = strings.Cut(path, "/")
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		switch {
		case key == "" && q.Get("list-type") == "2":
			op = "ListObjectsV2"
		case key == "":
			op = "GetBucket"
		default:
			op = "GetObject"
		}
	case http.MethodHead:
		op = "HeadObject"
		if key == "" {
			op = "HeadBucket"
		}
	case http.MethodPut:
		switch {
		case r.Header.Get("X-Amz-Copy-Source") != "":
			op = "CopyObject"
		case key == "":
			op = "PutBucket"
		case strings.HasPrefix(key, "_stump/objects/"):
			op = "PutBlob"
		case key == "_stump/lock":
			op = "PutLock"
		case key == "_stump/current.json":
			op = "PutPointer"
		case strings.HasPrefix(key, "_stump/deploys/"):
			op = "PutRecord"
		default:
			op = "PutObject"
		}
	case http.MethodPost:
		op = "Post"
		if q.Has("delete") {
			op = "DeleteObjects"
		}
	case http.MethodDelete:
		op = "DeleteObject"
	default:
		op = r.Method
	}
	return op, bucket, key
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, _, key := classify(r)
	p.mu.Lock()
	p.seq++
	p.ops[op]++
	req := request{Op: op, Key: key, N: p.ops[op], Seq: p.seq}
	f := pass
	if p.rule != nil {
		f = p.rule(req)
	}
	var delay time.Duration
	if p.latency != nil {
		delay = p.latency(req)
	}
	if f != pass {
		p.injected[f]++
		p.log = append(p.log, fmt.Sprintf("#%d %s %s: %s", req.Seq, op, key, f))
	}
	p.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch f {
	case pass:
		p.rp.ServeHTTP(w, r)
	case slowDown:
		s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	case internal:
		s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case reset:
		resetConn(w)
	case hang:
		// Read the body first: only then does the server watch the connection and
		// cancel the request's context when the client gives up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(hangCap):
			resetConn(w) // never an empty 200
		}
	case lostAnswer:
		p.rp.ServeHTTP(discard{h: http.Header{}}, r)
		resetConn(w)
	}
}

// s3Error answers like S3 does: an XML error document (no body to a HEAD).
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", "fault-proxy")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>fault-proxy</RequestId></Error>`,
		code, msg, r.URL.Path)
}

// resetConn drops the client's connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("the proxy's ResponseWriter cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
