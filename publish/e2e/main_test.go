package e2e

import (
	"bytes"
	"context"
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
)

// The CLI under test and the workspaces the tests copy, made once by TestMain.
var (
	stumpBin string // the stump binary built from ./cmd/stump
	wsV1     string // a workspace with site k, built (public/k holds its output)
	wsV2     string // the same site with its CSS, a page and a static file changed, built
)

// TestMain builds the CLI and the two versions of the test site, points the AWS default
// chain at the test server's credentials only (for the in-process stores), and shares
// one versitygw among the tests.
func TestMain(m *testing.M) {
	testenv.IsolateAWS()
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// workDir is where TestMain puts the binary and the workspaces: next to the test binary
// when go test runs it from its temporary work folder (removed when go test ends), else
// a new temporary folder (testenv.Main exits the process, so nothing could remove it).
func workDir() (string, error) {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		dir := filepath.Join(filepath.Dir(exe), "e2e")
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "stump-e2e-")
}

func setup() error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := workDir()
	if err != nil {
		return err
	}
	stumpBin = filepath.Join(dir, "stump")
	if err := testenv.BuildStump(context.Background(), stumpBin); err != nil {
		return err
	}
	wsV1 = filepath.Join(dir, "v1")
	wsV2 = filepath.Join(dir, "v2")
	for _, d := range []string{wsV1, wsV2} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := runSetup(d, "new", "site", "k"); err != nil {
			return err
		}
		if err := writeFiles(d, siteV1); err != nil {
			return err
		}
	}
	css, err := os.ReadFile(filepath.Join(root, "themes", "campaign", "static", "css", "site.css"))
	if err != nil {
		return err
	}
	v2 := map[string]string{
		"sites/k/static/css/site.css": string(css) + "\n/* v2 */\n.v2-marker { outline: 1px solid red; }\n",
		"sites/k/static/new.txt":      "new in v2\n",
	}
	for k, v := range siteV2 {
		v2[k] = v
	}
	if err := writeFiles(wsV2, v2); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(wsV2, "sites/k/static/old.txt")); err != nil {
		return err
	}
	for _, d := range []string{wsV1, wsV2} {
		if err := runSetup(d, "build", "--site", "k"); err != nil {
			return err
		}
	}
	return nil
}

// The test site: the scaffold's home page plus a section of three posts and a static
// file. v2 changes a post's text, the CSS (so its fingerprinted name), replaces old.txt
// by new.txt, and keeps the set of pages, so every link of either version names a page
// of both.
var (
	siteV1 = map[string]string{
		"sites/k/content/posts/_index.md": "---\ntitle: Posts\n---\nAll the posts.\n",
		"sites/k/content/posts/a.md":      "---\ntitle: Alpha\ndate: 2024-01-01\n---\nThe first post.\n",
		"sites/k/content/posts/b.md":      "---\ntitle: Beta\ndate: 2024-02-01\n---\nThe second post, version one.\n",
		"sites/k/content/posts/c.md":      "---\ntitle: Gamma\ndate: 2024-03-01\n---\nThe third post.\n",
		"sites/k/content/about.md":        "---\ntitle: About\n---\nAbout [the posts](/posts/) and [Alpha](/posts/a/).\n",
		"sites/k/static/old.txt":          "only in v1\n",
	}
	siteV2 = map[string]string{
		"sites/k/content/posts/b.md": "---\ntitle: Beta\ndate: 2024-02-01\n---\nThe second post, version two (v2-page-marker).\n",
	}
)

func writeFiles(dir string, files map[string]string) error {
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func runSetup(dir string, args ...string) error {
	cmd := exec.Command(stumpBin, args...)
	cmd.Dir = dir
	cmd.Env = baseEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stump %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

// copyWorkspace copies a workspace template into a new folder of the test.
func copyWorkspace(t testing.TB, from string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ws")
	if err := os.CopyFS(dir, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// baseEnv is the environment of the subprocesses: this process's, without any AWS or
// STUMP setting, and with the shared AWS files and the instance metadata turned off.
func baseEnv() []string { return testenv.CLIBaseEnv("e2e") }

// cliEnv is baseEnv with the test server's credentials (given explicitly) and extra
// settings.
func cliEnv(s3 testenv.S3Env, extra ...string) []string {
	return testenv.CLIEnv(s3, "e2e", extra...)
}

// targetURL is the s3:// target of bucket at endpoint (the server, or a proxy).
func targetURL(bucket, endpoint string) string {
	return fmt.Sprintf("s3://%s?endpoint=%s&path_style=true&region=us-east-1", bucket, url.QueryEscape(endpoint))
}

// cliRun is a finished stump process.
type cliRun struct {
	args           []string
	pid            int
	code           int            // exit code; -1 when a signal ended it
	signal         syscall.Signal // the signal that ended it, or 0
	stdout, stderr string
}

func (r cliRun) String() string {
	return fmt.Sprintf("stump %s (pid %d): %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.pid, r.how(), r.stdout, r.stderr)
}

// how says how the process ended: "exit N" or "killed by signal N (name)".
func (r cliRun) how() string {
	if r.signal != 0 {
		return fmt.Sprintf("killed by signal %d (%v)", int(r.signal), r.signal)
	}
	return fmt.Sprintf("exit %d", r.code)
}

// start starts stump in the workspace dir with env.
func start(t testing.TB, ctx context.Context, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, stumpBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stump %s: %v", strings.Join(args, " "), err)
	}
	return cmd, &out, &errb
}

// wait waits for a started stump.
func wait(t testing.TB, cmd *exec.Cmd, out, errb *bytes.Buffer) cliRun {
	t.Helper()
	r, err := ended(cmd, out, errb, cmd.Wait())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ended tells how a started stump ended, from what cmd.Wait returned; the error is
// one of waiting (not an exit status).
func ended(cmd *exec.Cmd, out, errb *bytes.Buffer, err error) (cliRun, error) {
	r := cliRun{args: cmd.Args[1:], pid: cmd.Process.Pid, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	default:
		return r, fmt.Errorf("stump %s: %w", strings.Join(r.args, " "), err)
	}
	return r, nil
}

// stump runs the CLI in dir with env and returns how it ended. It fails the test when
// the process runs over a minute.
func stump(t testing.TB, dir string, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, out, errb := start(t, ctx, dir, env, args...)
	r := wait(t, cmd, out, errb)
	if ctx.Err() != nil {
		t.Fatalf("timed out: %s", r)
	}
	return r
}

// mustStump runs the CLI and fails the test unless it exits 0.
func mustStump(t testing.TB, dir string, env []string, args ...string) cliRun {
	t.Helper()
	r := stump(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	return r
}
