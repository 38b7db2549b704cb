package purge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Secret is a credential. It prints as "[redacted]" in every fmt verb and in JSON, so a
// config or an adapter logged by mistake does not leak it. Use string(s) to send it.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format hides the secret from every verb (%s, %v, %q, %x...).
func (s Secret) Format(f fmt.State, verb rune) { io.WriteString(f, s.String()) }

// MarshalJSON hides the secret from JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// Backoff is how an adapter retries throttling (429) and server errors (5xx): at most
// Attempts tries, waiting Base, 2·Base, 4·Base... (capped at Max) in between, or what
// the server's Retry-After asks when it says. A Retry-After longer than Max is not
// waited for: the purge fails and is left pending instead of holding a deploy for long.
type Backoff struct {
	// Attempts is the number of tries in all (default 5).
	Attempts int
	// Base is the first wait (default 1s).
	Base time.Duration
	// Max caps a wait, and is the longest Retry-After honoured (default 1m).
	Max time.Duration
	// Sleep waits (default: a timer, cut short by ctx). Tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
}

// WithDefaults fills the zero fields.
func (b Backoff) WithDefaults() Backoff {
	if b.Attempts <= 0 {
		b.Attempts = 5
	}
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Max <= 0 {
		b.Max = time.Minute
	}
	if b.Sleep == nil {
		b.Sleep = SleepCtx
	}
	return b
}

// SleepCtx waits d or until ctx is done.
func SleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delay is the wait before try number attempt+1 (attempt counts from 1), given the
// server's Retry-After (0 when it gave none). ok is false when the server asks for
// longer than Max.
func (b Backoff) Delay(attempt int, retryAfter time.Duration) (d time.Duration, ok bool) {
	if retryAfter > 0 {
		return retryAfter, retryAfter <= b.Max
	}
	d = b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max), true
}

// TooLong is the note of an error given up on because the server asked to retry after
// retryAfter, longer than Max (Delay's ok false).
func (b Backoff) TooLong(retryAfter time.Duration) string {
	return fmt.Sprintf("the server asked to retry after %s, more than the %s this purge waits", retryAfter, b.Max)
}

// RetryAfter parses a Retry-After header: delay-seconds or an HTTP date (0 when absent
// or unreadable).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Retryable reports whether an HTTP status is worth another try.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status <= 599
}

// HTTPError is an API answer an adapter gave up on. It names the CDN, the call and the
// status; never a credential (bodies are cut short and scrubbed of the token).
type HTTPError struct {
	CDN      string
	Method   string
	Path     string
	Status   int
	Attempts int
	Body     string
	// Note says why retrying stopped, when not for running out of attempts.
	Note string
}

// WriteRetries ends an error message of a call given up on with how many attempts were
// made (when more than one) and why retrying stopped (note, when set).
func WriteRetries(b *strings.Builder, attempts int, note string) {
	if attempts > 1 {
		fmt.Fprintf(b, " (after %d attempts)", attempts)
	}
	if note != "" {
		b.WriteString("; " + note)
	}
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s: HTTP %d %s", e.CDN, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	WriteRetries(&b, e.Attempts, e.Note)
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	return b.String()
}

// Call is one HTTP API call for Do.
type Call struct {
	// CDN names the adapter in errors ("fastly:SERVICE").
	CDN string
	// New builds the request afresh for each try.
	New func(ctx context.Context) (*http.Request, error)
	// Secret is scrubbed from any response body quoted in an error.
	Secret Secret
}

// Do sends a call with retries and returns the body of its 2xx answer. tries counts the
// requests sent (for reports), whether or not the call succeeded.
func Do(ctx context.Context, client *http.Client, b Backoff, c Call) (body []byte, tries int, err error) {
	b = b.WithDefaults()
	if client == nil {
		client = http.DefaultClient
	}
	for attempt := 1; ; attempt++ {
		req, err := c.New(ctx)
		if err != nil {
			return nil, tries, fmt.Errorf("%s: %w", c.CDN, err)
		}
		tries++
		resp, err := client.Do(req)
		var retryAfter time.Duration
		var herr *HTTPError
		if err != nil {
			if ctx.Err() != nil {
				return nil, tries, fmt.Errorf("%s: %s %s: %w", c.CDN, req.Method, req.URL.Path, ctx.Err())
			}
			// Transport errors (connection refused or reset) are retried; their text
			// names the URL, which holds no credential.
			err = fmt.Errorf("%s: %s %s: %w", c.CDN, req.Method, req.URL.Path, scrubErr(err, c.Secret))
		} else {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode <= 299 && rerr == nil {
				return data, tries, nil
			}
			herr = &HTTPError{CDN: c.CDN, Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Attempts: attempt, Body: snippet(data, c.Secret)}
			if rerr != nil {
				herr.Note = "reading the answer failed: " + scrubErr(rerr, c.Secret).Error()
			}
			if !Retryable(resp.StatusCode) && rerr == nil {
				return nil, tries, herr
			}
			retryAfter = RetryAfter(resp.Header, time.Now())
			err = herr
		}
		if attempt >= b.Attempts {
			return nil, tries, err
		}
		d, ok := b.Delay(attempt, retryAfter)
		if !ok {
			if herr != nil {
				herr.Note = b.TooLong(retryAfter)
			}
			return nil, tries, err
		}
		if serr := b.Sleep(ctx, d); serr != nil {
			return nil, tries, fmt.Errorf("%w (gave up waiting to retry: %v)", err, serr)
		}
	}
}

func snippet(b []byte, secret Secret) string {
	s := strings.TrimSpace(string(b))
	if secret != "" {
		s = strings.ReplaceAll(s, string(secret), "[redacted]")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

func scrubErr(err error, secret Secret) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), string(secret)) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), string(secret), "[redacted]"), err: errors.Unwrap(err)}
}
