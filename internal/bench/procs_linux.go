package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child die with the bench, even when the bench is
// killed: a run must not leave workers behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
