package chaos

import (
	"os/exec"
	"syscall"
)

// dieWithHarness makes the child die with the harness, even when the
// harness is killed: a chaos run must not leave Redis or workers behind.
func dieWithHarness(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
