package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// tuneGC sets the garbage collector's target percentage of a command that
// has its own measured default (see the callers), unless GOGC is set: the
// operator's GOGC, like GOMEMLIMIT, always wins.
func tuneGC(log *slog.Logger, percent int) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(percent)
	log.Debug("GC target percentage set (GOGC unset)", "gogc", percent)
}
