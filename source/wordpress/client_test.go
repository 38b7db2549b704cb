package wordpress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The client's politeness, against local servers (the WordPress tests cover the rest).

func TestClientConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page > 1 {
			<-release
		}
		w.Header().Set("X-WP-TotalPages", "12")
		json.NewEncoder(w).Encode([]map[string]int{{"id": page}})
	}))
	defer srv.Close()
	root, _ := url.Parse(srv.URL + "/wp-json/")
	c := NewClient(root, ClientOptions{Concurrency: 3})
	done := make(chan error)
	var items []json.RawMessage
	go func() {
		var err error
		items, err = c.GetAll(context.Background(), "wp/v2/posts", nil)
		done <- err
	}()
	// Wait until three requests are held, then let them all go.
	for inFlight.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 {
		t.Errorf("%d requests were in flight at once, want at most 3", peak.Load())
	}
	if len(items) != 12 || string(items[11]) != `{"id":12}` {
		t.Errorf("items %s", items)
	}
}

func TestClientRetriesAndRetryAfter(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			http.Error(w, "oops", http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	root, _ := url.Parse(srv.URL + "/wp-json/")
	c := NewClient(root, ClientOptions{RetryWait: time.Millisecond})
	var v map[string]bool
	if _, err := c.Get(context.Background(), "x", nil, &v); err != nil || !v["ok"] {
		t.Fatalf("%v %v", v, err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3 (429, 502, 200)", calls.Load())
	}
	// A 404 is an answer, not retried.
	calls.Store(10)
	srv404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"code":"rest_no_route","message":"No route"}`, http.StatusNotFound)
	}))
	defer srv404.Close()
	root, _ = url.Parse(srv404.URL + "/wp-json/")
	c = NewClient(root, ClientOptions{RetryWait: time.Millisecond})
	_, err := c.Get(context.Background(), "x", nil, &v)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "rest_no_route" || calls.Load() != 11 {
		t.Errorf("404: %v after %d requests", err, calls.Load()-10)
	}
	for in, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "999": time.Minute, "x": 0, "-5": 0} {
		if got := parseRetryAfter(in, time.Minute); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	if got := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), time.Minute); got != time.Minute {
		t.Errorf("an HTTP date an hour ahead: %v, want the cap", got)
	}
}

func TestClientTimeoutAndNoPasswordInErrors(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "stump" || p != "s3cret pass word" {
			t.Errorf("credentials not in the Authorization header: %q %q", u, p)
		}
		if strings.Contains(r.URL.String(), "s3cret") {
			t.Errorf("the password is in the URL: %s", r.URL)
		}
		<-block
	}))
	defer srv.Close()
	defer close(block)
	root, _ := url.Parse(srv.URL + "/wp-json/")
	c := NewClient(root, ClientOptions{User: "stump", Password: "s3cret pass word", Timeout: 50 * time.Millisecond, Retries: -1})
	var v any
	_, err := c.Get(context.Background(), "x", nil, &v)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a hanging server: %v, want a deadline error", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}
