package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stump-dev/stump/publish/store"
	"github.com/stump-dev/stump/publish/store/mem"
	"github.com/stump-dev/stump/publish/store/storetest"
)

var errFlaky = errors.New("connection reset")

// sleeps records the waits of Retry instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// failFirst returns a hook failing the first n calls of op with err.
func failFirst(op string, n int, err error) (mem.Hook, *int) {
	calls := new(int)
	return func(o, key string) error {
		if o != op {
			return nil
		}
		*calls++
		if *calls <= n {
			return err
		}
		return nil
	}, calls
}

func TestRetryTransient(t *testing.T) {
	ctx := t.Context()
	m := mem.New()
	store.PutBytes(ctx, m, "k", []byte("v"), store.PutOptions{})
	hook, calls := failFirst(mem.OpHead, 3, errFlaky)
	m.SetHook(hook)
	var sl sleeps
	s := store.Retry(m, store.RetryOptions{Sleep: sl.sleep})
	info, err := s.Head(ctx, "k")
	if err != nil || info.Size != 1 {
		t.Fatalf("Head: %+v, %v", info, err)
	}
	if *calls != 4 {
		t.Errorf("%d calls, want 4", *calls)
	}
	// Jittered exponential backoff: [50,100]ms, [100,200]ms, [200,400]ms.
	if len(sl.d) != 3 {
		t.Fatalf("waits %v", sl.d)
	}
	for i, d := range sl.d {
		hi := 100 * time.Millisecond << i
		if d < hi/2 || d > hi {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, d, hi/2, hi)
		}
	}
}

func TestRetryGivesUp(t *testing.T) {
	m := mem.New()
	hook, calls := failFirst(mem.OpGet, 100, errFlaky)
	m.SetHook(hook)
	var sl sleeps
	s := store.Retry(m, store.RetryOptions{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 2 * time.Second, Sleep: sl.sleep})
	_, _, err := s.Get(t.Context(), "k")
	if !errors.Is(err, errFlaky) || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error %v", err)
	}
	if *calls != 3 {
		t.Errorf("%d calls, want 3", *calls)
	}
	if len(sl.d) != 2 || sl.d[1] > 2*time.Second || sl.d[1] < time.Second {
		t.Errorf("waits %v: the second should be capped by MaxDelay", sl.d)
	}
}

// TestRetryInnerTimeout: a request's own timeout (an HTTP client deadline) while the
// caller's context is live is retried; the caller's deadline is not (TestRetryNotTransient).
func TestRetryInnerTimeout(t *testing.T) {
	m := mem.New()
	hook, calls := failFirst(mem.OpCopy, 2, fmt.Errorf("copy a: request timed out: %w", context.DeadlineExceeded))
	m.SetHook(hook)
	store.PutBytes(t.Context(), m, "a", []byte("x"), store.PutOptions{})
	var sl sleeps
	if err := store.Retry(m, store.RetryOptions{Sleep: sl.sleep}).Copy(t.Context(), "a", "b", store.PutOptions{}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if *calls != 3 || len(sl.d) != 2 {
		t.Errorf("%d calls, %d waits; want 3, 2", *calls, len(sl.d))
	}
}

func TestRetryNotTransient(t *testing.T) {
	for _, e := range []error{store.ErrNotFound, store.ErrPrecondition, store.ErrPermanent, context.Canceled} {
		t.Run(e.Error(), func(t *testing.T) {
			m := mem.New()
			hook, calls := failFirst(mem.OpCopy, 100, fmt.Errorf("copy a: %w", e))
			m.SetHook(hook)
			var sl sleeps
			err := store.Retry(m, store.RetryOptions{Sleep: sl.sleep}).Copy(t.Context(), "a", "b", store.PutOptions{})
			if !errors.Is(err, e) {
				t.Errorf("error %v", err)
			}
			if *calls != 1 || len(sl.d) != 0 {
				t.Errorf("%d calls, %d waits; want 1, 0", *calls, len(sl.d))
			}
		})
	}
	if store.IsTransient(nil) || !store.IsTransient(errFlaky) {
		t.Error("IsTransient")
	}
}

// flaky reads part of a Put's body, then fails, on its first fails Puts; it records
// the bytes each attempt received.
type flaky struct {
	store.Store
	fails    int
	attempts [][]byte
}

func (f *flaky) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	if len(f.attempts) < f.fails {
		b := make([]byte, 3)
		n, _ := io.ReadFull(body, b)
		f.attempts = append(f.attempts, b[:n])
		return "", errFlaky
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	f.attempts = append(f.attempts, b)
	return f.Store.Put(ctx, key, bytes.NewReader(b), size, opts)
}

func TestRetryRewindsBody(t *testing.T) {
	ctx := t.Context()
	f := &flaky{Store: mem.New(), fails: 2}
	var sl sleeps
	s := store.Retry(f, store.RetryOptions{Sleep: sl.sleep})
	body := "0123456789"
	if _, err := store.PutBytes(ctx, s, "k", []byte(body), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"012", "012", body}; fmt.Sprintf("%q", f.attempts) != fmt.Sprintf("%q", want) {
		t.Errorf("bytes received by the attempts: %q, want %q", f.attempts, want)
	}
	if b, _, _ := store.GetBytes(ctx, f, "k"); string(b) != body {
		t.Errorf("stored %q", b)
	}

	// A body handed over part read is rewound to where it was, not to its start.
	f = &flaky{Store: mem.New(), fails: 1}
	s = store.Retry(f, store.RetryOptions{Sleep: sl.sleep})
	r := strings.NewReader("skip:payload")
	r.Seek(5, io.SeekStart)
	if _, err := s.Put(ctx, "k", r, 7, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q", f.attempts); got != `["pay" "payload"]` {
		t.Errorf("bytes received by the attempts: %s", got)
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	m := mem.New()
	hook, calls := failFirst(mem.OpHead, 100, errFlaky)
	m.SetHook(hook)

	// Canceled while waiting (the real timer, with a long delay).
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	s := store.Retry(m, store.RetryOptions{BaseDelay: time.Hour, MaxDelay: time.Hour})
	start := time.Now()
	_, err := s.Head(ctx, "k")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) {
		t.Errorf("error %v, want one wrapping context.Canceled and the last error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Head took %v", time.Since(start))
	}
	if *calls != 1 {
		t.Errorf("%d calls, want 1", *calls)
	}

	// Canceled before the first attempt: none is made.
	*calls = 0
	_, err = s.Head(ctx, "k")
	if !errors.Is(err, context.Canceled) || *calls != 0 {
		t.Errorf("error %v after %d calls", err, *calls)
	}
}

// flakyList fails its first List after handing fn two objects.
type flakyList struct {
	store.Store
	calls int
}

func (f *flakyList) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	f.calls++
	n := 0
	return f.Store.List(ctx, prefix, func(info store.Info) error {
		if f.calls == 1 && n == 2 {
			return errFlaky
		}
		n++
		return fn(info)
	})
}

func TestRetryListResumes(t *testing.T) {
	ctx := t.Context()
	m := mem.New()
	for _, k := range []string{"a", "b", "c", "d"} {
		store.PutBytes(ctx, m, k, nil, store.PutOptions{})
	}
	var sl sleeps
	f := &flakyList{Store: m}
	s := store.Retry(f, store.RetryOptions{Sleep: sl.sleep})
	var got []string
	err := s.List(ctx, "", func(info store.Info) error {
		got = append(got, info.Key)
		return nil
	})
	if err != nil || strings.Join(got, "") != "abcd" || f.calls != 2 {
		t.Errorf("List: %v, keys %v, %d calls", err, got, f.calls)
	}

	// An error of fn is returned as is, not retried.
	f.calls = 1 // no more failures
	stop := errors.New("stop")
	err = s.List(ctx, "", func(store.Info) error { return stop })
	if err != stop || f.calls != 2 {
		t.Errorf("List: %v after %d calls, want the error of fn after 1", err, f.calls-1)
	}
}

// lostAnswer applies its first Put but answers with a transient error, like a
// response lost on the network.
type lostAnswer struct {
	store.Store
	calls int
}

func (l *lostAnswer) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts store.PutOptions) (string, error) {
	l.calls++
	etag, err := l.Store.Put(ctx, key, body, size, opts)
	if l.calls == 1 && err == nil {
		return "", errFlaky
	}
	return etag, err
}

func TestRetryUncertain(t *testing.T) {
	var sl sleeps
	s := store.Retry(&lostAnswer{Store: mem.New()}, store.RetryOptions{Sleep: sl.sleep})
	_, err := store.PutBytes(t.Context(), s, "_stump/lock", []byte("lease 1"), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPrecondition) || !errors.Is(err, store.ErrUncertain) {
		t.Errorf("error %v, want one wrapping ErrPrecondition and ErrUncertain", err)
	}
	// Without an earlier failure, a precondition is just that.
	_, err = store.PutBytes(t.Context(), s, "_stump/lock", []byte("lease 2"), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrUncertain) {
		t.Errorf("error %v, want ErrPrecondition alone", err)
	}
}

func TestRetryLogs(t *testing.T) {
	m := mem.New()
	hook, _ := failFirst(mem.OpDelete, 1, errFlaky)
	m.SetHook(hook)
	var buf bytes.Buffer
	var sl sleeps
	s := store.Retry(m, store.RetryOptions{Sleep: sl.sleep, Log: slog.New(slog.NewTextHandler(&buf, nil))})
	if err := s.Delete(t.Context(), "a", "b"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level=WARN", "op=delete", `key="a (and 1 more)"`, "attempt=1", `err="connection reset"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
	if s.String() != m.String() {
		t.Errorf("String() = %q", s.String())
	}
}

// The decorators keep the contract.
func TestDecoratorsConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Retry(store.Count(mem.New()), store.RetryOptions{})
	})
}
