//go:build tools

// Package falco pins the version of falco (a Fastly VCL linter, simulator and test
// runner) that scripts/services.sh installs into .stump/bin for the edge tests.
package falco

import _ "github.com/ysugimoto/falco/cmd/falco"
