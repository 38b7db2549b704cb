package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// EnvChromium names the browser binary for the browser tests (default /usr/bin/chromium,
// Debian's chromium package, which scripts/services.sh install_chromium installs).
const EnvChromium = "STUMP_TEST_CHROMIUM"

// DefaultChromium is where Debian's chromium package puts the browser.
const DefaultChromium = "/usr/bin/chromium"

// ChromiumFlags are the command-line flags the browser tests run Chromium with (each
// without its leading "--"), besides a fresh --user-data-dir per test and the remote
// debugging port chromedp adds: headless, no sandbox (containers, root), no GPU, and
// none of the background traffic of a desktop browser.
var ChromiumFlags = []string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
	"no-first-run",
}

// Chromium returns the path of the Chromium binary for browser tests: $STUMP_TEST_CHROMIUM,
// else /usr/bin/chromium. Without one the test is skipped with the reason, or fails under
// CI=true (CI must never pass by skipping).
func Chromium(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvChromium)
	if bin == "" {
		bin = DefaultChromium
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		msg := "no Chromium for this browser test: " + bin + " is missing; install Debian's chromium " +
			"(source scripts/services.sh and run install_chromium), or set " + EnvChromium
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing service fails the test)")
		}
		t.Skip(msg)
	}
	if v := chromiumVersion(bin); v != "" {
		t.Log(v)
	}
	return bin
}

// chromiumVersion returns the first line `chromium --version` prints ("" on failure).
func chromiumVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "Chromium") || strings.Contains(line, "Chrome") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
