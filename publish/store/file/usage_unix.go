//go:build unix

package file

import (
	"io/fs"
	"syscall"
)

// inodeBlocks returns a file's inode and its 512-byte blocks on disk.
func inodeBlocks(fi fs.FileInfo) (uint64, int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Ino), int64(st.Blocks), true
}
