package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a service that testenv started (versitygw, varnishd): a child of the test
// binary that dies with it, with its output in a log file.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	logPath string
	logFile *os.File
}

// startProcess starts bin with args and env (nil: this process's environment), its
// stdout and stderr going to a new file logPath.
func startProcess(bin string, args, env []string, logPath string) (*process, error) {
	return startCmd(exec.Command(bin, args...), env, sysProcAttr(), logPath)
}

// startProcessIn is startProcess with the working folder dir.
func startProcessIn(dir, bin string, args []string, logPath string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return startCmd(cmd, nil, sysProcAttr(), logPath)
}

// startCmd starts cmd with env and attr, its output going to a new file logPath, and
// watches for its end.
func startCmd(cmd *exec.Cmd, env []string, attr *syscall.SysProcAttr, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), logPath: logPath, logFile: logFile}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// errExited and errTimeout are what waitReady returns when the process is not ready.
var (
	errExited  = errors.New("exited")
	errTimeout = errors.New("timed out")
)

// waitReady polls ready every 50 ms until it reports true (nil), the process exits
// (errExited) or timeout passes (errTimeout). It does not stop the process.
func (p *process) waitReady(timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.done:
			return errExited
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
	}
}

// terminate ends the process and waits for it, then closes its log file. With grace > 0
// it sends SIGTERM first and kills the process only when it has not exited after grace;
// with grace 0 it kills it at once. Call it once.
func (p *process) terminate(grace time.Duration) {
	select {
	case <-p.done:
	default:
		if grace <= 0 {
			_ = p.cmd.Process.Kill()
			<-p.done
			break
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.logFile.Close()
}

// logTail returns the last lines of the process's log.
func (p *process) logTail() string { return tail(p.logPath) }

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
