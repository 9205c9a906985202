package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

// concurrency is the worker's and the baselines' handler concurrency.
const concurrency = 10

// submitters is how many goroutines submit at once.
const submitters = 16

// runCost is one run of n postings: wall time from the first submission to
// the last document, and Redis's work split by phase.
type runCost struct {
	name                      string
	wall                      time.Duration
	submitWall                time.Duration // of the submit phase alone
	submitCPU, workCPU        cpuTime       // CPU spent in each phase
	submitCmds, submitScripts int64         // INFO commandstats over the submit phase
	workCmds, workScripts     int64         // over execute and complete
	// The round trips by step, counted in a run of stepsN postings of its
	// own (the hook that counts them costs CPU).
	submitSteps, workSteps map[string]stepCount
	stepsN                 int
}

func (r runCost) perSecond(n int) float64 { return float64(n) / r.wall.Seconds() }

// journalEntry is the benchmark's posting: a journal entry changes no SAP
// object that locks (tasks.Facts), so postings do not serialise on one
// another and the figures measure the protocol, not a lock.
func journalEntry(run string, i int) *tasks.JournalEntry {
	return taskstest.JournalEntry(fmt.Sprintf("bench-%s-%d", run, i))
}

// submitAll runs submit(i) for i in [0,n) on submitters goroutines.
func submitAll(ctx context.Context, n int, submit func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range submitters {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := submit(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// phases runs submit (all n), then starts the consumer and waits for done()
// to reach n, measuring each phase's Redis work; the wall time runs from
// the first submission to the last completion.
func (e *env) phases(ctx context.Context, name string, n int, submit func(i int) error, start func() (stop func(), err error), done func() int64) (runCost, error) {
	r := runCost{name: name}
	// Goroutines started from here on (submitters, the worker's) carry the
	// run's name in a CPU profile (sapq bench --cpuprofile).
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("run", name)))
	defer pprof.SetGoroutineLabels(ctx)
	cpu0, err := e.cpu(ctx)
	if err != nil {
		return r, err
	}
	began := time.Now()
	if err := submitAll(ctx, n, submit); err != nil {
		return r, err
	}
	r.submitWall = time.Since(began)
	cpu1, err := e.cpu(ctx)
	if err != nil {
		return r, err
	}
	r.submitCPU = cpu1.sub(cpu0)
	stats, err := e.commandStats(ctx)
	if err != nil {
		return r, err
	}
	r.submitCmds, r.submitScripts = totals(stats)
	r.submitSteps = e.acct.snapshot()
	e.rdb.ConfigResetStat(ctx)
	e.acct.reset()
	stop, err := start()
	if err != nil {
		return r, err
	}
	err = awaitCount(ctx, int64(n), 10*time.Minute, done)
	r.wall = time.Since(began)
	cpu2, cerr := e.cpu(ctx)
	r.workCPU = cpu2.sub(cpu1)
	stats, serr := e.commandStats(ctx)
	r.workSteps = e.acct.snapshot()
	stop()
	if err != nil {
		return r, err
	}
	if serr != nil {
		return r, serr
	}
	if cerr != nil {
		return r, cerr
	}
	r.workCmds, r.workScripts = totals(stats)
	return r, nil
}

// runSapq posts n journal entries through the ledger and one worker.
func (e *env) runSapq(ctx context.Context, n int, latency time.Duration, conc int) (runCost, error) {
	if err := e.reset(ctx, latency); err != nil {
		return runCost{}, err
	}
	l, err := e.newLedger(ctx)
	if err != nil {
		return runCost{}, err
	}
	defer l.Close()
	reg := prometheus.NewRegistry()
	w, err := worker.New(worker.Options{Redis: e.rdb, Ledger: l, SAP: e.dest, Concurrency: conc, SAPTimeout: sapTimeout,
		SweepInterval: -1, Logger: e.log, Metrics: reg})
	if err != nil {
		return runCost{}, err
	}
	run := fmt.Sprint(time.Now().UnixNano())
	base := e.posted()
	return e.phases(ctx, "sapq (ledger + worker)", n,
		func(i int) error { _, _, err := l.Submit(ctx, "bench", journalEntry(run, i)); return err },
		func() (func(), error) { return w.Shutdown, w.Start() },
		func() int64 {
			// Gathering runs the worker's Redis-backed collectors: only
			// once SAP holds every document is the ledger's count read.
			if p := e.posted() - base; p < int64(n) {
				return p
			}
			time.Sleep(10 * time.Millisecond)
			return finished(reg)
		})
}

// posted is how many documents the simulator holds.
func (e *env) posted() int64 {
	var n int
	for _, v := range e.sim.Load().Stats().Posted {
		n += v
	}
	return int64(n)
}

// finished is the worker's count of postings posted.
func finished(reg *prometheus.Registry) int64 {
	mfs, _ := reg.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "sapq_postings_finished_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "status" && lp.GetValue() == string(tasks.StatusSucceeded) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int64(n)
}

const baselineType, baselineQueue = "bench:journal_entry", "bench"

// baselinePayload is what the asynq baseline's task carries: the posting
// and its SAP-side identity, so that the handler sends the same call.
type baselinePayload struct {
	Reference   string          `json:"reference"`
	MessageUUID string          `json:"message_uuid"`
	Posting     json.RawMessage `json:"posting"`
}

// baseline is what an asynq baseline's handler does with a posting.
type baseline int

const (
	noop       baseline = iota // nothing
	post                       // the same SAP call as sapq's
	lookUpPost                 // sapq's look-up in SAP, then the same call
)

func (b baseline) name() string {
	return [...]string{"asynq, no-op handler", "asynq, same SAP call", "asynq, same look-up and SAP call"}[b]
}

// runAsynq posts n journal entries with plain asynq, with a handler that
// does what b says through the same SAP client as sapq's worker.
func (e *env) runAsynq(ctx context.Context, n int, latency time.Duration, conc int, b baseline) (runCost, error) {
	if err := e.reset(ctx, latency); err != nil {
		return runCost{}, err
	}
	client := asynq.NewClientFromRedisClient(e.rdb)
	var done atomic.Int64
	handler := func(ctx context.Context, t *asynq.Task) error {
		if b != noop {
			if err := baselinePost(ctx, e.dest, t.Payload(), b == lookUpPost); err != nil {
				return err
			}
		}
		done.Add(1)
		return nil
	}
	srv := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{Concurrency: conc, Queues: map[string]int{baselineQueue: 1},
		Logger: quietAsynq{}, LogLevel: asynq.ErrorLevel})
	run := fmt.Sprint(time.Now().UnixNano())
	return e.phases(ctx, b.name(), n,
		func(i int) error {
			return enqueueBaseline(ctx, client, run, i)
		},
		func() (func(), error) {
			mux := asynq.NewServeMux()
			mux.HandleFunc(baselineType, handler)
			return srv.Shutdown, srv.Start(mux)
		},
		done.Load)
}

// enqueueBaseline enqueues the i-th baseline task of a run.
func enqueueBaseline(ctx context.Context, client *asynq.Client, run string, i int) error {
	p := journalEntry(run, i)
	id, err := tasks.IdentityOfPosting("bench", p, tasks.DefaultDestination)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(p)
	payload, _ := json.Marshal(baselinePayload{Reference: id.Reference(), MessageUUID: id.MessageUUID(1), Posting: raw})
	_, err = client.EnqueueContext(ctx, asynq.NewTask(baselineType, payload), asynq.Queue(baselineQueue))
	return err
}

// baselinePost makes the baseline's SAP call for a task's payload, after
// sapq's look-up by the same reference if lookUp (a document found is not
// posted again).
func baselinePost(ctx context.Context, dest *sap.Destinations, payload []byte, lookUp bool) error {
	var bp baselinePayload
	if err := json.Unmarshal(payload, &bp); err != nil {
		return err
	}
	p, err := tasks.Decode(tasks.KindJournalEntry, bp.Posting)
	if err != nil {
		return err
	}
	r, err := sap.NewRequest(p)
	if err != nil {
		return err
	}
	if lookUp {
		m, err := dest.Find(ctx, tasks.DefaultDestination, r, bp.Reference)
		if err != nil || m.Found {
			return err
		}
	}
	_, err = dest.Post(ctx, tasks.DefaultDestination, r, sap.Send{Reference: bp.Reference, MessageUUID: bp.MessageUUID})
	return err
}

type quietAsynq struct{}

func (quietAsynq) Debug(...any) {}
func (quietAsynq) Info(...any)  {}
func (quietAsynq) Warn(...any)  {}
func (quietAsynq) Error(...any) {}
func (quietAsynq) Fatal(...any) {}
