//go:build unix

package publish

import (
	"errors"
	"syscall"
)

// processGone reports that no process pid runs on this host.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
