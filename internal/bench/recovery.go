package bench

import (
	"context"
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/sap/sim"
)

// recoveryLatency is how long SAP takes over each posting in the recovery
// scenario: long enough that the killed worker's calls are in flight.
const recoveryLatency = 2 * time.Second

// recoveryRun is one kill: how long after it each of the killed worker's
// postings ran again on the other worker, and ended.
type recoveryRun struct {
	name        string
	rerun       []time.Duration // per posting, from the kill to its next attempt
	ended       time.Duration   // from the kill to the last posting ended (sapq) or posted again (asynq)
	documents   int             // documents SAP holds for the postings
	replayed    int             // SOAP requests SAP answered from its message-ID store (repeats it recognised)
	pending     int             // postings that had not run again when the run gave up
	recoverNote string
}

// recovery kills a worker process holding o.RecoveryN postings in flight
// in SAP and measures how long until another worker process runs them
// again: `sapq worker` against the asynq baseline worker with asynq's
// defaults.
func (e *env) recovery(ctx context.Context, o Options) (Table, error) {
	k := o.RecoveryN
	t := Table{Title: fmt.Sprintf("Recovery: SIGKILL of a worker with %d postings in flight in SAP (SAP takes %s), until another worker process runs them again", k, recoveryLatency),
		Columns: []string{"run", "first re-run", "median re-run", "last re-run", "all ended", "documents in SAP", "repeats SAP recognised", "not run again"}, BarsUnit: "s until the last re-run"}
	runs := []func() (recoveryRun, error){func() (recoveryRun, error) { return e.recoverySapq(ctx, o) }}
	if o.RecoveryBaseline {
		runs = append(runs, func() (recoveryRun, error) { return e.recoveryAsynq(ctx, o) })
	}
	var results []recoveryRun
	for _, run := range runs {
		r, err := run()
		if err != nil {
			return t, err
		}
		results = append(results, r)
	}
	for _, r := range results {
		slices.Sort(r.rerun)
		first, median, last := "-", "-", "-"
		if n := len(r.rerun); n > 0 {
			first, median, last = sec(r.rerun[0]), sec(r.rerun[n/2]), sec(r.rerun[n-1])
			t.Bars = append(t.Bars, Bar{r.name, r.rerun[n-1].Seconds()})
		}
		t.Rows = append(t.Rows, []string{r.name, first, median, last, sec(r.ended), fmt.Sprint(r.documents), fmt.Sprint(r.replayed), fmt.Sprint(r.pending)})
	}
	s := results[0]
	met := s.pending == 0 && len(s.rerun) == k && s.rerun[len(s.rerun)-1] < 30*time.Second
	t.Notes = append(t.Notes,
		fmt.Sprintf("Target: sapq's postings run again within 30 s of the kill: %s; exactly once: %s (%d documents for %d postings).", verdict(met), verdict(s.documents == k), s.documents, k),
		s.recoverNote,
		"A re-run is the posting's next attempt: for sapq its claim in the ledger (the job's updated_at), which then waits out the settle time after the killed call began ("+settle.String()+" here) and looks the document up in SAP before anything is sent; for asynq the handler's next call reaching SAP. "+
			"Each run starts the second worker before the kill, so it is idle and ready when the postings come back. The SAP simulator finishes a call whose client was killed, as SAP does.")
	if o.RecoveryBaseline {
		t.Notes = append(t.Notes, "asynq's defaults: a task is recovered once its lease (30 s, renewed every 5 s) is 30 s past its end, by a recoverer that looks once a minute, and then waits out the retry delay (asynq's default 15-45 s for a first retry).")
	}
	return t, nil
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// recoverySapq kills a `sapq worker` holding the postings, with another
// one running.
func (e *env) recoverySapq(ctx context.Context, o Options) (recoveryRun, error) {
	k := o.RecoveryN
	r := recoveryRun{name: "sapq worker (--recover-after " + o.RecoverAfter.String() + ")"}
	if o.RecoverAfter < 0 {
		r.name = "sapq worker, asynq's recovery alone"
	}
	if err := e.reset(ctx, recoveryLatency); err != nil {
		return r, err
	}
	l, err := e.newLedger(ctx)
	if err != nil {
		return r, err
	}
	defer l.Close()
	base := e.sim.Load().Stats()
	redisURL := "redis://" + e.redisSrv.Addr + "/0"
	start := func(name string) (*proc, error) {
		return startReady(ctx, name, o.logDir, o.Binary, func(addr string) []string {
			return []string{"worker", "--redis-url", redisURL, "--sap-url", e.simURL, "--sap-timeout", sapTimeout.String(),
				"--concurrency", strconv.Itoa(k), "--metrics-addr", addr, "--recover-after", o.RecoverAfter.String()}
		}, child.Env("SAPQ_SAP_PASSWORD="+e.simPassword, "SAPQ_RECONCILE_AFTER="+settle.String(), "SAPQ_LOG_LEVEL=warn"))
	}
	victim, err := start("recovery-sapq-killed")
	if err != nil {
		return r, err
	}
	defer victim.Kill()
	run := fmt.Sprint(time.Now().UnixNano())
	ids := make([]string, k)
	if err := submitAll(ctx, k, func(i int) error {
		job, _, err := l.Submit(ctx, "bench", journalEntry(run, i))
		ids[i] = job.ID
		return err
	}); err != nil {
		return r, err
	}
	if err := awaitCount(ctx, int64(k), time.Minute, e.inFlight.Load); err != nil {
		return r, fmt.Errorf("bench: recovery: the postings did not reach SAP: %w", err)
	}
	survivor, err := start("recovery-sapq-survivor")
	if err != nil {
		return r, err
	}
	defer survivor.Stop(10 * time.Second)
	killed := time.Now()
	victim.Kill()

	rerun := map[string]time.Duration{}
	ended := map[string]bool{}
	deadline := killed.Add(o.RecoveryTimeout)
	for len(ended) < k && time.Now().Before(deadline) && ctx.Err() == nil {
		for _, id := range ids {
			job, err := l.Get(ctx, "bench", id)
			if err != nil {
				return r, err
			}
			if _, ok := rerun[id]; !ok && job.UpdatedAt.After(killed) {
				rerun[id] = time.Since(killed)
			}
			if job.Status.Terminal() && !ended[id] {
				ended[id] = true
				r.ended = time.Since(killed)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range ids {
		if d, ok := rerun[id]; ok {
			r.rerun = append(r.rerun, d)
		} else {
			r.pending++
		}
		job, err := l.Get(ctx, "bench", id)
		if err != nil {
			return r, err
		}
		r.documents += e.sim.Load().CountByReference(job.Reference)
	}
	r.replayed = e.sim.Load().Stats().Replayed - base.Replayed
	if o.RecoverAfter > 0 {
		r.recoverNote = fmt.Sprintf("sapq: every worker requeues a task whose asynq lease has gone %s unrenewed (worker/recover.go; asynq renews every 5 s), so the killed worker's tasks come back %s to %s after the kill, plus the recoverer's pass and the survivor's poll (1 s).",
			o.RecoverAfter, o.RecoverAfter-5*time.Second, o.RecoverAfter)
	}
	return r, nil
}

// recoveryAsynq is the same with the asynq baseline worker.
func (e *env) recoveryAsynq(ctx context.Context, o Options) (recoveryRun, error) {
	k := o.RecoveryN
	r := recoveryRun{name: "asynq, defaults"}
	if err := e.reset(ctx, recoveryLatency); err != nil {
		return r, err
	}
	redisURL := "redis://" + e.redisSrv.Addr + "/0"
	start := func(name string) (*proc, error) {
		return startReady(ctx, name, o.logDir, o.Binary, func(addr string) []string {
			return []string{"bench", "asynq-worker", "--redis-url", redisURL, "--sap-url", e.simURL, "--concurrency", strconv.Itoa(k), "--addr", addr}
		}, child.Env("SAPQ_SAP_PASSWORD="+e.simPassword))
	}
	victim, err := start("recovery-asynq-killed")
	if err != nil {
		return r, err
	}
	defer victim.Kill()
	base := e.sim.Load().Stats()
	client := asynq.NewClientFromRedisClient(e.rdb)
	run := fmt.Sprint(time.Now().UnixNano())
	if err := submitAll(ctx, k, func(i int) error { return enqueueBaseline(ctx, client, run, i) }); err != nil {
		return r, err
	}
	if err := awaitCount(ctx, int64(k), time.Minute, e.inFlight.Load); err != nil {
		return r, fmt.Errorf("bench: recovery: the baseline's calls did not reach SAP: %w", err)
	}
	survivor, err := start("recovery-asynq-survivor")
	if err != nil {
		return r, err
	}
	defer survivor.Stop(10 * time.Second)
	killed := time.Now()
	victim.Kill()
	attempts := func(st sim.Stats) int { return st.Attempts[sim.KindJournalEntry] - base.Attempts[sim.KindJournalEntry] }
	deadline := killed.Add(o.RecoveryTimeout)
	for len(r.rerun) < k && time.Now().Before(deadline) && ctx.Err() == nil {
		for n := attempts(e.sim.Load().Stats()) - k; len(r.rerun) < n; {
			r.rerun = append(r.rerun, time.Since(killed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.pending = k - len(r.rerun)
	// The re-sent calls take SAP's latency too: wait for them to end.
	for e.inFlight.Load() > 0 && time.Now().Before(deadline.Add(recoveryLatency*2)) {
		time.Sleep(20 * time.Millisecond)
	}
	r.ended = time.Since(killed)
	st := e.sim.Load().Stats()
	r.documents = st.Posted[sim.KindJournalEntry] - base.Posted[sim.KindJournalEntry]
	r.replayed = st.Replayed - base.Replayed
	return r, nil
}
