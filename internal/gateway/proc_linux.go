package gateway

import "syscall"

// childAttr puts a function process in its own process group (so that
// killProcess reaches its children) and has the kernel kill it if writ
// dies without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
