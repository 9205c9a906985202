//go:build !linux

package chaos

import "os/exec"

// dieWithHarness does nothing where the kernel cannot tie a child's life to
// its parent's: a killed harness leaves its children running there.
func dieWithHarness(*exec.Cmd) {}
