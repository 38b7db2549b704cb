//go:build windows

package file

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// flock takes a lock on f with LockFileEx: shared or exclusive. It blocks until
// granted. (Untested on Windows: stump's CI runs on Linux.)
func flock(f *os.File, exclusive bool) error {
	var flags uint32
	if exclusive {
		flags = windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	ol := new(windows.Overlapped)
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, ol)
}

func funlock(f *os.File) error {
	ol := new(windows.Overlapped)
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
}

// fileID is 0 on Windows: sidecars are checked by size and modification time only.
func fileID(fs.FileInfo) uint64 { return 0 }
