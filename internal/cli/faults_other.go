//go:build !unix

package cli

// faultHook: the fault tests' kill and stop hooks need Unix signals.
func faultHook() func(string) error { return nil }
