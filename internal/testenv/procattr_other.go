//go:build !linux

package testenv

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

func groupProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int, syscall.Signal) {}
