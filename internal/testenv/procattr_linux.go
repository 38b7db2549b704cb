package testenv

import "syscall"

// sysProcAttr makes the kernel kill a service that testenv started (versitygw,
// varnishd) when the test binary dies, so a crashed or timed-out test leaves no server
// behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// groupProcAttr is sysProcAttr in a process group of its own, for a server that forks
// workers (php -S with PHP_CLI_SERVER_WORKERS): killGroup then reaches them all.
func groupProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killGroup sends sig to the process group of pid (see groupProcAttr).
func killGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
