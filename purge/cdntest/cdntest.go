// Package cdntest has fake CDN APIs for tests: httptest servers that check every
// request against the documented API (method, path, auth header, body schema, batch
// limits, caller references, wildcards in flight) and fail the test on any breach, and
// that can answer 429 (with Retry-After) or 5xx on demand. They count what they were
// sent, so tests and benchmarks can compare adapters.
package cdntest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Failure is an answer given instead of the normal one.
type Failure struct {
	// Status is the HTTP status (429, 500, 503...).
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Code is the API error code where the API has them (CloudFront: "Throttling").
	Code string
}

// faults is a queue of failures shared by the fakes.
type faults struct {
	mu    sync.Mutex
	queue []Failure
	// always, when set, answers every request with this failure.
	always *Failure
}

// FailNext makes the next n requests fail with f.
func (q *faults) FailNext(n int, f Failure) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.queue = append(q.queue, f)
	}
}

// FailAlways makes every request fail with f (nil stops it).
func (q *faults) FailAlways(f *Failure) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.always = f
}

func (q *faults) next() (Failure, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.always != nil {
		return *q.always, true
	}
	if len(q.queue) == 0 {
		return Failure{}, false
	}
	f := q.queue[0]
	q.queue = q.queue[1:]
	return f, true
}

// reporter fails the test from a handler (t.Errorf is safe from other goroutines) and
// keeps the breaches for Violations.
type reporter struct {
	t    testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *reporter) breach(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	if r.t != nil {
		r.t.Errorf("fake CDN API: %s", msg)
	}
}

// Violations are the breaches of the API contract seen so far.
func (r *reporter) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func writeFailure(w http.ResponseWriter, f Failure, contentType, body string) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(f.Status)
	fmt.Fprint(w, body)
}

// Sleeps is an injectable purge.Backoff.Sleep that records the waits and returns at once.
type Sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

// Sleep records d.
func (s *Sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return nil
}

// Waits are the waits recorded so far.
func (s *Sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// Adapter builds an adapter for a test: mod (when set) adjusts cfg, then build makes the
// adapter, failing t on an error.
func Adapter[C, A any](t testing.TB, cfg C, mod func(*C), build func(C) (A, error)) A {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	a, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
