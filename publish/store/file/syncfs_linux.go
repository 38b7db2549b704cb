package file

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes every earlier write of the file system that holds f (syncfs(2)).
var syncFS = func(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}

// syncFSWorks: flush may use syncFS instead of fsyncs of many files.
const syncFSWorks = true
