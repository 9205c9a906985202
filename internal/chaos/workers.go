package chaos

import (
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// workerPool keeps n `sapq worker` processes running: a worker the harness
// kills is restarted at once; one that exits on its own (it could not reach
// Redis while Redis restarted, say) is restarted after a second, as an
// orchestrator would, and the pool gives up only if it keeps exiting.
type workerPool struct {
	start func(slot int) (*child.Process, error)
	log   *slog.Logger
	fail  func(error)

	mu       sync.Mutex
	procs    []*child.Process
	killed   []bool // the harness killed the slot's process
	stopping bool
	kills    int
	exits    int // exits the harness did not cause
	wg       sync.WaitGroup
}

func newWorkerPool(n int, start func(slot int) (*child.Process, error), log *slog.Logger, fail func(error)) (*workerPool, error) {
	wp := &workerPool{start: start, log: log, fail: fail, procs: make([]*child.Process, n), killed: make([]bool, n)}
	for i := range n {
		p, err := start(i)
		if err != nil {
			wp.shutdown()
			return nil, err
		}
		wp.procs[i] = p
	}
	for i := range n {
		wp.wg.Go(func() { wp.supervise(i) })
	}
	return wp, nil
}

// maxQuickExits is how many times in a row a worker may exit on its own
// within quickExit of starting before the run is abandoned.
const (
	maxQuickExits = 5
	quickExit     = 3 * time.Second
)

func (wp *workerPool) supervise(slot int) {
	quick := 0
	for {
		wp.mu.Lock()
		p := wp.procs[slot]
		wp.mu.Unlock()
		started := time.Now()
		<-p.Done()
		wp.mu.Lock()
		killed, stopping := wp.killed[slot], wp.stopping
		wp.killed[slot] = false
		if !killed && !stopping {
			wp.exits++
		}
		wp.mu.Unlock()
		if stopping {
			return
		}
		if !killed {
			if time.Since(started) < quickExit {
				quick++
			} else {
				quick = 0
			}
			if quick >= maxQuickExits {
				wp.fail(fmt.Errorf("chaos: worker %d exited %d times in a row within %v of starting: %v", slot+1, quick, quickExit, p.Err()))
				return
			}
			wp.log.Warn("worker exited on its own; restarting it", "worker", slot+1, "err", p.Err())
			time.Sleep(time.Second)
		}
		next, err := wp.start(slot)
		if err != nil {
			wp.fail(err)
			return
		}
		wp.mu.Lock()
		wp.procs[slot] = next
		stopping = wp.stopping
		wp.mu.Unlock()
		if stopping {
			next.Stop(10 * time.Second)
			return
		}
	}
}

// killOne SIGKILLs a worker chosen at random; its supervisor restarts it.
func (wp *workerPool) killOne(rng *rand.Rand) {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	if wp.stopping {
		return
	}
	slot := rng.IntN(len(wp.procs))
	p := wp.procs[slot]
	if p.Exited() || wp.killed[slot] {
		return
	}
	wp.killed[slot] = true
	wp.kills++
	wp.log.Info("killing worker", "worker", slot+1, "pid", p.PID())
	p.SendKill()
}

func (wp *workerPool) counts() (kills, exits int) {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return wp.kills, wp.exits
}

// shutdown stops every worker gracefully (SIGTERM).
func (wp *workerPool) shutdown() {
	wp.mu.Lock()
	wp.stopping = true
	procs := append([]*child.Process(nil), wp.procs...)
	wp.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p != nil {
			wg.Go(func() { p.Stop(45 * time.Second) })
		}
	}
	wg.Wait()
	wp.wg.Wait()
}
