//go:build linux

package testenv

import "syscall"

// sysProcAttr puts the server in its own process group (so stop can signal
// anything it spawned) and has the kernel kill it if the test binary dies
// without running its cleanups (a panic or a -timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the process group led by pid, which is a process this
// package started, falling back to the process itself.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}
