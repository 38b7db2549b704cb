//go:build !linux

package file

import "os"

// getAttr and setAttr: extended attributes are used on Linux only; elsewhere every
// object has a sidecar file.
func getAttr(*os.File) ([]byte, error) { return nil, errAttrUnsupported }
func setAttr(*os.File, []byte) error   { return errAttrUnsupported }
