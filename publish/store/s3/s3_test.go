package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/storetest"
)

// TestMain shares one versitygw among the tests and points the AWS default chain at
// the test server's credentials only: Open takes credentials from nowhere else.
func TestMain(m *testing.M) {
	testenv.IsolateAWS()
	testenv.Main(m)
}

// testConfig is the Config of bucket on the test server.
func testConfig(env testenv.S3Env, bucket string) Config {
	return Config{Bucket: bucket, Region: env.Region, Endpoint: env.Endpoint, PathStyle: true}
}

// testServer is the test S3 server, with the environment's credentials checked.
func testServer(t *testing.T) testenv.S3Env {
	t.Helper()
	env := testenv.S3(t)
	if os.Getenv("AWS_ACCESS_KEY_ID") != env.AccessKey {
		t.Fatalf("AWS_ACCESS_KEY_ID is not the test server's access key (TestMain sets it)")
	}
	return env
}

// open opens a fresh bucket on the test server; adjust changes its Config first.
func open(t *testing.T, adjust ...func(*Config)) (*Store, testenv.S3Env) {
	t.Helper()
	env := testServer(t)
	cfg := testConfig(env, testenv.NewBucket(t, env))
	for _, f := range adjust {
		f(&cfg)
	}
	s, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, env
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStore runs the conformance suite against versitygw, a fresh bucket per subtest.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := open(t)
		return s
	})
}

// ---- Open

func TestOpenMissingBucket(t *testing.T) {
	env := testServer(t)
	_, err := Open(testCtx(t), testConfig(env, "stump-no-such-bucket"))
	want := `bucket "stump-no-such-bucket" does not exist at ` + env.Endpoint
	if err == nil || err.Error() != want {
		t.Fatalf("Open = %v; want %q", err, want)
	}
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPermanent) {
		t.Errorf("Open error %v: want ErrNotFound only", err)
	}
}

func TestOpenWrongCredentials(t *testing.T) {
	env := testServer(t)
	bucket := testenv.NewBucket(t, env)
	const badSecret = "stump-wrong-secret-e7a1"
	want := "the credentials were refused by " + env.Endpoint +
		" (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your AWS profile)"
	for _, c := range []struct{ name, key, secret string }{
		{"bad secret", env.AccessKey, badSecret},                   // SignatureDoesNotMatch
		{"unknown key", "stump-no-such-access-key", env.SecretKey}, // InvalidAccessKeyId
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", c.key)
			t.Setenv("AWS_SECRET_ACCESS_KEY", c.secret)
			_, err := Open(testCtx(t), testConfig(env, bucket))
			if err == nil || err.Error() != want {
				t.Fatalf("Open = %v; want %q", err, want)
			}
			if !errors.Is(err, store.ErrPermanent) {
				t.Errorf("Open error does not wrap ErrPermanent")
			}
			// Neither the message nor any error it wraps shows a secret.
			for _, text := range errorTexts(err) {
				for _, secret := range []string{badSecret, env.SecretKey, "wrong-secret"} {
					if strings.Contains(text, secret) {
						t.Errorf("an error's text shows the secret %q: %s", secret, text)
					}
				}
			}
		})
	}
}

// errorTexts is the text of err and of every error it wraps, in every verb.
func errorTexts(err error) []string {
	var texts []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return texts
}

func TestOpenUnreachable(t *testing.T) {
	addr := closedPort(t)
	start := time.Now()
	_, err := Open(testCtx(t), Config{Bucket: "b", Endpoint: "http://" + addr, PathStyle: true})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	want := "cannot reach http://" + addr + ": dial tcp " + addr + ": connect: connection refused"
	if err.Error() != want {
		t.Errorf("Open = %q; want %q", err, want)
	}
	if errors.Is(err, store.ErrPermanent) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open error %v: want a transient error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to give up", d)
	}
}

func TestOpenRefusesCredentialsInEndpoint(t *testing.T) {
	_, err := Open(testCtx(t), Config{Bucket: "b", Endpoint: "http://AKIDEXAMPLE:topsecret@127.0.0.1:1"})
	if err == nil || !errors.Is(err, store.ErrPermanent) {
		t.Fatalf("Open = %v; want ErrPermanent", err)
	}
	if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "AKIDEXAMPLE") {
		t.Errorf("the error shows the credentials: %v", err)
	}
	for _, bad := range []string{"127.0.0.1:7070", "ftp://h", "http://", "http://h/?x=1"} {
		if _, err := Open(testCtx(t), Config{Bucket: "b", Endpoint: bad}); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Open with endpoint %q = %v; want ErrPermanent", bad, err)
		}
	}
	if _, err := Open(testCtx(t), Config{}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Open without bucket = %v; want ErrPermanent", err)
	}
}

func TestString(t *testing.T) {
	s, env := open(t)
	host := strings.TrimPrefix(env.Endpoint, "http://")
	if want := "s3://" + s.Bucket() + " on " + host; s.String() != want {
		t.Errorf("String = %q; want %q", s.String(), want)
	}
	if strings.Contains(s.String(), env.AccessKey) || strings.Contains(s.String(), env.SecretKey) {
		t.Errorf("String shows credentials: %s", s)
	}
	if got := (&Store{bucket: "b"}).String(); got != "s3://b" {
		t.Errorf("String on AWS = %q", got)
	}
}

// ---- operations against the server

func TestPutGetHead(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	body := []byte("<h1>hi</h1>")
	opts := store.PutOptions{
		Meta: store.Meta{
			ContentType:      "text/html; charset=utf-8",
			CacheControl:     "max-age=60",
			Metadata:         map[string]string{"Stump-Sha256": sum(body)},
			RedirectLocation: "/elsewhere/",
		},
		SHA256: sum(body),
	}
	const key = "a/b c+d%?#ü.html"
	etag, err := store.PutBytes(c, s, key, body, opts)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if etag == "" {
		t.Fatal("Put returned no ETag")
	}
	got, info, err := store.GetBytes(c, s, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("Get = %q, want %q", got, body)
	}
	want := store.Meta{ContentType: "text/html; charset=utf-8", CacheControl: "max-age=60",
		Metadata: map[string]string{"stump-sha256": sum(body)}, RedirectLocation: "/elsewhere/"}
	if !reflect.DeepEqual(info.Meta, want) || info.ETag != etag || info.Size != int64(len(body)) || info.Key != key {
		t.Errorf("Get info = %+v; want Meta %+v, ETag %s, size %d", info, want, etag, len(body))
	}
	if d := time.Since(info.ModTime); d > time.Hour || d < -time.Hour {
		t.Errorf("ModTime = %v", info.ModTime)
	}
	hinfo, err := s.Head(c, key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if hinfo.SHA256 != sum(body) {
		t.Errorf("Head SHA256 = %q, want the checksum the object was stored with, %s", hinfo.SHA256, sum(body))
	}
	hinfo.SHA256 = ""
	if !reflect.DeepEqual(hinfo, info) {
		t.Errorf("Head = %+v\n Get = %+v", hinfo, info)
	}

	for _, k := range []string{"missing", "a/missing", "a"} {
		if _, _, err := s.Get(c, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get %s = %v; want ErrNotFound", k, err)
		}
		if _, err := s.Head(c, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Head %s = %v; want ErrNotFound", k, err)
		}
	}
}

func TestPutChecksumAndSize(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	_, err := store.PutBytes(c, s, "x", []byte("abc"), store.PutOptions{SHA256: sum([]byte("abd"))})
	// Over plain http the signed payload hash is the caller's SHA-256 too (the SDK
	// does not hash the body again), so the server may refuse it for either.
	if !errors.Is(err, store.ErrPermanent) || (!strings.Contains(err.Error(), "BadDigest") && !strings.Contains(err.Error(), "XAmzContentSHA256Mismatch")) {
		t.Errorf("Put with a wrong SHA256 = %v; want ErrPermanent (BadDigest or XAmzContentSHA256Mismatch)", err)
	}
	if _, err := s.Head(c, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after a refused Put, Head = %v; want ErrNotFound", err)
	}
	if _, err := store.PutBytes(c, s, "x", []byte("abc"), store.PutOptions{SHA256: "xyz"}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put with a malformed SHA256 = %v; want ErrPermanent", err)
	}
	if _, err := s.Put(c, "x", strings.NewReader("abc"), 4, store.PutOptions{}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put of 3 bytes announced as 4 = %v; want ErrPermanent", err)
	}
	// A body read from its current position, whatever that is.
	r := strings.NewReader("skip:body")
	r.Seek(5, io.SeekStart)
	if _, err := s.Put(c, "x", r, 4, store.PutOptions{SHA256: sum([]byte("body"))}); err != nil {
		t.Fatalf("Put from offset 5: %v", err)
	}
	if b, _, err := store.GetBytes(c, s, "x"); err != nil || string(b) != "body" {
		t.Errorf("Get = %q, %v; want body", b, err)
	}
	// Size -1: whatever the body holds.
	if _, err := s.Put(c, "y", strings.NewReader(""), -1, store.PutOptions{SHA256: sum(nil)}); err != nil {
		t.Fatalf("Put of an empty body: %v", err)
	}
	if i, err := s.Head(c, "y"); err != nil || i.Size != 0 {
		t.Errorf("Head y = %+v, %v; want size 0", i, err)
	}
}

func TestPutConditions(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	e1, err := store.PutBytes(c, s, "lock", []byte("1"), store.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("Put IfNoneMatch of a new key: %v", err)
	}
	if _, err := store.PutBytes(c, s, "lock", []byte("2"), store.PutOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("Put IfNoneMatch of an existing key = %v; want ErrPrecondition", err)
	}
	e2, err := store.PutBytes(c, s, "lock", []byte("2"), store.PutOptions{IfMatch: e1})
	if err != nil {
		t.Fatalf("Put IfMatch with the current ETag: %v", err)
	}
	if _, err := store.PutBytes(c, s, "lock", []byte("3"), store.PutOptions{IfMatch: e1}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("Put IfMatch with an old ETag = %v; want ErrPrecondition", err)
	}
	// ETags without their quotes work too.
	if _, err := store.PutBytes(c, s, "lock", []byte("4"), store.PutOptions{IfMatch: strings.Trim(e2, `"`)}); err != nil {
		t.Errorf("Put IfMatch with the unquoted ETag: %v", err)
	}
	// versitygw (like AWS) answers If-Match on a missing key with 404 NoSuchKey.
	if _, err := store.PutBytes(c, s, "nolock", []byte("1"), store.PutOptions{IfMatch: e1}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("Put IfMatch of a missing key = %v; want ErrPrecondition", err)
	}
	if _, err := store.PutBytes(c, s, "x", []byte("1"), store.PutOptions{IfMatch: e1, IfNoneMatch: true}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put with both conditions = %v; want ErrPermanent", err)
	}
}

func TestPutBadRedirect(t *testing.T) {
	s, _ := open(t)
	_, err := store.PutBytes(testCtx(t), s, "r", []byte("x"), store.PutOptions{Meta: store.Meta{RedirectLocation: "elsewhere"}})
	if !errors.Is(err, store.ErrPermanent) || !strings.Contains(err.Error(), "redirect location") {
		t.Errorf("Put with a bad redirect = %v; want ErrPermanent about the redirect location", err)
	}
}

func TestCopy(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	const src = "blobs/ab cd+é%20?.bin"
	body := []byte("some bytes")
	if _, err := store.PutBytes(c, s, src, body, store.PutOptions{Meta: store.Meta{
		ContentType: "application/x-old", RedirectLocation: "/old", Metadata: map[string]string{"old": "1"},
	}}); err != nil {
		t.Fatal(err)
	}
	meta := store.Meta{ContentType: "text/css", CacheControl: "no-cache",
		Metadata: map[string]string{"new": "2"}, RedirectLocation: "/new/"}
	for _, dst := range []string{"site/style.css", "site/ä b.css", src} {
		if err := s.Copy(c, src, dst, store.PutOptions{Meta: meta, IfNoneMatch: true}); err != nil {
			t.Fatalf("Copy to %s: %v", dst, err)
		}
		b, info, err := store.GetBytes(c, s, dst)
		if err != nil || !bytes.Equal(b, body) {
			t.Fatalf("Get %s = %q, %v", dst, b, err)
		}
		if !reflect.DeepEqual(info.Meta, meta) {
			t.Errorf("copy %s has Meta %+v; want %+v", dst, info.Meta, meta)
		}
	}
	// Without a redirect in the new Meta, the copy has none.
	if err := s.Copy(c, src, "plain", store.PutOptions{Meta: store.Meta{ContentType: "text/plain"}}); err != nil {
		t.Fatal(err)
	}
	if i, err := s.Head(c, "plain"); err != nil || i.Meta.RedirectLocation != "" || i.Meta.Metadata != nil {
		t.Errorf("Head plain = %+v, %v; want no redirect and no metadata", i, err)
	}
	err := s.Copy(c, "missing", "dst", store.PutOptions{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Copy of a missing key = %v; want ErrNotFound", err)
	}
}

// counter is Config.Middleware that counts requests by operation.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[middleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (c *counter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// TestManyKeys lists over several pages and deletes in batches of 1000.
func TestManyKeys(t *testing.T) {
	var count counter
	s, _ := open(t, func(c *Config) { c.Middleware = append(c.Middleware, count.add) })
	c := testCtx(t)
	const n = 2345
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k/%05d", i)
	}
	g, gctx := errgroup.WithContext(c)
	g.SetLimit(32)
	for _, k := range keys {
		g.Go(func() error {
			_, err := store.PutBytes(gctx, s, k, []byte(k), store.PutOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := store.PutBytes(c, s, "other", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var listed []string
	if err := s.List(c, "k/", func(i store.Info) error {
		listed = append(listed, i.Key)
		if i.Size != int64(len(i.Key)) || i.ETag == "" || i.ModTime.IsZero() {
			t.Errorf("List info %+v", i)
		}
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if !reflect.DeepEqual(listed, keys) {
		t.Fatalf("List gave %d keys, want %d in order", len(listed), len(keys))
	}
	if got := count.get("ListObjectsV2"); got < 3 {
		t.Errorf("%d ListObjectsV2 requests for %d keys; want pages of at most 1000", got, n)
	}
	stop := errors.New("stop")
	seen := 0
	if err := s.List(c, "", func(store.Info) error { seen++; return stop }); err != stop || seen != 1 {
		t.Errorf("List stopped by fn = %v after %d calls; want stop after 1", err, seen)
	}

	// Delete every key, one of them twice, and some that do not exist.
	del := append(append([]string{}, keys...), keys[0], "k/missing", "nothing/here")
	if err := s.Delete(c, del...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := count.get("DeleteObjects"); got != 3 {
		t.Errorf("%d DeleteObjects requests for %d keys; want 3", got, n+2)
	}
	left := 0
	if err := s.List(c, "", func(i store.Info) error { left++; return nil }); err != nil || left != 1 {
		t.Errorf("after Delete, List found %d keys (%v); want 1 (other)", left, err)
	}
	if err := s.Delete(c); err != nil {
		t.Errorf("Delete of no keys: %v", err)
	}
	if err := s.Delete(c, "ok", "../bad"); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Delete of an invalid key = %v; want ErrPermanent", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	for _, k := range []string{"", "/a", "a//b", "a/../b", "./a", `a\b`} {
		if _, err := store.PutBytes(c, s, k, nil, store.PutOptions{}); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Put %q = %v; want ErrPermanent", k, err)
		}
		if _, err := s.Head(c, k); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Head %q = %v; want ErrPermanent", k, err)
		}
		if err := s.Copy(c, "a", k, store.PutOptions{}); !errors.Is(err, store.ErrPermanent) {
			t.Errorf("Copy to %q = %v; want ErrPermanent", k, err)
		}
	}
}

func TestCanceled(t *testing.T) {
	s, _ := open(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.PutBytes(c, s, "x", []byte("x"), store.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v", err)
	}
	if err := s.List(c, "", func(store.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context = %v", err)
	}
}

// ---- faults between the client and the server (Config.HTTPClient)

// faulty is a transport that answers the first fail requests of op itself, with
// answer (nil: a dropped connection), and passes the rest to the server. With lose
// set, the failing requests reach the server and their answers are lost instead.
type faulty struct {
	op     string // request method + " " (e.g. "PUT "), or "" for all
	fail   atomic.Int32
	answer func(*http.Request) *http.Response
	lose   bool
	seen   atomic.Int32
}

func (f *faulty) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.op == "" || strings.HasPrefix(r.Method+" ", f.op) {
		f.seen.Add(1)
		if f.fail.Add(-1) >= 0 {
			if f.lose {
				resp, err := http.DefaultTransport.RoundTrip(r)
				if err != nil {
					return nil, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
			}
			if r.Body != nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			if f.answer == nil {
				return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
			}
			return f.answer(r), nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func slowDown(r *http.Request) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
		`<Message>Please reduce your request rate.</Message></Error>`
	return &http.Response{
		StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/xml"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}
}

func TestSDKRetries(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(*http.Request) *http.Response
		word   string
	}{
		{"503 SlowDown", slowDown, "SlowDown"},
		{"connection reset", nil, "connection reset by peer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &faulty{op: "PUT ", answer: c.answer}
			s, _ := open(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: f} })
			ctx := testCtx(t)
			body := []byte("retried body")

			// Two failures: the SDK's third attempt succeeds, with the body rewound.
			f.fail.Store(2)
			if _, err := store.PutBytes(ctx, s, "k", body, store.PutOptions{SHA256: sum(body)}); err != nil {
				t.Fatalf("Put after 2 faults: %v", err)
			}
			if got := f.seen.Load(); got != 3 {
				t.Errorf("%d attempts; want 3", got)
			}
			if b, _, err := store.GetBytes(ctx, s, "k"); err != nil || !bytes.Equal(b, body) {
				t.Errorf("Get = %q, %v", b, err)
			}

			// Three failures: the SDK gives up after 3 attempts, with a transient error.
			f.seen.Store(0)
			f.fail.Store(3)
			_, err := store.PutBytes(ctx, s, "k", body, store.PutOptions{})
			if err == nil {
				t.Fatal("Put after 3 faults succeeded")
			}
			if errors.Is(err, store.ErrPermanent) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPrecondition) {
				t.Errorf("Put error %v: want a transient error", err)
			}
			if !strings.Contains(err.Error(), c.word) {
				t.Errorf("Put error %q does not say %q", err, c.word)
			}
			if got := f.seen.Load(); got != maxAttempts {
				t.Errorf("%d attempts; want %d", got, maxAttempts)
			}
		})
	}
}

// TestConditionalPutLostAnswer: a conditional Put whose answer is lost is not retried
// by the SDK, so that store.Retry, which retries it, can tell the caller that its
// ErrPrecondition is uncertain.
func TestConditionalPutLostAnswer(t *testing.T) {
	f := &faulty{op: "PUT ", lose: true}
	s, _ := open(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: f} })
	ctx := testCtx(t)
	r := store.Retry(s, store.RetryOptions{BaseDelay: time.Millisecond})

	f.fail.Store(1)
	_, err := store.PutBytes(ctx, r, "lock", []byte("mine"), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPrecondition) || !errors.Is(err, store.ErrUncertain) {
		t.Errorf("Put IfNoneMatch with a lost answer = %v; want ErrPrecondition and ErrUncertain", err)
	}
	if got := f.seen.Load(); got != 2 {
		t.Errorf("%d PUT requests; want 2 (one by the store, one by store.Retry)", got)
	}
	if b, _, err := store.GetBytes(ctx, s, "lock"); err != nil || string(b) != "mine" {
		t.Errorf("Get lock = %q, %v; want the first attempt's bytes", b, err)
	}

	// Unconditional Puts keep the SDK's retries.
	f.seen.Store(0)
	f.fail.Store(1)
	if _, err := store.PutBytes(ctx, s, "page", []byte("x"), store.PutOptions{}); err != nil {
		t.Errorf("Put with a lost answer: %v", err)
	}
	if got := f.seen.Load(); got != 2 {
		t.Errorf("%d PUT requests; want 2 (the SDK retried)", got)
	}
}

// readCounter is a body that counts the bytes read from it.
type readCounter struct {
	io.ReadSeeker
	n atomic.Int64
}

func (r *readCounter) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// TestPutReadsTheBodyOnce: a Put given the body's SHA-256 reads the body once, to send
// it; the SDK does not read and hash it again to sign it (over plain http it did:
// every byte was read twice and hashed on the client, which the caller had already
// done). The server still verifies the bytes: a wrong SHA-256 is refused.
func TestPutReadsTheBodyOnce(t *testing.T) {
	s, _ := open(t)
	c := testCtx(t)
	body := bytes.Repeat([]byte("stump "), 50_000)
	r := &readCounter{ReadSeeker: bytes.NewReader(body)}
	if _, err := s.Put(c, "once", r, int64(len(body)), store.PutOptions{SHA256: sum(body)}); err != nil {
		t.Fatal(err)
	}
	if got := r.n.Load(); got != int64(len(body)) {
		t.Errorf("Put read %d bytes of a %d-byte body, want each byte once", got, len(body))
	}
	if got, _, err := store.GetBytes(c, s, "once"); err != nil || !bytes.Equal(got, body) {
		t.Errorf("Get after Put: %d bytes, %v", len(got), err)
	}
	if _, err := s.Put(c, "twice", bytes.NewReader(body), int64(len(body)), store.PutOptions{SHA256: sum(append([]byte("x"), body...))}); !errors.Is(err, store.ErrPermanent) {
		t.Errorf("Put with a wrong SHA-256 = %v, want ErrPermanent", err)
	}
}

// connCounting opens a store on a stand-in server that answers every request with 200,
// keeps connections alive (as S3 does) and counts the connections it accepts; with
// h2, over TLS with HTTP/2 and the server's own client.
func connCounting(t *testing.T, h2 bool) (*Store, *atomic.Int64) {
	t.Helper()
	conns := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"e"`)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	cfg := Config{Bucket: "b", Region: "us-east-1", PathStyle: true}
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		cfg.HTTPClient = srv.Client()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	s, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, conns
}

// TestConnectionsReused: parallel requests reuse their connections. The SDK's default
// client kept 10 idle connections per host, so with 64 requests in flight every
// request past the tenth closed its connection when it ended and the next one dialed
// anew (a TCP handshake and a server-side setup per request). The server here is a
// stand-in that answers every request with 200 and keeps connections alive, as S3
// does (versitygw closes every connection unless started with --keep-alive); the
// client is the one Open makes.
func TestConnectionsReused(t *testing.T) {
	s, conns := connCounting(t, false)
	c := testCtx(t)
	const parallel, rounds = 64, 5
	for r := range rounds {
		g, gctx := errgroup.WithContext(c)
		for i := range parallel {
			g.Go(func() error {
				_, err := store.PutBytes(gctx, s, fmt.Sprintf("r%d/%d", r, i), []byte("x"), store.PutOptions{SHA256: sum([]byte("x"))})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// A round may open a few more than the last left idle; never one a request.
	if n := conns.Load(); n >= 2*parallel {
		t.Errorf("%d rounds of %d parallel requests opened %d connections, want fewer than %d", rounds, parallel, n, 2*parallel)
	}
}

// slowBody delivers its bytes in chunks with a pause before each, and can be rewound.
type slowBody struct {
	b     []byte
	off   int
	chunk int
	pause time.Duration
}

func (r *slowBody) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p[:min(len(p), r.chunk)], r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *slowBody) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		r.off = int(off)
	case io.SeekEnd:
		r.off = len(r.b) + int(off)
	default:
		r.off += int(off)
	}
	return int64(r.off), nil
}

// TestWriteDeadlineSparesHTTP2: on an HTTP/2 connection, which carries several
// requests at once, one request's deadline is not made the connection's write
// deadline: a slow upload without a deadline on the same connection goes on after
// another request's deadline passed (before, the connection broke and the upload was
// sent again on a new one).
func TestWriteDeadlineSparesHTTP2(t *testing.T) {
	s, conns := connCounting(t, true)
	c := testCtx(t)
	if _, err := store.PutBytes(c, s, "warm", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("y"), 32<<10)
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(c, "slow", &slowBody{b: body, chunk: 4 << 10, pause: 40 * time.Millisecond}, int64(len(body)), store.PutOptions{})
		done <- err
	}()
	time.Sleep(60 * time.Millisecond)
	short, cancel := context.WithTimeout(c, 30*time.Millisecond)
	_, _ = store.PutBytes(short, s, "quick", []byte("q"), store.PutOptions{})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the slow upload: %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want the one HTTP/2 connection for every request", n)
	}
}

// deadlineConn records the write deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	mu   sync.Mutex
	last *time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.last = &t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// TestWriteDeadlineOnConnection: over HTTP/1.1 each request attempt gives its
// connection the request's deadline as a write deadline, and a request without one
// clears what the last left (the fence of a frozen process, see writeDeadline).
func TestWriteDeadlineOnConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"e"`)
	}))
	t.Cleanup(srv.Close)
	var conn *deadlineConn
	dialer := &net.Dialer{}
	tr := &http.Transport{MaxConnsPerHost: 1, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = &deadlineConn{Conn: c}
		return conn, nil
	}}
	s, err := Open(testCtx(t), Config{Bucket: "b", Region: "us-east-1", PathStyle: true, Endpoint: srv.URL, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	last := func() *time.Time {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.last
	}
	want := time.Now().Add(time.Minute).Round(0)
	ctx, cancel := context.WithDeadline(testCtx(t), want)
	defer cancel()
	if _, err := store.PutBytes(ctx, s, "fenced", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := last(); got == nil || !got.Equal(want) {
		t.Fatalf("write deadline %v, want the request's deadline %v", got, want)
	}
	if _, err := store.PutBytes(context.Background(), s, "free", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := last(); got == nil || !got.IsZero() {
		t.Errorf("write deadline %v after a request without one, want it cleared", got)
	}
}
