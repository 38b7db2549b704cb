package fastly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/stump-dev/stump/edge"
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

// CheckVCL lints vcl (the main VCL Want rendered for the plan's sites on one service)
// with Preamble in a scratch folder under dir, and runs SmokeTests against it. It
// returns falco's reports.
func CheckVCL(ctx context.Context, bin string, p *edge.Plan, vcl []byte, dir string) (string, error) {
	work, err := os.MkdirTemp(dir, "falco-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	secrets := map[string]string{}
	for _, s := range p.Sites {
		if s.PreviewAuthEnv != "" {
			secrets[PreviewAuthKey(s.Name)] = "Basic placeholder"
		}
	}
	main := filepath.Join(work, "main.vcl")
	if err := os.WriteFile(main, append(Preamble(p, secrets), vcl...), 0o644); err != nil {
		return "", err
	}
	lint, err := Lint(ctx, bin, main)
	if err != nil {
		return lint, err
	}
	tests := filepath.Join(work, "tests")
	if err := os.Mkdir(tests, 0o755); err != nil {
		return lint, err
	}
	if err := os.WriteFile(filepath.Join(tests, "smoke.test.vcl"), SmokeTests(p), 0o644); err != nil {
		return lint, err
	}
	report, err := Test(ctx, bin, main, tests)
	return lint + report, err
}
