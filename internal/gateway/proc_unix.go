//go:build unix

package gateway

import (
	"os/exec"
	"syscall"
)

// terminateProcess asks a function process to stop (SIGTERM, as Lambda
// does at shutdown).
func terminateProcess(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGTERM) }

// killProcess ends a function process and anything it started: the process
// group childAttr created.
func killProcess(cmd *exec.Cmd) {
	if syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) != nil {
		cmd.Process.Kill()
	}
}
