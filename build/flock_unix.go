//go:build unix

package build

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive lock of f, waiting for it (flock), held until f is closed.
func lockFile(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }
