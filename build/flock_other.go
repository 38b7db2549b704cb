//go:build !unix

package build

import "os"

// lockFile is a no-op here: builds of one output folder do not take turns.
func lockFile(*os.File) error { return nil }
