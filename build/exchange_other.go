//go:build !linux

package build

import "errors"

// exchange is not available here: swap falls back to moving the old tree aside.
func exchange(a, b string) error { return errors.ErrUnsupported }
