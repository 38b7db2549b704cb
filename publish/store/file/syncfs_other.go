//go:build !linux

package file

import "os"

// syncFS is a no-op where syncfs(2) is missing: a conditional write still syncs its
// own files, but not the unconditional writes made before it.
var syncFS = func(*os.File) error { return nil }
