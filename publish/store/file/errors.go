package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/stump-dev/stump/publish/store"
)

// opError is an error with a plain message that wraps a store sentinel and its cause.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// newError returns an error whose message is the formatted text and that wraps kind
// (a store sentinel, or nil) and cause (or nil).
func newError(kind, cause error, format string, args ...any) error {
	e := &opError{msg: fmt.Sprintf(format, args...)}
	for _, err := range []error{kind, cause} {
		if err != nil {
			e.errs = append(e.errs, err)
		}
	}
	return e
}

func invalidKey(key, why string) error {
	return newError(store.ErrPermanent, nil, "invalid key %q: %s", key, why)
}

// wrapOS turns an error of the file system into one for op on key: context errors
// pass through; errors a retry might cure (too many open files, interrupted, busy,
// I/O, timed out) stay transient; every other error of a local folder (permission,
// read-only, disk full, name too long, a symlink leaving the root) is permanent.
func wrapOS(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err // says what it is already
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	for _, t := range []error{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.EINTR, syscall.EBUSY, syscall.EIO, syscall.ETIMEDOUT} {
		if errors.Is(err, t) {
			return fmt.Errorf("%s %s: %w", op, key, err)
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return newError(store.ErrPermanent, err, "%s %s: permission denied: %v", op, key, err)
	}
	return newError(store.ErrPermanent, err, "%s %s: %v", op, key, err)
}
