package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"
)

// ErrUncertain marks a conditional Put that Retry gave up on with ErrPrecondition
// after an earlier attempt had failed in a way that does not tell whether it was
// applied (a lost response): the precondition may have failed because of that very
// attempt. Such an error wraps both ErrPrecondition and ErrUncertain; a caller whose
// body is unique (a lease id) reads the object back to tell.
var ErrUncertain = errors.New("an earlier attempt may have succeeded")

// RetryOptions configure Retry. Zero fields take their defaults.
type RetryOptions struct {
	// MaxAttempts is the number of attempts of one operation, the first included
	// (default 5).
	MaxAttempts int
	// BaseDelay is the wait before the first retry (default 100ms); it doubles on
	// each retry up to MaxDelay (default 5s). The wait is jittered: a random time
	// between half of it and all of it.
	BaseDelay, MaxDelay time.Duration
	// Sleep waits d or until ctx is done (then it returns ctx's error). Tests set it;
	// default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log, if set, logs every retry at level Warn.
	Log *slog.Logger
}

// Retry returns s retrying transient errors: every error but ErrNotFound,
// ErrPrecondition, ErrPermanent and context errors. It stops when ctx is done.
//
//   - Put rewinds its body (Seek to the offset it had when Put was called) before
//     each attempt.
//   - Get retries opening the object, not reading its body.
//   - List, retried after a failure part way, resumes after the last key fn was given;
//     an error of fn itself is returned at once.
//   - A conditional Put may end in an error wrapping ErrUncertain (which see).
func Retry(s Store, opts RetryOptions) Store {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 5 * time.Second
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &retryStore{Store: s, opts: opts}
}

// IsTransient reports whether retrying err may help: err is not nil and wraps none of
// ErrNotFound, ErrPrecondition, ErrPermanent, context.Canceled and
// context.DeadlineExceeded.
func IsTransient(err error) bool {
	return err != nil &&
		!errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrPermanent) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type retryStore struct {
	Store
	opts RetryOptions
}

// delay is the jittered wait after the attempt-th failed attempt (1-based).
func (r *retryStore) delay(attempt int) time.Duration {
	d := r.opts.BaseDelay
	for i := 1; i < attempt && d < r.opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, r.opts.MaxDelay)
	return d/2 + rand.N(d/2+1)
}

// do runs f until it succeeds, fails for good, runs out of attempts or ctx is done.
// f gets the attempt's number (1-based). retried tells whether an attempt failed with
// a transient error before the last one.
func (r *retryStore) do(ctx context.Context, op, key string, f func(attempt int) error) (retried bool, err error) {
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			if err != nil {
				return retried, fmt.Errorf("%s %s: %w (after %d attempts; the last failed with: %w)", op, key, cerr, attempt-1, err)
			}
			return retried, fmt.Errorf("%s %s: %w", op, key, cerr)
		}
		if attempt > 1 {
			retried = true
		}
		err = f(attempt)
		var fe *fnError
		if errors.As(err, &fe) {
			return retried, fe.err
		}
		// A deadline inside the request (an HTTP client timeout) while the caller's
		// context is still live is a timeout to retry, not the caller giving up.
		innerTimeout := err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrPermanent)
		if !IsTransient(err) && !innerTimeout {
			return retried, err
		}
		if attempt >= r.opts.MaxAttempts {
			return retried, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		d := r.delay(attempt)
		if r.opts.Log != nil {
			r.opts.Log.Warn("store: retrying", "store", r.Store.String(), "op", op, "key", key,
				"attempt", attempt, "delay", d, "err", err)
		}
		if serr := r.opts.Sleep(ctx, d); serr != nil && ctx.Err() == nil {
			return retried, serr
		}
	}
}

func (r *retryStore) Get(ctx context.Context, key string) (rc io.ReadCloser, info Info, err error) {
	_, err = r.do(ctx, "get", key, func(int) error {
		rc, info, err = r.Store.Get(ctx, key)
		return err
	})
	return rc, info, err
}

func (r *retryStore) Head(ctx context.Context, key string) (info Info, err error) {
	_, err = r.do(ctx, "head", key, func(int) error {
		info, err = r.Store.Head(ctx, key)
		return err
	})
	return info, err
}

func (r *retryStore) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (etag string, err error) {
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", fmt.Errorf("put %s: body: %w", key, err)
	}
	retried, err := r.do(ctx, "put", key, func(attempt int) error {
		if attempt > 1 {
			if _, err := body.Seek(start, io.SeekStart); err != nil {
				return fmt.Errorf("put %s: rewind body: %v: %w", key, err, ErrPermanent)
			}
		}
		etag, err = r.Store.Put(ctx, key, body, size, opts)
		return err
	})
	if retried && errors.Is(err, ErrPrecondition) && (opts.IfNoneMatch || opts.IfMatch != "") {
		err = fmt.Errorf("%w (%w: an earlier attempt failed without an answer)", err, ErrUncertain)
	}
	return etag, err
}

func (r *retryStore) Copy(ctx context.Context, src, dst string, opts PutOptions) error {
	_, err := r.do(ctx, "copy", dst, func(int) error {
		return r.Store.Copy(ctx, src, dst, opts)
	})
	return err
}

func (r *retryStore) Delete(ctx context.Context, keys ...string) error {
	key := ""
	if len(keys) > 0 {
		key = keys[0]
		if len(keys) > 1 {
			key = fmt.Sprintf("%s (and %d more)", key, len(keys)-1)
		}
	}
	_, err := r.do(ctx, "delete", key, func(int) error {
		return r.Store.Delete(ctx, keys...)
	})
	return err
}

// fnError carries an error of List's fn through the store, so it is not retried.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

func (r *retryStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	var last string
	seen := false
	_, err := r.do(ctx, "list", prefix, func(int) error {
		return r.Store.List(ctx, prefix, func(info Info) error {
			if seen && info.Key <= last {
				return nil // delivered by an earlier attempt
			}
			if err := fn(info); err != nil {
				return &fnError{err}
			}
			last, seen = info.Key, true
			return nil
		})
	})
	return err
}
