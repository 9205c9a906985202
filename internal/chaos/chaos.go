// Package chaos is the harness behind `sapq chaos`: it proves sapq's
// exactly-once promise on one machine with real separate processes. It
// starts a redis-server (AOF, appendfsync everysec, noeviction), the SAP
// simulator, several `sapq worker` processes and the MCP front (`sapq mcp`),
// submits postings of every kind through MCP clients as several agents,
// injects faults throughout (simulator faults and slow commits, worker
// SIGKILLs, one Redis failure), and at the end holds what the agents were
// told against the simulator's ledger.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks/ledger"
)

// Options configures a run. Zero values take the defaults in brackets.
type Options struct {
	// Binary is the sapq executable the processes run [os.Executable()].
	Binary string
	// N is the number of postings (idempotency keys) [10000].
	N int
	// Workers is the number of `sapq worker` processes [2].
	Workers int
	// Agents is the number of concurrent agents, each its own caller with
	// its own token and MCP session [4].
	Agents int
	// Rate is how many new postings the agents submit per second, so that
	// the faults meet a steady load [50].
	Rate float64
	// KillEvery is the pause between worker SIGKILLs; negative disables
	// them [5s].
	KillEvery time.Duration
	// RedisFault is the Redis failure the run goes through [rollback].
	RedisFault RedisFault
	// RollbackAge is how old the AOF copy a rollback restarts from is [5s].
	RollbackAge time.Duration
	// Seed chooses the postings and the faults' victims; 0 picks one.
	Seed uint64
	// Timeout bounds the run from the first submission until every posting
	// has ended [15m].
	Timeout time.Duration
	// Keep keeps the temporary directory (Redis data, logs) of a run that
	// passed; a failed run always keeps it.
	Keep bool
	// SAPTimeout is the workers' timeout of a SAP call [2s]; SlowLatency,
	// how long a slow commit takes, must outlast it [3s]; ReconcileAfter
	// is how long the workers wait after a call before a look-up may trust
	// "not found", longer than both [6s].
	SAPTimeout, SlowLatency, ReconcileAfter time.Duration
	// Out receives progress lines [os.Stdout].
	Out io.Writer
}

func (o Options) withDefaults() (Options, error) {
	var err error
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return o, err
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.N, 10000)
	def(&o.Workers, 2)
	def(&o.Agents, 4)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&o.KillEvery, 5*time.Second)
	defDur(&o.RollbackAge, 5*time.Second)
	defDur(&o.Timeout, 15*time.Minute)
	defDur(&o.SAPTimeout, 2*time.Second)
	defDur(&o.SlowLatency, 3*time.Second)
	defDur(&o.ReconcileAfter, 6*time.Second)
	if o.Rate <= 0 {
		o.Rate = 50
	}
	if o.RedisFault == "" {
		o.RedisFault = RedisRollback
	}
	if _, err := ParseRedisFault(string(o.RedisFault)); err != nil {
		return o, err
	}
	if o.Seed == 0 {
		o.Seed = mrand.Uint64N(1<<53) + 1 // printable and exact in JSON
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	switch {
	case o.SlowLatency <= o.SAPTimeout:
		return o, fmt.Errorf("chaos: slow commits (%v) must outlast the SAP timeout (%v)", o.SlowLatency, o.SAPTimeout)
	case o.ReconcileAfter <= o.SlowLatency:
		return o, fmt.Errorf("chaos: the reconcile wait (%v) must be longer than a slow commit (%v): the protocol assumes SAP ends every call within it", o.ReconcileAfter, o.SlowLatency)
	case o.Agents > o.N:
		o.Agents = o.N
	}
	return o, nil
}

// Run runs the harness once. A breach is reported in the Report; an error
// means the harness itself could not run (a process would not start).
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sapq-chaos-")
	if err != nil {
		return nil, err
	}
	r := &run{opts: opts, dir: dir, logDir: filepath.Join(dir, "logs"), began: time.Now()}
	if err := os.Mkdir(r.logDir, 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(r.logDir, "harness.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	r.log = slog.New(slog.NewTextHandler(logFile, nil))
	r.printf("seed %d; %d postings, %d workers, %d agents, redis fault %s; logs in %s", opts.Seed, opts.N, opts.Workers, opts.Agents, opts.RedisFault, r.logDir)

	rep, err := r.run(ctx)
	if rep != nil {
		rep.Dir = dir
	}
	if err == nil && rep.OK() && !opts.Keep {
		os.RemoveAll(dir)
		rep.Dir = ""
	} else {
		r.printf("kept %s", dir)
	}
	return rep, err
}

// run is one chaos run in progress.
type run struct {
	opts        Options
	dir, logDir string
	began       time.Time
	log         *slog.Logger
	simPassword string
	redis       *redisServer
	sim, mcp    *child.Process
	simURL      string
	mcpURL      string
	workers     *workerPool

	mu       sync.Mutex
	failErr  error
	stopping bool               // the harness is stopping the processes itself
	cancel   context.CancelFunc // ends the run on a harness failure

	dispatched atomic.Int64 // keys whose first submission has begun
	finished   atomic.Int64 // keys an agent followed to their end
	redisNote  string
}

func (r *run) printf(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "chaos %6.1fs: %s\n", time.Since(r.began).Seconds(), fmt.Sprintf(format, args...))
}

// fail stops the run because the harness cannot go on.
func (r *run) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failErr != nil || r.stopping {
		return
	}
	r.failErr = err
	r.log.Error("harness failure", "err", err)
	r.cancel()
}

func (r *run) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *run) run(parent context.Context) (*Report, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	r.cancel = cancel
	defer r.stopAll()
	agents, err := r.startAll(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, a := range agents {
			a.close()
		}
	}()
	callers := make([]string, len(agents))
	for i, a := range agents {
		callers[i] = a.caller
	}
	plan, err := makePlan(r.opts.N, callers, r.opts.Seed, time.Now())
	if err != nil {
		return nil, err
	}
	keys := make([]*keyRun, len(plan))
	for i, p := range plan {
		keys[i] = &keyRun{out: outcome{plan: p}, done: make(chan struct{})}
		if p.Reverses != nil {
			keys[i].original = keys[p.Reverses.Index]
		}
	}

	// The run's deadline covers submitting and following every posting,
	// and the queue draining afterwards; the audit gets 30s more.
	runCtx, stopRun := context.WithTimeout(ctx, r.opts.Timeout)
	defer stopRun()
	if err := r.storm(runCtx, agents, keys); err != nil {
		return nil, err
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("chaos: interrupted: %w", err)
	}
	var notes []string
	if note := r.settle(runCtx); note != "" {
		notes = append(notes, note)
	}
	deadline, _ := runCtx.Deadline()
	if now := time.Now(); deadline.Before(now) {
		deadline = now
	}
	auditCtx, stopAudit := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer stopAudit()
	notes = append(notes, r.auditRounds(auditCtx, agents, keys)...)
	reprocessed, err := r.reprocessUnknown(auditCtx, keys)
	if err != nil {
		return nil, err
	}
	if reprocessed > 0 {
		r.printf("an operator reprocesses %d failures whose outcome a Redis loss made unknown", reprocessed)
		notes = append(notes, fmt.Sprintf("%d failures made unknown by the Redis loss were reprocessed", reprocessed))
		if note := r.settle(auditCtx); note != "" {
			notes = append(notes, note)
		}
		notes = append(notes, r.auditRounds(auditCtx, agents, keys)...)
	}
	if err := r.failure(); err != nil {
		return nil, err
	}
	return r.report(ctx, agents, keys, notes)
}

// storm submits every posting while the faults go on, and follows each
// until it ended once (or the run's deadline came).
func (r *run) storm(ctx context.Context, agents []*agent, keys []*keyRun) error {
	if err := r.setFaults(ctx, true); err != nil {
		return err
	}
	chaosCtx, endChaos := context.WithCancel(ctx)
	defer endChaos()
	var chaos sync.WaitGroup
	redisDone := make(chan struct{})
	chaos.Go(func() {
		defer close(redisDone)
		if err := r.redisFault(chaosCtx); err != nil && chaosCtx.Err() == nil {
			r.fail(err)
		}
	})
	if r.opts.KillEvery > 0 {
		chaos.Go(func() { r.killWorkers(chaosCtx) })
	}
	progressDone := make(chan struct{})
	go r.progress(ctx, progressDone)
	defer close(progressDone)

	var following sync.WaitGroup
	r.dispatch(ctx, agents, keys, &following)
	r.printf("all %d postings submitted", len(keys))
	// Worker kills go on until the Redis fault happened and half of the
	// postings ended, so that they meet postings in flight however long
	// the workers hold them back; each kill strands the tasks it hit for
	// asynq's lease recovery (about a minute), so they stop then. The
	// simulator's faults last until every posting ended once.
	select {
	case <-redisDone:
	case <-ctx.Done():
	}
	for r.finished.Load() < int64(len(keys)/2) && sleep(ctx, 50*time.Millisecond) {
	}
	endChaos()
	chaos.Wait()
	kills, _ := r.workers.counts()
	r.printf("worker kills over (%d kills, redis %s); waiting for every posting to end", kills, r.redisNote)
	following.Wait()
	if err := r.failure(); err != nil {
		return err
	}
	r.printf("%d of %d postings ended; waiting for the queue to drain", r.finished.Load(), len(keys))
	// Calm: the audit reads the postings as they settle without faults.
	if err := r.setFaults(ctx, false); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// auditRounds reads every key's job once more, after the queue drained: a
// delivery that ran after an agent saw its job end may have changed it.
// What it finds is followed up (not_found: resubmit) and looked at again,
// until a round changes nothing.
func (r *run) auditRounds(ctx context.Context, agents []*agent, keys []*keyRun) (notes []string) {
	for round := 1; round <= 3; round++ {
		changed := r.audit(ctx, agents, keys)
		r.printf("audit round %d: %d postings changed since they were last read", round, changed)
		if changed == 0 || ctx.Err() != nil {
			break
		}
		if note := r.settle(ctx); note != "" {
			notes = append(notes, note)
		}
	}
	return notes
}

// startAll starts Redis, the simulator, the MCP front and the workers, and
// connects the agents.
func (r *run) startAll(ctx context.Context) ([]*agent, error) {
	var err error
	if r.redis, err = startRedis(filepath.Join(r.dir, "redis"), r.logPath("redis")); err != nil {
		return nil, err
	}
	r.printf("redis-server on %s (AOF everysec, noeviction)", r.redis.addr())
	r.simPassword = randomHex(16)
	r.sim, _, err = child.StartListening(context.Background(), "sapsim", r.logPath("sapsim"), r.opts.Binary,
		func(port int) []string {
			return []string{"sapsim", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--open-sales-orders", fmt.Sprint(OpenSalesOrders(r.opts.N)),
				"--warehouse-storage-locations", warehouseStorageLocation}
		},
		child.Env("SAPQ_SAP_PASSWORD="+r.simPassword),
		func(port int) string {
			r.simURL = fmt.Sprintf("http://127.0.0.1:%d", port)
			return r.simURL + "/sim/faults"
		})
	if err != nil {
		return nil, err
	}

	// One token per agent, in a token file only the MCP front reads.
	tokens := make([]string, r.opts.Agents)
	var file strings.Builder
	file.WriteString("# caller:token, one agent each\n")
	for i := range tokens {
		tokens[i] = randomHex(24)
		fmt.Fprintf(&file, "agent-%d:%s\n", i+1, tokens[i])
	}
	tokenFile := filepath.Join(r.dir, "mcp-tokens")
	if err := os.WriteFile(tokenFile, []byte(file.String()), 0o600); err != nil {
		return nil, err
	}
	redisURL := "redis://" + r.redis.addr() + "/0"
	r.mcp, _, err = child.StartListening(context.Background(), "mcp", r.logPath("mcp"), r.opts.Binary,
		func(port int) []string {
			return []string{"mcp", "--transport", "http", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--redis-url", redisURL}
		},
		// The per-caller submission quota is a policy, not what the run
		// proves: off, so that the agents keep up the rate. They wait
		// and retry on rate_limited all the same.
		child.Env("SAPQ_MCP_TOKENS_FILE="+tokenFile, "SAPQ_MCP_SUBMISSIONS_PER_MINUTE=-1"),
		func(port int) string {
			r.mcpURL = fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
			return fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
		})
	if err != nil {
		return nil, err
	}
	r.printf("SAP simulator on %s, MCP front on %s", r.simURL, r.mcpURL)
	go r.watch(r.sim)
	go r.watch(r.mcp)

	workerArgs := []string{"worker", "--redis-url", redisURL, "--sap-url", r.simURL,
		"--sap-timeout", r.opts.SAPTimeout.String(), "--metrics-addr="}
	// The reconcile wait by environment: a worker without the setting
	// ignores it rather than refusing an unknown flag.
	workerEnv := child.Env("SAPQ_SAP_PASSWORD="+r.simPassword, "SAPQ_RECONCILE_AFTER="+r.opts.ReconcileAfter.String())
	r.workers, err = newWorkerPool(r.opts.Workers, func(slot int) (*child.Process, error) {
		return child.Start(fmt.Sprintf("worker-%d", slot+1), r.logPath(fmt.Sprintf("worker-%d", slot+1)), r.opts.Binary, workerArgs, workerEnv)
	}, r.log, r.fail)
	if err != nil {
		return nil, err
	}
	r.printf("%d workers started (SAP timeout %v, reconcile after %v)", r.opts.Workers, r.opts.SAPTimeout, r.opts.ReconcileAfter)

	agents := make([]*agent, r.opts.Agents)
	for i := range agents {
		a, err := dialAgent(ctx, r.mcpURL, fmt.Sprintf("agent-%d", i+1), tokens[i], r.log)
		if err != nil {
			for _, a := range agents[:i] {
				a.close()
			}
			return nil, err
		}
		a.harnessErr = r.fail
		agents[i] = a
	}
	return agents, nil
}

func (r *run) logPath(name string) string { return filepath.Join(r.logDir, name+".log") }

// watch fails the run if a process other than a worker or Redis exits
// while the run goes on: nothing restarts them, and a run without them
// proves nothing.
func (r *run) watch(p *child.Process) {
	<-p.Done()
	r.fail(fmt.Errorf("chaos: %s exited during the run: %v (log %s)", p.Name, p.Err(), r.logPath(p.Name)))
}

func (r *run) stopAll() {
	r.mu.Lock()
	r.stopping = true // processes exiting now are not a failure
	r.mu.Unlock()
	if r.workers != nil {
		r.workers.shutdown()
	}
	for _, p := range []*child.Process{r.mcp, r.sim} {
		if p != nil {
			p.Stop(20 * time.Second)
		}
	}
	if r.redis != nil && r.redis.proc != nil && !r.redis.proc.Exited() {
		if err := r.redis.shutdown(); err != nil {
			r.redis.kill()
		}
	}
}

// dispatch starts the keys at the configured rate, each on its agent.
func (r *run) dispatch(ctx context.Context, agents []*agent, keys []*keyRun, following *sync.WaitGroup) {
	every := time.Duration(float64(time.Second) / r.opts.Rate)
	next := time.Now()
	for _, k := range keys {
		if !sleep(ctx, time.Until(next)) {
			return
		}
		next = next.Add(every)
		r.dispatched.Add(1)
		a := agents[k.out.plan.Agent]
		following.Go(func() {
			if a.run(ctx, k) {
				r.finished.Add(1)
			}
		})
	}
}

func (r *run) progress(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			kills, _ := r.workers.counts()
			r.printf("submitted %d/%d, ended %d, worker kills %d", r.dispatched.Load(), r.opts.N, r.finished.Load(), kills)
		case <-ctx.Done():
			return
		case <-done:
			return
		}
	}
}

// settle waits until the queue holds no task that may still run (pending,
// active, scheduled, retry), then as long as a slow commit takes, so that
// any call to SAP still in flight has ended. It returns a note when the
// deadline came first.
func (r *run) settle(ctx context.Context) string {
	rdb := redis.NewClient(&redis.Options{Addr: r.redis.addr()})
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var last *asynq.QueueInfo
	for {
		info, err := insp.GetQueueInfo(ledger.DefaultQueue)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			break
		}
		if err == nil {
			last = info
			if info.Pending+info.Active+info.Scheduled+info.Retry+info.Aggregating == 0 {
				break
			}
		}
		if !sleep(ctx, 250*time.Millisecond) {
			if last == nil {
				return "the queue could not be read before the deadline"
			}
			return fmt.Sprintf("the queue had not drained by the deadline: pending %d, active %d, scheduled %d, retry %d",
				last.Pending, last.Active, last.Scheduled, last.Retry)
		}
	}
	sleep(ctx, r.opts.SlowLatency+time.Second)
	return ""
}

// audit reads every key's job once more and returns how many changed.
func (r *run) audit(ctx context.Context, agents []*agent, keys []*keyRun) int {
	var changed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if agents[k.out.plan.Agent].audit(ctx, k) {
				changed.Add(1)
			}
		})
	}
	wg.Wait()
	return int(changed.Load())
}
