package testenv

import "syscall"

// sysProcAttr makes the kernel kill a service that testenv started (versitygw,
// varnishd) when the test binary dies, so a crashed or timed-out test leaves no server
// behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
