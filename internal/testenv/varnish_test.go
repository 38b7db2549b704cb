package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestVarnish starts varnishd in front of a local server and sees it cache.
func TestVarnish(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" { // not the readiness probe's "/"
			hits.Add(1)
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		fmt.Fprintf(w, "page %s\n", r.URL.Path)
	}))
	defer origin.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(origin.URL, "http://"))
	vcl := fmt.Sprintf(`vcl 4.1;
backend origin { .host = "%s"; .port = "%s"; }
sub vcl_deliver {
	set resp.http.X-Cache = "MISS";
	if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; }
}
`, host, port)
	env := Varnish(t, vcl)
	if !strings.HasPrefix(env.URL, "http://127.0.0.1:") || env.Dir == "" {
		t.Fatalf("env = %+v", env)
	}
	for i, want := range []string{"MISS", "HIT"} {
		resp, err := http.Get(env.URL + "/a")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "page /a\n" || resp.Header.Get("X-Cache") != want {
			t.Fatalf("GET %d = %d %q X-Cache %q; want 200, the page, %s", i, resp.StatusCode, body, resp.Header.Get("X-Cache"), want)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin got %d requests, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "_.vsm_mgt")); err != nil {
		t.Errorf("no working folder for varnishlog -n: %v", err)
	}
}

// TestVarnishBadVCL: a VCL that does not compile is an error that quotes the compiler.
func TestVarnishBadVCL(t *testing.T) {
	bin := needVarnishd(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.vcl")
	if err := os.WriteFile(p, []byte("vcl 4.1;\nbackend b { .host = \"127.0.0.1\"; .port = \"9\"; }\nsub vcl_recv { set req.nope = 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := startVarnishd(bin, dir, p, VarnishOptions{})
	if err == nil {
		v.stop()
		t.Fatal("a bad VCL started")
	}
	var missing *missingVMOD
	if errors.As(err, &missing) || !strings.Contains(err.Error(), "req.nope") {
		t.Fatalf("err = %v; want the compiler's message naming req.nope", err)
	}
}

// TestVarnishMissingVMOD: a VMOD the machine lacks is told apart (it skips, not fails,
// outside CI).
func TestVarnishMissingVMOD(t *testing.T) {
	bin := needVarnishd(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "vmod.vcl")
	if err := os.WriteFile(p, []byte("vcl 4.1;\nimport stumpnosuchvmod;\nbackend b { .host = \"127.0.0.1\"; .port = \"9\"; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := startVarnishd(bin, dir, p, VarnishOptions{})
	if err == nil {
		v.stop()
		t.Fatal("a VCL importing a missing VMOD started")
	}
	var missing *missingVMOD
	if !errors.As(err, &missing) {
		t.Fatalf("err = %v; want a missing VMOD", err)
	}
}

func TestVarnishUnavailableSkipsExceptInCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	varnishUnavailable(r, "test")
	if !r.skipped || r.failed {
		t.Errorf("without CI: skipped=%v failed=%v, want a skip", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	varnishUnavailable(r, "test")
	if r.skipped || !r.failed {
		t.Errorf("with CI=true: skipped=%v failed=%v, want a failure", r.skipped, r.failed)
	}
}

func needVarnishd(t *testing.T) string {
	bin, why := findVarnishd()
	if bin == "" {
		varnishUnavailable(t, why)
	}
	return bin
}

// TestVarnishStop: stopping ends the cache process too, at once.
func TestVarnishStop(t *testing.T) {
	bin := needVarnishd(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "ok.vcl")
	if err := os.WriteFile(p, []byte("vcl 4.1;\nbackend b { .host = \"127.0.0.1\"; .port = \"9\"; }\nsub vcl_recv { return (synth(200)); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := startVarnishd(bin, dir, p, VarnishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pid := childPID(v.logPath)
	if pid <= 0 {
		t.Fatalf("no cache process in the log:\n%s", tail(v.logPath))
	}
	start := time.Now()
	v.stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %s", d)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i < 0 || !strings.ContainsAny(string(b[i+2]), "ZX") {
			t.Errorf("cache process %d still runs: %s", pid, b)
		}
	}
	if _, err := http.Get(v.env.URL + "/"); err == nil {
		t.Error("varnishd still answers")
	}
}

// TestVarnishWith: the environment reaches std.getenv, and the named and PROXY
// listeners answer (local.socket names the listener, client.ip is the PROXY source).
func TestVarnishWith(t *testing.T) {
	needVarnishd(t)
	vcl := "vcl 4.1;\nimport std;\nbackend default none;\nsub vcl_recv { return (synth(200)); }\n" +
		"sub vcl_synth { set resp.http.X-Env = std.getenv(\"TESTENV_VALUE\"); set resp.http.X-Socket = local.socket; set resp.http.X-Client = client.ip; }\n"
	v := VarnishWith(t, vcl, VarnishOptions{Env: []string{"TESTENV_VALUE=hello"}, Proxy: true, Listener: "admin2"})
	resp, err := http.Get(v.NamedURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Env") != "hello" || resp.Header.Get("X-Socket") != "admin2" {
		t.Errorf("named listener: X-Env %q X-Socket %q", resp.Header.Get("X-Env"), resp.Header.Get("X-Socket"))
	}
	c, err := net.Dial("tcp", v.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PROXY TCP4 192.0.2.1 127.0.0.1 4000 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	pr, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.Header.Get("X-Client") != "192.0.2.1" {
		t.Errorf("PROXY listener: client.ip %q", pr.Header.Get("X-Client"))
	}
}
