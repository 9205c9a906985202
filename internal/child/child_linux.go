package child

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes the child die with its parent (a harness, a test
// binary), even when the parent is killed: a run must not leave Redis or
// workers behind.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
