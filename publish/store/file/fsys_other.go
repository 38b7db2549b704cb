//go:build !linux

package file

// openFS opens the store folder dir with os.Root (see fsys).
func openFS(dir string) (fsys, error) { return openRoot(dir) }

// forceRoot is always the case here.
var forceRoot = true
