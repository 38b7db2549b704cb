package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// Set by release builds with -ldflags "-X github.com/stump-dev/stump/internal/cli.version=v1.2.3
// -X ….commit=abc -X ….date=2026-12-06T00:00:00Z" (scripts/release); empty otherwise.
var version, commit, date string

// buildVersion describes the running binary from its build information: the module
// version (a tag with `go install …@vX`, "(devel)" from a clone), the commit, its time,
// whether the tree had local changes, and the Go version.
func buildVersion() string {
	if version != "" {
		return fmt.Sprintf("%s, commit %s, built %s, %s %s/%s", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	out := v
	if rev != "" {
		out += fmt.Sprintf(", commit %.12s%s", rev, dirty)
	}
	if when != "" {
		out += ", built from a commit of " + when
	}
	return out + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// versionFlag is --version (urfave/cli's default also takes -v, which is --verbose here).
var versionFlag = &cli.BoolFlag{Name: "version", Usage: "print stump's version (module version, commit, build time) and exit"}
