//go:build unix && !linux

package gateway

import "syscall"

// childAttr puts a function process in its own process group, so that
// killProcess reaches its children. (There is no parent-death signal here:
// a function process outlives a writ killed with SIGKILL.)
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
