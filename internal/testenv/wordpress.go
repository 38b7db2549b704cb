package testenv

import (
	"bytes"
	"embed"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real WordPress for the tests of source/wordpress and `stump wordpress`: Debian's
// wordpress package served by `php -S` (router: wordpress/router.php) on a free loopback
// port, with its own MariaDB (mariadbd on a Unix socket in the instance's folder, no TCP
// port) and its own wp-content folder. Nothing of the machine's WordPress or MariaDB
// configuration is used: wordpress/wp-config.php takes everything from the environment.
//
// scripts/services.sh install_wordpress installs the Debian packages (wordpress,
// php-cli, php-mysql, mariadb-server).

//go:embed wordpress/*.php
var wordpressFiles embed.FS

// WordPressRoot is where Debian's wordpress package puts WordPress.
const WordPressRoot = "/usr/share/wordpress"

// WP is a running test WordPress.
type WP struct {
	URL      string // http://127.0.0.1:PORT (pretty permalinks on: /wp-json/ is the REST root)
	User     string // "stump", an editor
	Password string // the user's application password
	Dir      string // the instance's folder: www/, wp-content/, db/, mysql.sock, logs

	php   string
	procs []*process
}

// wordpressTools finds the programs a test WordPress needs, or says what is missing.
func wordpressTools() (tools map[string]string, why string) {
	tools = map[string]string{}
	var missing []string
	for _, name := range []string{"php", "mariadbd", "mariadb-install-db"} {
		p, err := exec.LookPath(name)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
				if fi, err2 := os.Stat(filepath.Join(dir, name)); err2 == nil && fi.Mode()&0o111 != 0 {
					p, err = filepath.Join(dir, name), nil
					break
				}
			}
		}
		if err != nil {
			missing = append(missing, name)
			continue
		}
		tools[name] = p
	}
	if _, err := os.Stat(filepath.Join(WordPressRoot, "wp-settings.php")); err != nil {
		missing = append(missing, WordPressRoot+" (Debian package wordpress)")
	}
	if len(missing) > 0 {
		return nil, "missing " + strings.Join(missing, ", ")
	}
	out, err := exec.Command(tools["php"], "-r", "echo extension_loaded('mysqli') ? 'yes' : 'no';").Output()
	if err != nil || string(out) != "yes" {
		return nil, "php has no mysqli extension (Debian package php-mysql)"
	}
	return tools, ""
}

// WordPress starts a fresh WordPress with an empty site ("Hello world!" post included),
// the user "stump" with an application password, pretty permalinks
// (/%year%/%monthnum%/%postname%/) and the time zone UTC. It stops when the test ends.
// It skips the test when WordPress, PHP or MariaDB is not installed, or fails it under
// CI=true. Starting takes about ten seconds (most of it MariaDB's first start).
func WordPress(t testing.TB) *WP {
	t.Helper()
	tools, why := wordpressTools()
	if why != "" {
		msg := "no WordPress for this test: " + why + "; run ./scripts/test, which installs them (install_wordpress in scripts/services.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing service fails the test)")
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "stump-wp-")
	if err != nil {
		t.Fatal(err)
	}
	w, err := startWordPress(tools, dir)
	t.Cleanup(func() {
		w.Stop()
		if t.Failed() {
			for _, p := range w.procs {
				t.Logf("%s, last lines:\n%s", p.logPath, p.logTail())
			}
		}
		os.RemoveAll(dir)
	})
	if err != nil {
		t.Fatalf("starting WordPress: %v", err)
	}
	return w
}

// startWordPress sets up and starts an instance in dir. On error, the processes it
// started are in w.procs (call Stop).
func startWordPress(tools map[string]string, dir string) (*WP, error) {
	w := &WP{Dir: dir, User: "stump", php: tools["php"]}
	for _, d := range []string{"www", "tmp", "wp-content/uploads", "wp-content/mu-plugins", "wp-content/plugins", "wp-content/themes"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return w, err
		}
	}
	// www/ is WordPress with this instance's wp-config.php: links to Debian's files.
	entries, err := os.ReadDir(WordPressRoot)
	if err != nil {
		return w, err
	}
	for _, e := range entries {
		if e.Name() == "wp-config.php" || e.Name() == "wp-content" {
			continue
		}
		if err := os.Symlink(filepath.Join(WordPressRoot, e.Name()), filepath.Join(dir, "www", e.Name())); err != nil {
			return w, err
		}
	}
	for name, to := range map[string]string{"wp-config.php": "www/wp-config.php", "router.php": "router.php", "setup.php": "setup.php"} {
		b, err := wordpressFiles.ReadFile("wordpress/" + name)
		if err != nil {
			return w, err
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			return w, err
		}
	}
	// The must-use plugin of the repository, so the tests run the real one.
	if root, err := RepoRoot(); err == nil {
		plugin := filepath.Join(root, "integrations", "wordpress", "stump-webhook.php")
		if _, err := os.Stat(plugin); err == nil {
			if err := os.Symlink(plugin, filepath.Join(dir, "wp-content", "mu-plugins", "stump-webhook.php")); err != nil {
				return w, err
			}
		}
	}

	// MariaDB: a fresh data folder, a socket, no TCP, and a temporary folder of its own
	// (instances sharing /tmp collide on temporary table names).
	tmp := "--tmpdir=" + filepath.Join(dir, "tmp")
	out, err := exec.Command(tools["mariadb-install-db"], "--no-defaults", "--datadir="+filepath.Join(dir, "db"), tmp,
		"--user="+currentUser(), "--auth-root-authentication-method=normal", "--skip-test-db",
		"--skip-name-resolve").CombinedOutput()
	if err != nil {
		return w, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	sock := filepath.Join(dir, "mysql.sock")
	db, err := startProcess(tools["mariadbd"], []string{"--no-defaults",
		"--datadir=" + filepath.Join(dir, "db"), tmp, "--socket=" + sock, "--skip-networking",
		"--user=" + currentUser(), "--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin",
		"--character-set-server=utf8mb4"}, nil, filepath.Join(dir, "mariadbd.log"))
	if err != nil {
		return w, err
	}
	w.procs = append(w.procs, db)
	if err := db.waitReady(30*time.Second, func() bool {
		return exec.Command(w.php, "-r", `$m = @new mysqli(null, "root", "", "", 0, $argv[1]); exit($m->connect_errno ? 1 : 0);`, sock).Run() == nil
	}); err != nil {
		return w, fmt.Errorf("mariadbd did not start (%v); log %s:\n%s", err, db.logPath, db.logTail())
	}
	if out, err := exec.Command(w.php, "-r", `$m = new mysqli(null, "root", "", "", 0, $argv[1]); $m->query("CREATE DATABASE wordpress CHARACTER SET utf8mb4") or exit(1);`, sock).CombinedOutput(); err != nil {
		return w, fmt.Errorf("creating the database: %w\n%s", err, out)
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return w, err
		}
		w.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		if w.Password == "" {
			out, err := w.runPHP(filepath.Join(dir, "setup.php"))
			if err != nil {
				return w, fmt.Errorf("installing WordPress: %w\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			w.Password = strings.TrimSpace(lines[len(lines)-1])
		}
		srv, err := startGroup(w.php, []string{"-S", "127.0.0.1:" + strconv.Itoa(port),
			"-t", filepath.Join(dir, "www"), filepath.Join(dir, "router.php")},
			append(w.env(), "PHP_CLI_SERVER_WORKERS=4"), filepath.Join(dir, "php-"+strconv.Itoa(attempt)+".log"))
		if err != nil {
			return w, err
		}
		client := &http.Client{Timeout: 5 * time.Second}
		err = srv.waitReady(15*time.Second, func() bool {
			resp, err := client.Get(w.URL + "/wp-json/")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		if err == nil {
			w.procs = append(w.procs, srv)
			return w, nil
		}
		killGroup(srv.cmd.Process.Pid, syscall.SIGKILL)
		srv.terminate(0)
		if attempt < 4 && strings.Contains(srv.logTail(), "Address already in use") {
			continue
		}
		return w, fmt.Errorf("php -S did not serve WordPress (%v); log %s:\n%s", err, srv.logPath, srv.logTail())
	}
}

// currentUser is the user name mariadbd runs as.
func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Getuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Getuid())
}

// env is the environment of this instance's PHP processes.
func (w *WP) env() []string {
	return append(os.Environ(), "STUMP_WP_DIR="+w.Dir, "STUMP_WP_URL="+w.URL)
}

func (w *WP) runPHP(file string) (string, error) {
	cmd := exec.Command(w.php, file)
	cmd.Env = w.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// phpPrelude loads WordPress in a php-cli script (see PHP).
const phpPrelude = `<?php
$_SERVER['HTTP_HOST'] = parse_url(getenv('STUMP_WP_URL'), PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
define('ABSPATH', getenv('STUMP_WP_DIR') . '/www/');
// No mail from a test WordPress (pluggable: defined before WordPress's own).
function wp_mail() { return true; }
require ABSPATH . 'wp-load.php';
require_once ABSPATH . 'wp-admin/includes/image.php';
require_once ABSPATH . 'wp-admin/includes/file.php';
require_once ABSPATH . 'wp-admin/includes/media.php';
wp_set_current_user(1);
`

// PHP runs code (PHP statements, without "<?php") with WordPress loaded, as the admin
// user, and returns what it prints. The test fails when PHP exits non-zero. Seeding goes
// through WordPress's own API (wp_insert_post, wp_update_post, ...), so its hooks run:
// the must-use plugin integrations/wordpress/stump-webhook.php among them.
func (w *WP) PHP(t testing.TB, code string) string {
	t.Helper()
	out, err := w.TryPHP(code)
	if err != nil {
		t.Fatalf("WordPress PHP: %v\n%s", err, out)
	}
	return out
}

// TryPHP is PHP returning the error instead of failing the test.
func (w *WP) TryPHP(code string) (string, error) {
	f, err := os.CreateTemp(w.Dir, "run-*.php")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(phpPrelude + code + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return w.runPHP(f.Name())
}

// Stop stops the web server (its workers too) and the database: WordPress is down, its
// port refuses connections. The folder stays (WordPress removes it at the end of the
// test).
func (w *WP) Stop() {
	for i := len(w.procs) - 1; i >= 0; i-- {
		p := w.procs[i]
		if p.cmd.SysProcAttr != nil && p.cmd.SysProcAttr.Setpgid {
			killGroup(p.cmd.Process.Pid, syscall.SIGTERM)
		}
		p.terminate(5 * time.Second)
		if p.cmd.SysProcAttr != nil && p.cmd.SysProcAttr.Setpgid {
			killGroup(p.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	w.procs = nil
}

// startGroup is startProcess with the process in a group of its own (groupProcAttr).
func startGroup(bin string, args, env []string, logPath string) (*process, error) {
	return startCmd(exec.Command(bin, args...), env, groupProcAttr(), logPath)
}
