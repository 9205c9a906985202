package bench

import (
	"context"
	"hash/maphash"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// accounting is a go-redis hook that counts round trips (one command, or
// one pipeline) and commands by the step that sent them, named from the
// caller's stack: the ledger or worker function, or asynq's RDB method.
// It is how a round-trip count is defended step by step; INFO
// commandstats gives the totals it must add up to.
//
// It counts only while on: its stack walk is a cost of the harness, which
// no timed run pays (Run turns it on for runs of their own).
type accounting struct {
	on    atomic.Bool
	mu    sync.Mutex
	steps map[string]*stepCount
}

type stepCount struct{ roundTrips, commands int64 }

func (a *accounting) reset() {
	a.mu.Lock()
	a.steps = map[string]*stepCount{}
	a.mu.Unlock()
}

func (a *accounting) add(commands int) {
	if !a.on.Load() {
		return
	}
	step := callerStep()
	a.mu.Lock()
	if a.steps == nil {
		a.steps = map[string]*stepCount{}
	}
	s := a.steps[step]
	if s == nil {
		s = &stepCount{}
		a.steps[step] = s
	}
	s.roundTrips++
	s.commands += int64(commands)
	a.mu.Unlock()
}

// snapshot returns the counts by step.
func (a *accounting) snapshot() map[string]stepCount {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]stepCount, len(a.steps))
	for k, v := range a.steps {
		out[k] = *v
	}
	return out
}

// sortedSteps lists steps by round trips, most first.
func sortedSteps(m map[string]stepCount) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]].roundTrips != m[names[j]].roundTrips {
			return m[names[i]].roundTrips > m[names[j]].roundTrips
		}
		return names[i] < names[j]
	})
	return names
}

// callerStep names the step that sent a command: the outermost ledger
// function on the stack ("ledger.Claim", "ledger.RecordPosted"), else the
// innermost worker one ("worker.acquire": the locks), else asynq's RDB
// method ("asynq.Dequeue").
//
// The names are cached by call stack: resolving the frames of every Redis
// call took a seventh of the measured process's CPU in the throughput
// scenario, a cost of the harness that fell on sapq's five round trips
// more than on asynq's two.
func callerStep() string {
	var pcs [64]uintptr
	n := runtime.Callers(4, pcs[:])
	key := maphash.Comparable(stepSeed, pcs)
	if s, ok := stepNames.Load(key); ok {
		return s.(string)
	}
	s := resolveStep(pcs[:n])
	stepNames.Store(key, s)
	return s
}

var (
	stepSeed  = maphash.MakeSeed()
	stepNames sync.Map // call stack hash -> step name
)

func resolveStep(pcs []uintptr) string {
	frames := runtime.CallersFrames(pcs)
	ledgerStep, workerStep, asynqStep := "", "", ""
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.Contains(fn, "hibiken/asynq/internal/rdb.(*RDB)."):
			if asynqStep == "" {
				asynqStep = "asynq." + method(fn)
			}
		case strings.Contains(fn, "sapq/sapq/tasks/ledger."):
			ledgerStep = "ledger." + method(fn)
		case strings.Contains(fn, "sapq/sapq/worker."), strings.Contains(fn, "sapq/sapq/mcpfront."):
			if workerStep == "" {
				pkg := fn[strings.LastIndex(fn, "/")+1:]
				workerStep = pkg[:strings.Index(pkg, ".")] + "." + method(fn)
			}
		}
		if !more {
			break
		}
	}
	for _, s := range []string{ledgerStep, workerStep, asynqStep} {
		if s != "" {
			return s
		}
	}
	return "other"
}

// method is the last element of a function name, without closures' and
// receivers' decorations: "(*Ledger).Submit.func1" gives "Submit".
func method(fn string) string {
	fn = fn[strings.LastIndex(fn, "/")+1:]
	parts := strings.Split(fn, ".")
	for i := len(parts) - 1; i > 0; i-- {
		p := parts[i]
		if strings.HasPrefix(p, "func") || p == "" || (p[0] >= '0' && p[0] <= '9') {
			continue
		}
		return p
	}
	return fn
}

func (a *accounting) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (a *accounting) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a.add(1)
		return next(ctx, cmd)
	}
}

func (a *accounting) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		a.add(len(cmds))
		return next(ctx, cmds)
	}
}
