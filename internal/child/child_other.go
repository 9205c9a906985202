//go:build !linux

package child

import "os/exec"

// DieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's: a killed harness leaves its children running there.
func DieWithParent(*exec.Cmd) {}
