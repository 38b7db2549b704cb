//go:build linux

package file

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// attrName is the extended attribute that holds an object's sidecar.
const attrName = "user.stump"

// getAttr reads f's sidecar attribute; errNoAttr when it has none,
// errAttrUnsupported when the file system has no user attributes.
func getAttr(f *os.File) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	for {
		var n int
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			gerr = ignoringEINTR(func() (err error) { n, err = unix.Fgetxattr(int(fd), attrName, buf); return err })
		}); err != nil {
			return nil, err
		}
		switch {
		case gerr == nil:
			return buf[:n], nil
		case errors.Is(gerr, unix.ERANGE) && len(buf) < 64<<10:
			buf = make([]byte, 8*len(buf))
		case errors.Is(gerr, unix.ENODATA):
			return nil, errNoAttr
		case errors.Is(gerr, unix.ENOTSUP), errors.Is(gerr, unix.EOPNOTSUPP):
			return nil, errAttrUnsupported
		default:
			return nil, gerr
		}
	}
}

// setAttr writes f's sidecar attribute.
func setAttr(f *os.File, b []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = ignoringEINTR(func() error { return unix.Fsetxattr(int(fd), attrName, b, 0) })
	}); err != nil {
		return err
	}
	switch {
	case errors.Is(serr, unix.ENOTSUP), errors.Is(serr, unix.EOPNOTSUPP):
		return errAttrUnsupported
	case errors.Is(serr, unix.E2BIG), errors.Is(serr, unix.ERANGE), errors.Is(serr, unix.ENOSPC):
		// Larger than the file system takes (ext4: a block). ENOSPC also when the
		// disk is full: the sidecar file's write then fails with it too.
		return errAttrTooLarge
	}
	return serr
}
