package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FalcoVersion is the falco (Fastly VCL linter, simulator and test runner) that
// scripts/services.sh installs (FALCO_VERSION, pinned in tools/falco/go.mod).
const FalcoVersion = "v1.11.2"

// FindFalco returns the falco binary: <repo>/.stump/bin/falco, else falco on PATH.
// When there is none it returns "" and why.
func FindFalco() (bin, why string) {
	local := ""
	if root, err := RepoRoot(); err == nil {
		local = filepath.Join(root, ".stump", "bin", "falco")
		if fi, err := os.Stat(local); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return local, ""
		}
	}
	if p, err := exec.LookPath("falco"); err == nil {
		return p, ""
	}
	return "", "falco " + FalcoVersion + " is neither at " + local + " nor on PATH; run ./scripts/test, which builds it (tools/falco, with its patch) into .stump/bin"
}

// Falco returns the falco binary; without one it skips the test, or fails it under
// CI=true.
func Falco(t testing.TB) string {
	t.Helper()
	bin, why := FindFalco()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why + " (CI=true: a missing service fails the test)")
		}
		t.Skip(why)
	}
	return bin
}

// FalcoEnv is a running `falco simulate --proxy`.
type FalcoEnv struct {
	// URL is http://127.0.0.1:PORT; send requests there with the site's Host.
	URL  string
	Addr string
	// Log is the simulator's output.
	Log string
}

// FalcoSimulate starts `falco simulate --proxy` on a free port with the VCL at vclPath
// (run in its folder, where a .falco.yml may sit), waits until it answers and stops it
// when the test ends. falco listens on every interface (it has no address flag); the
// tests talk to it on loopback only.
func FalcoSimulate(t testing.TB, vclPath string) FalcoEnv {
	t.Helper()
	bin := Falco(t)
	dir := filepath.Dir(vclPath)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(t.TempDir(), "falco.log")
		p, err := startProcessIn(dir, bin, []string{"simulate", "--proxy", "--port=" + strconv.Itoa(port), vclPath}, logPath)
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		err = p.waitReady(30*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		if err == nil {
			t.Cleanup(func() {
				p.terminate(2 * time.Second)
				if t.Failed() {
					t.Logf("falco log (%s), last lines:\n%s", logPath, p.logTail())
				}
			})
			return FalcoEnv{URL: "http://" + addr, Addr: addr, Log: logPath}
		}
		p.terminate(0)
		lastErr = fmt.Errorf("falco simulate: %w:\n%s", err, p.logTail())
	}
	t.Fatal(lastErr)
	return FalcoEnv{}
}
