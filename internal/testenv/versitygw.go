package testenv

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versitygwVersion is the version scripts/services.sh installs (VERSITYGW_VERSION).
const versitygwVersion = "v1.8.0"

// findVersitygw returns the versitygw binary to start: <repo>/.stump/bin/versitygw, or
// else versitygw on PATH. When there is none it returns "" and why.
func findVersitygw() (bin, why string) {
	local := ""
	if root, err := RepoRoot(); err == nil {
		local = filepath.Join(root, ".stump", "bin", "versitygw")
		if fi, err := os.Stat(local); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return local, ""
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, ""
	}
	if local == "" {
		return "", "versitygw is not on PATH (and no go.mod was found above the working folder)"
	}
	return "", "versitygw is neither at " + local + " nor on PATH"
}

// versionNote says when bin is not the version the scripts install, else "".
func versionNote(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil || info.Main.Version == versitygwVersion {
		return ""
	}
	return fmt.Sprintf("note: %s is versitygw %s, the scripts install %s", bin, info.Main.Version, versitygwVersion)
}

// server is a running versitygw process.
type server struct {
	*process
	env     S3Env
	stopped sync.Once
}

// startVersitygw starts versitygw with its data under root (which must exist) and its
// output in logPath ("" for root/../versitygw.log next to it), on free loopback ports,
// and waits until the S3 API and the website endpoint answer.
func startVersitygw(bin, dir, logPath string) (*server, error) {
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if logPath == "" {
		logPath = filepath.Join(dir, "versitygw.log")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		srv, err := tryStart(bin, root, logPath)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

func tryStart(bin, root, logPath string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	wport, err := freePort()
	if err != nil {
		return nil, err
	}
	if port == wport {
		return nil, errPortTaken
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waddr := "127.0.0.1:" + strconv.Itoa(wport)
	p, err := startProcess(bin, []string{
		"--port", addr,
		"--website", waddr, "--website-domain", websiteDomain,
		"--region", TestRegion, "--health", "/health", "--quiet",
		"posix", root},
		append(os.Environ(), "ROOT_ACCESS_KEY="+TestAccessKey, "ROOT_SECRET_KEY="+TestSecretKey),
		logPath)
	if err != nil {
		return nil, err
	}
	srv := &server{
		process: p,
		env: S3Env{
			Endpoint:      "http://" + addr,
			AccessKey:     TestAccessKey,
			SecretKey:     TestSecretKey,
			Region:        TestRegion,
			Website:       "http://" + waddr,
			WebsiteDomain: websiteDomain,
		},
	}

	client := &http.Client{Timeout: 2 * time.Second}
	switch err := p.waitReady(15*time.Second, func() bool { return ready(client, srv.env) }); err {
	case nil:
		return srv, nil
	case errExited:
		srv.stop()
		tail := srv.logTail()
		if bytes.Contains([]byte(tail), []byte("address already in use")) {
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("versitygw exited at start (%s); log %s:\n%s", p.cmd.ProcessState, logPath, tail)
	default:
		srv.stop()
		return nil, fmt.Errorf("versitygw did not answer on %s within 15s; log %s:\n%s", addr, logPath, srv.logTail())
	}
}

// ready reports whether the S3 API's health check passes and the website endpoint
// answers at all (404 NoSuchBucket for the bare domain is an answer).
func ready(client *http.Client, env S3Env) bool {
	resp, err := client.Get(env.Endpoint + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	resp, err = env.WebsiteClient().Get(env.WebsiteURL("ready", "/"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// stop ends the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (s *server) stop() {
	s.stopped.Do(func() { s.terminate(5 * time.Second) })
}

// The instance shared by the tests of a binary whose TestMain calls Main.
var (
	mainActive atomic.Bool
	shared     struct {
		once sync.Once
		srv  *server
		dir  string
		err  error
	}
)

func sharedServer(bin string) (S3Env, error) {
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "stump-versitygw-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.srv, shared.err = startVersitygw(bin, dir, "")
	})
	if shared.err != nil {
		return S3Env{}, shared.err
	}
	return shared.srv.env, nil
}

// Main runs the tests of a package and exits; call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// With it, the tests of the package share one versitygw (when the environment names
// none), started by the first S3 call and stopped after the last test. When the tests
// failed, the server's log is printed.
func Main(m *testing.M) {
	mainActive.Store(true)
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "testenv: versitygw log, last lines:\n%s\n", shared.srv.logTail())
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
