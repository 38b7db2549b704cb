//go:build unix

package cli

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// faultHook is the deploy step hook of the fault tests: STUMP_FAULT_KILL_AT kills this
// process (SIGKILL) and STUMP_FAULT_STOP_AT stops it (SIGSTOP) at a protocol step; nil
// when neither is set.
func faultHook() func(string) error {
	if spec := os.Getenv("STUMP_FAULT_KILL_AT"); spec != "" {
		return signalAt(spec, syscall.SIGKILL)
	}
	if spec := os.Getenv("STUMP_FAULT_STOP_AT"); spec != "" {
		return signalAt(spec, syscall.SIGSTOP)
	}
	return nil
}

// signalAt returns a step hook that sends this process sig at a protocol step: "STEP"
// or "STEP:N" (the Nth time, for "put" and "copy"). It exists for the tests that check
// a publish killed (SIGKILL, from STUMP_FAULT_KILL_AT) or paused (SIGSTOP, from
// STUMP_FAULT_STOP_AT; the test sends SIGCONT) at any point leaves a state the next
// run repairs; it is not a user setting.
func signalAt(spec string, sig syscall.Signal) func(string) error {
	step, nth, _ := strings.Cut(spec, ":")
	n, _ := strconv.Atoi(nth)
	n = max(n, 1)
	var mu sync.Mutex
	seen := 0
	return func(name string) error {
		if name != step {
			return nil
		}
		mu.Lock()
		seen++
		hit := seen == n
		mu.Unlock()
		if hit {
			_ = syscall.Kill(os.Getpid(), sig)
			if sig == syscall.SIGKILL {
				select {} // the signal ends the process
			}
		}
		return nil
	}
}
