package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stump-dev/stump/internal/testenv"
	"github.com/stump-dev/stump/publish"
)

// Helpers shared by the tests that run the stump CLI as a subprocess against versitygw
// with Varnish in front (atomic_load_test.go, bench_test.go).

// buildStump builds ./cmd/stump into a folder of the test and returns the binary.
func buildStump(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stump")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testenv.BuildStump(ctx, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// cliTarget is the s3:// target of bucket on the test server.
func cliTarget(env testenv.S3Env, bucket string) string {
	return fmt.Sprintf("s3://%s?endpoint=%s&path_style=true&region=us-east-1", bucket, url.QueryEscape(env.Endpoint))
}

// cliEnv is this process's environment without AWS or STUMP settings, with the test
// server's credentials and no shared AWS files or instance metadata.
func cliEnv(env testenv.S3Env, extra ...string) []string {
	return testenv.CLIEnv(env, "edge-test", extra...)
}

// stumpRun is a finished stump process.
type stumpRun struct {
	args           []string
	code           int            // exit code; -1 when a signal ended it
	signal         syscall.Signal // the signal that ended it, or 0
	stdout, stderr string
	elapsed        time.Duration
}

func (r stumpRun) String() string {
	how := fmt.Sprintf("exit %d", r.code)
	if r.signal != 0 {
		how = "killed by " + r.signal.String()
	}
	return fmt.Sprintf("stump %s: %s after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), how, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// runStump runs bin in dir with env (at most limit) and returns how it ended.
func runStump(t testing.TB, bin, dir string, env []string, limit time.Duration, args ...string) stumpRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := stumpRun{args: args, stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	default:
		t.Fatalf("stump %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out after %s: %s", limit, r)
	}
	return r
}

// deployOf parses `stump publish --json` and returns the deploy it made live.
func deployOf(t testing.TB, r stumpRun) string {
	t.Helper()
	var out struct {
		Sites []struct {
			Result *publish.Result `json:"result"`
		} `json:"sites"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Sites) != 1 || out.Sites[0].Result == nil || out.Sites[0].Result.Deploy == "" {
		t.Fatalf("publish --json named no deploy (%v): %s", err, r)
	}
	return out.Sites[0].Result.Deploy
}

// writeWS writes files (slash paths relative to dir) into dir.
func writeWS(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
