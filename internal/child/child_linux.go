package child

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child die with the harness, even when the
// harness is killed: a run must not leave Redis or workers behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
