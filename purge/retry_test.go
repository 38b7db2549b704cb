package purge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		h := http.Header{}
		if c.h != "" {
			h.Set("Retry-After", c.h)
		}
		if got := RetryAfter(h, now); got != c.want {
			t.Errorf("Retry-After %q = %s, want %s", c.h, got, c.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second}.WithDefaults()
	var got []time.Duration
	for a := 1; a <= 6; a++ {
		d, _ := b.Delay(a, 0)
		got = append(got, d)
	}
	if fmt.Sprint(got) != "[1s 2s 4s 8s 10s 10s]" {
		t.Errorf("delays %v", got)
	}
	if d, ok := b.Delay(1, 3*time.Second); d != 3*time.Second || !ok {
		t.Errorf("Retry-After 3s: %s %v", d, ok)
	}
	if _, ok := b.Delay(1, time.Hour); ok {
		t.Error("a Retry-After over Max was accepted")
	}
}

// recorder is an injectable Sleep that records waits and returns at once.
type recorder struct {
	waits []time.Duration
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return nil
}

func TestDoRetries(t *testing.T) {
	const token = "tok-SECRET-123"
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
		case 2:
			w.WriteHeader(502)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	rec := &recorder{}
	call := Call{CDN: "x", Secret: token, New: func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "POST", srv.URL+"/p", nil)
	}}
	body, tries, err := Do(t.Context(), nil, Backoff{Base: time.Second, Sleep: rec.sleep}, call)
	if err != nil || string(body) != "ok" || tries != 3 {
		t.Fatalf("Do = %q, %d tries, %v", body, tries, err)
	}
	if fmt.Sprint(rec.waits) != "[3s 2s]" {
		t.Errorf("waits %v, want Retry-After 3s then backoff 2s", rec.waits)
	}
}

func TestDoGivesUp(t *testing.T) {
	const token = "tok-SECRET-123"
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(503)
		fmt.Fprintf(w, `{"msg":"bad key %s"}`, r.Header.Get("Key")) // a server echoing the token
	}))
	defer srv.Close()
	rec := &recorder{}
	call := Call{CDN: "fastly:svc", Secret: token, New: func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/service/svc/purge", nil)
		req.Header.Set("Key", token)
		return req, err
	}}
	_, tries, err := Do(t.Context(), nil, Backoff{Attempts: 3, Sleep: rec.sleep}, call)
	if err == nil || tries != 3 || n.Load() != 3 {
		t.Fatalf("want failure after 3 tries: %d, %v", tries, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "fastly:svc: POST /service/svc/purge: HTTP 503") || !strings.Contains(msg, "after 3 attempts") {
		t.Errorf("error %q does not name the CDN, call and status", msg)
	}
	if strings.Contains(msg, token) {
		t.Errorf("error leaks the token: %q", msg)
	}

	// 4xx other than 429 is not retried.
	var m atomic.Int32
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Add(1)
		w.WriteHeader(403)
	}))
	defer srv2.Close()
	call.New = func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "POST", srv2.URL, nil)
	}
	if _, _, err := Do(t.Context(), nil, Backoff{Sleep: rec.sleep}, call); err == nil || m.Load() != 1 {
		t.Errorf("403 retried %d times (%v)", m.Load(), err)
	}

	// A Retry-After longer than Max is not waited for.
	srv3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	}))
	defer srv3.Close()
	call.New = func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "POST", srv3.URL, nil)
	}
	rec.waits = nil
	if _, tries, err := Do(t.Context(), nil, Backoff{Sleep: rec.sleep}, call); err == nil || tries != 1 || len(rec.waits) != 0 || !strings.Contains(err.Error(), "asked to retry after 1h0m0s") {
		t.Errorf("long Retry-After: %d tries, waits %v, %v", tries, rec.waits, err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	type cfg struct {
		Token Secret
		Name  string
	}
	s := Secret("abc-very-secret")
	c := cfg{Token: s, Name: "n"}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", c, c, c, s, s, s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(out, "very-secret") {
			t.Errorf("secret printed: %s", out)
		}
	}
	b, _ := s.MarshalJSON()
	if strings.Contains(string(b), "very") {
		t.Errorf("secret in JSON: %s", b)
	}
}
