package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/stump-dev/stump/publish/store"
)

func invalidKey(key, why string) error {
	return store.Errorf(store.ErrPermanent, nil, "invalid key %q: %s", key, why)
}

// wrapOS turns an error of the file system into one for op on key: context errors
// pass through; errors a retry might cure (too many open files, interrupted, busy,
// I/O, timed out) stay transient; every other error of a local folder (permission,
// read-only, disk full, name too long, a symlink leaving the root) is permanent.
func wrapOS(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrPermanent) {
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
		return store.Errorf(store.ErrPermanent, err, "%s %s: permission denied: %v", op, key, err)
	}
	return store.Errorf(store.ErrPermanent, err, "%s %s: %v", op, key, err)
}

// errNoAttr: the file has no sidecar attribute; errAttrUnsupported: the file system
// has no user extended attributes; errAttrTooLarge: the file system does not take an
// attribute that large. In the last two cases the sidecar is a file.
var (
	errNoAttr          = errors.New("no sidecar attribute")
	errAttrUnsupported = errors.New("extended attributes not supported")
	errAttrTooLarge    = errors.New("extended attribute too large")
)
