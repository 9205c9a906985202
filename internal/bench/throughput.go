package bench

import (
	"context"
	"encoding/json"
	"fmt"
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
	submitCmds, submitScripts int64 // INFO commandstats over the submit phase
	workCmds, workScripts     int64 // over execute and complete
	submitSteps, workSteps    map[string]stepCount
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
	began := time.Now()
	if err := submitAll(ctx, n, submit); err != nil {
		return r, err
	}
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
	stats, serr := e.commandStats(ctx)
	r.workSteps = e.acct.snapshot()
	stop()
	if err != nil {
		return r, err
	}
	if serr != nil {
		return r, serr
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
	for _, v := range e.sim.Stats().Posted {
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

// runAsynq posts n journal entries with plain asynq: a handler that
// decodes the posting and makes the same SAP call through the same client
// (sapCall), or does nothing.
func (e *env) runAsynq(ctx context.Context, n int, latency time.Duration, conc int, sapCall bool) (runCost, error) {
	if err := e.reset(ctx, latency); err != nil {
		return runCost{}, err
	}
	client := asynq.NewClientFromRedisClient(e.rdb)
	var done atomic.Int64
	var failures atomic.Int64
	handler := func(ctx context.Context, t *asynq.Task) error {
		if sapCall {
			if err := baselinePost(ctx, e.dest, t.Payload()); err != nil {
				failures.Add(1)
				return err
			}
		}
		done.Add(1)
		return nil
	}
	srv := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{Concurrency: conc, Queues: map[string]int{baselineQueue: 1},
		Logger: quietAsynq{}, LogLevel: asynq.ErrorLevel})
	run := fmt.Sprint(time.Now().UnixNano())
	name := "asynq, no-op handler"
	if sapCall {
		name = "asynq, same SAP call"
	}
	return e.phases(ctx, name, n,
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

func baselinePost(ctx context.Context, dest *sap.Destinations, payload []byte) error {
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
	_, err = dest.Post(ctx, tasks.DefaultDestination, r, sap.Send{Reference: bp.Reference, MessageUUID: bp.MessageUUID})
	return err
}

type quietAsynq struct{}

func (quietAsynq) Debug(...any) {}
func (quietAsynq) Info(...any)  {}
func (quietAsynq) Warn(...any)  {}
func (quietAsynq) Error(...any) {}
func (quietAsynq) Fatal(...any) {}
