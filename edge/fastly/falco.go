package fastly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNoFalco is returned when falco is not installed.
var ErrNoFalco = errors.New("falco is not installed: run ./scripts/test (which installs it into .stump/bin) or `go install github.com/ysugimoto/falco/cmd/falco@v1.11.2`")

// FindFalco returns falco: .stump/bin/falco under root (when root is not ""), else
// falco on PATH.
func FindFalco(root string) (string, error) {
	if root != "" {
		p := filepath.Join(root, ".stump", "bin", "falco")
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("falco"); err == nil {
		return p, nil
	}
	return "", ErrNoFalco
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

func runFalco(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Env = append(cmd.Environ(), "NO_COLOR=1")
	err := cmd.Run()
	text := ansiRE.ReplaceAllString(out.String(), "")
	if err != nil {
		return text, fmt.Errorf("falco %s: %w", args[0], err)
	}
	return text, nil
}

// Lint runs `falco lint` on the VCL file at path (Preamble + VCL) and returns its
// report; an error when falco finds errors.
func Lint(ctx context.Context, bin, path string) (string, error) {
	out, err := runFalco(ctx, bin, "lint", "-I", filepath.Dir(path), path)
	if err == nil && !strings.Contains(out, " 0 errors") {
		err = fmt.Errorf("falco lint reported errors")
	}
	return out, err
}

// Test runs the VCL unit tests (*.test.vcl files in dir) against the VCL file at path
// with `falco test`, and returns its report; an error when a test fails.
func Test(ctx context.Context, bin, path, dir string) (string, error) {
	return runFalco(ctx, bin, "test", "-I", filepath.Dir(path), "-I", dir, path)
}
