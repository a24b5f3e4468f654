//go:build !linux && !windows

package testenv

import "syscall"

// sysProcAttr puts the server in its own process group so stop can signal
// anything it spawned.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the process group led by pid, which is a process this
// package started, falling back to the process itself.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}
