//go:build !linux

package file

import "os"

// syncFS is a no-op where syncfs(2) is missing.
var syncFS = func(*os.File) error { return nil }

// syncFSWorks: flush fsyncs every file one by one, however many.
const syncFSWorks = false
