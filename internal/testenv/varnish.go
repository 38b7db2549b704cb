package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvVarnish is what start_varnish (scripts/services.sh) exports: the URL of a Varnish
// that scripts started with the recommended VCL in front of their versitygw. Go tests
// do not use it: their VCL names a backend port chosen at test time, so Varnish starts
// its own varnishd for each test.
const EnvVarnish = "STUMP_TEST_VARNISH"

// VarnishEnv tells how to reach a varnishd that Varnish started.
type VarnishEnv struct {
	// URL is http://127.0.0.1:PORT, the HTTP listener.
	URL string
	// Addr is 127.0.0.1:PORT.
	Addr string
	// ProxyURL and ProxyAddr are a second listener speaking the PROXY protocol (v1 or
	// v2), when VarnishOptions.Proxy asked for it.
	ProxyURL, ProxyAddr string
	// NamedURL and NamedAddr are a third listener, named VarnishOptions.Listener.
	NamedURL, NamedAddr string
	// Dir is varnishd's working folder (-n): `varnishlog -n DIR -d` shows what it did,
	// `varnishadm -n DIR ban.list` asks it (the admin port listens on loopback).
	Dir string
}

// Client returns an HTTP client that sends every request to this varnishd, keeping the
// URL's host as the Host header (the generated VCL routes sites by Host): fetch
// http://SITE-HOST/path with it. It does not follow redirects and asks for no
// compression, so a test sees the bytes and statuses Varnish serves.
func (v VarnishEnv) Client() *http.Client { return addrClient(v.Addr) }

// varnishdPaths are where Debian's package puts varnishd, for a PATH without sbin.
var varnishdPaths = []string{"/usr/sbin/varnishd", "/usr/local/sbin/varnishd"}

// findVarnishd returns the varnishd binary: on PATH, else in the usual sbin folders.
func findVarnishd() (bin, why string) {
	if p, err := exec.LookPath("varnishd"); err == nil {
		return p, ""
	}
	for _, p := range varnishdPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, ""
		}
	}
	return "", "varnishd is neither on PATH nor in " + strings.Join(varnishdPaths, ", ")
}

// Varnish starts varnishd for this test with the given VCL (its text), listening on a
// free loopback port, and stops it when the test ends. It uses `-j none` (no privilege
// separation, so it runs the same as root or not), `-s malloc,64m`, and an admin port
// on loopback. It skips the test when varnishd, or a VMOD the VCL imports, is missing
// (install_varnish in scripts/services.sh installs Debian's varnish and
// varnish-modules), and fails it instead under CI=true. A VCL that does not compile
// fails the test with the compiler's message.
func Varnish(t testing.TB, vcl string) VarnishEnv {
	t.Helper()
	return VarnishWith(t, vcl, VarnishOptions{})
}

// VarnishOptions are what VarnishWith adds to Varnish's varnishd.
type VarnishOptions struct {
	// Env is added to varnishd's environment (the VCL reads it with std.getenv).
	Env []string
	// Proxy adds a loopback listener that speaks the PROXY protocol (-a ADDR,PROXY).
	Proxy bool
	// Listener, when set, adds a loopback listener with this name (-a NAME=ADDR).
	Listener string
}

// VarnishWith is Varnish with more listeners or environment.
func VarnishWith(t testing.TB, vcl string, o VarnishOptions) VarnishEnv {
	t.Helper()
	bin, why := findVarnishd()
	if bin == "" {
		varnishUnavailable(t, why)
		return VarnishEnv{}
	}
	dir := t.TempDir()
	vclPath := filepath.Join(dir, "test.vcl")
	if err := os.WriteFile(vclPath, []byte(vcl), 0o644); err != nil {
		t.Fatal(err)
	}
	var v *varnishd
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		v, err = startVarnishd(bin, dir, vclPath, o)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		var missing *missingVMOD
		if errors.As(err, &missing) {
			varnishUnavailable(t, missing.Error())
			return VarnishEnv{}
		}
		t.Fatalf("starting varnishd: %v", err)
	}
	t.Cleanup(func() {
		v.stop()
		if t.Failed() {
			t.Logf("varnishd log (%s), last lines:\n%s", v.logPath, tail(v.logPath))
		}
	})
	return v.env
}

// varnishUnavailable skips the test, or fails it in CI, where a missing service is a
// failure.
func varnishUnavailable(t testing.TB, why string) {
	t.Helper()
	msg := "no Varnish for this test: " + why + "; run ./scripts/test, or install_varnish from " +
		"scripts/services.sh, which installs Debian's varnish and varnish-modules"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing service fails the test)")
		return
	}
	t.Skip(msg)
}

// missingVMOD is a VCL that imports a VMOD this machine does not have.
type missingVMOD struct{ detail string }

func (m *missingVMOD) Error() string {
	return "varnishd cannot load a VMOD the VCL imports (is varnish-modules installed?): " + m.detail
}

type varnishd struct {
	*process
	env  VarnishEnv
	once sync.Once
}

func startVarnishd(bin, dir, vclPath string, o VarnishOptions) (*varnishd, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := VarnishEnv{URL: "http://" + addr, Addr: addr}
	var extra []string
	if o.Proxy {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		env.ProxyAddr = "127.0.0.1:" + strconv.Itoa(p)
		env.ProxyURL = "http://" + env.ProxyAddr
		extra = append(extra, "-a", env.ProxyAddr+",PROXY")
	}
	if o.Listener != "" {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		env.NamedAddr = "127.0.0.1:" + strconv.Itoa(p)
		env.NamedURL = "http://" + env.NamedAddr
		extra = append(extra, "-a", o.Listener+"="+env.NamedAddr)
	}
	var penv []string
	if len(o.Env) > 0 {
		penv = append(os.Environ(), o.Env...)
	}
	work := filepath.Join(dir, "varnishd")
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "varnishd.log")
	p, err := startProcess(bin, append(append([]string{
		"-F",         // stay in the foreground, as our child
		"-j", "none", // no jail: works as root and as any user
		"-a", addr,
	}, extra...), []string{
		"-T", "127.0.0.1:0", // admin port on loopback, for varnishadm -n
		"-n", work,
		"-s", "malloc,64m",
		"-f", vclPath,
		"-p", "thread_pools=1", // a test needs few threads
		"-p", "thread_pool_min=10",
	}...), penv, logPath)
	if err != nil {
		return nil, err
	}
	env.Dir = work
	v := &varnishd{process: p, env: env}

	client := &http.Client{Timeout: 2 * time.Second}
	// Compiling the VCL takes about a second; more on a loaded machine.
	ready := func() bool {
		resp, err := client.Get(v.env.URL + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true // any HTTP answer: the VCL is loaded
	}
	switch err := p.waitReady(60*time.Second, ready); err {
	case nil:
		return v, nil
	case errExited:
		v.stop()
		log := tail(logPath)
		switch {
		case strings.Contains(log, "ould not get socket") || strings.Contains(log, "ddress already in use"):
			return nil, errPortTaken
		case strings.Contains(log, "VMOD"):
			if i := strings.Index(log, "Message from VCC-compiler:"); i >= 0 {
				log = log[i:]
			}
			if strings.Contains(log, "Could not find VMOD") || strings.Contains(log, "Could not open VMOD") ||
				strings.Contains(log, "Could not load VMOD") {
				return nil, &missingVMOD{detail: firstLines(log, 4)}
			}
		}
		return nil, fmt.Errorf("varnishd exited at start (%s); log %s:\n%s", v.cmd.ProcessState, logPath, log)
	default:
		v.stop()
		return nil, fmt.Errorf("varnishd did not answer on %s within 60s; log %s:\n%s", addr, logPath, tail(logPath))
	}
}

// stop ends varnishd and waits for it. A test needs no graceful stop (SIGTERM takes
// about two seconds): the manager is killed, and its cache process, which exits within
// milliseconds of seeing the manager gone, is waited for, so that nothing writes into
// the folder the test then removes.
func (v *varnishd) stop() {
	v.once.Do(func() {
		v.terminate(0)
		if pid := childPID(v.logPath); pid > 0 {
			waitGone(pid, 3*time.Second)
		}
	})
}

var childStarted = regexp.MustCompile(`Child \((\d+)\) Started`)

// childPID reads the cache process's id from varnishd's log ("Child (N) Started").
func childPID(logPath string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	all := childStarted.FindAllSubmatch(b, -1)
	if len(all) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(string(all[len(all)-1][1]))
	return pid
}

// waitGone waits until process pid has exited (is gone or a zombie), as /proc tells;
// without /proc it returns at once.
func waitGone(pid int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " / ")
}
