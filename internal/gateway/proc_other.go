//go:build !unix

package gateway

import (
	"errors"
	"os/exec"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

// terminateProcess cannot ask politely here: killProcess follows at once.
func terminateProcess(cmd *exec.Cmd) error { return errors.New("gateway: no SIGTERM on this system") }

func killProcess(cmd *exec.Cmd) { cmd.Process.Kill() }
