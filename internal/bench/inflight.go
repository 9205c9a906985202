package bench

import (
	"context"
	"flag"
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// simLatency is how long the simulator takes over each posting in the
// many-in-flight scenario: with c postings in flight the ceiling is c per
// second.
const simLatency = time.Second

// inflightRun is one worker process working off n queued postings at
// concurrency c against the slow simulator.
type inflightRun struct {
	name           string
	wall           time.Duration      // from the process's start to the last document
	steady         float64            // documents/s between 10% and 90% of n
	peakAtSAP      int64              // most requests SAP processed at once
	idle, busy     memory             // idle: ready, queue empty; busy: the sample at the most in flight
	hwm            int64              // VmHWM at the end: the process's peak RSS
	goIdle, goBusy map[string]float64 // the sapq worker's Go runtime figures (its /metrics), idle and at the most in flight
	startupToIdle  time.Duration
}

// inflight runs n postings through a `sapq worker` process and through the
// asynq baseline worker process, each at concurrency c with the simulator
// taking simLatency per posting, and reads each process's memory idle and
// with c postings in flight.
func (e *env) inflight(ctx context.Context, o Options) (Table, error) {
	c, n := o.InFlight, o.InFlightN
	t := Table{Title: fmt.Sprintf("Many in flight: %d postings, concurrency %d, SAP taking %s per posting (theoretical %d/s)", n, c, simLatency, c),
		Columns:  []string{"worker process", "wall from start", "postings/s end to end", "steady postings/s (10%-90%)", "vs theoretical", "most in flight at SAP", "RSS idle", "PSS idle", "RSS at most in flight", "peak RSS (VmHWM)"},
		BarsUnit: "MB RSS at most in flight"}
	runs := make([]inflightRun, 0, 2)
	for _, sapq := range []bool{true, false} {
		r, err := e.inflightRun(ctx, o, sapq)
		if err != nil {
			return t, err
		}
		runs = append(runs, r)
	}
	theory := float64(c) / simLatency.Seconds()
	for _, r := range runs {
		t.Rows = append(t.Rows, []string{r.name, r.wall.Round(time.Millisecond).String(), num(float64(n) / r.wall.Seconds()), num(r.steady), ratio(r.steady, theory),
			fmt.Sprint(r.peakAtSAP), mb(r.idle.rss), mb(r.idle.pss), mb(r.busy.rss), mb(r.hwm)})
		t.Bars = append(t.Bars, Bar{r.name, float64(r.busy.rss) / (1 << 20)})
	}
	s := runs[0]
	for _, r := range runs {
		t.Notes = append(t.Notes, fmt.Sprintf("%s: anonymous memory (heap, stacks, runtime) %s idle, %s at the most in flight; the rest of RSS is the mapped executable.", r.name, mb(r.idle.anon), mb(r.busy.anon)))
	}
	for _, r := range runs {
		if g := r.goBusy; g != nil {
			t.Notes = append(t.Notes, fmt.Sprintf("%s, Go runtime (/metrics): idle heap in use %s, stacks %s, %.0f goroutines; at %d in flight heap in use %s (%.0f objects), stacks %s, %.0f goroutines, memory from the OS %s.",
				r.name, mb(int64(r.goIdle["go_memstats_heap_inuse_bytes"])), mb(int64(r.goIdle["go_memstats_stack_inuse_bytes"])), r.goIdle["go_goroutines"], c,
				mb(int64(g["go_memstats_heap_inuse_bytes"])), g["go_memstats_heap_objects"], mb(int64(g["go_memstats_stack_inuse_bytes"])), g["go_goroutines"], mb(int64(g["go_memstats_sys_bytes"]))))
		}
	}
	t.Notes = append(t.Notes,
		fmt.Sprintf("Targets: sapq steady throughput at least 0.9 of theoretical: %s; RSS under 20 MB idle: %s; under 80 MB at %d in flight: %s.",
			verdict(s.steady >= 0.9*theory), verdict(s.idle.rss < 20<<20), c, verdict(s.hwm < 80<<20)),
		"Each worker is a process of its own, started on a queue already holding every posting (the idle figures come from an earlier start of the same command on an empty queue, once ready). "+
			"Memory from /proc/<pid>/status (VmRSS, VmHWM) and smaps_rollup (Pss), sampled every 50 ms. The sapq worker is `sapq worker --concurrency "+strconv.Itoa(c)+"` with no --sap-max-in-flight cap (journal entries take no SAP object lease); "+
			"the baseline is an asynq server at the same concurrency whose handler makes the same SAP call through the same client (`sapq bench asynq-worker`). GOGC and GOMEMLIMIT unset (Go's defaults).")
	return t, nil
}

func (e *env) inflightRun(ctx context.Context, o Options, sapq bool) (inflightRun, error) {
	c, n := o.InFlight, o.InFlightN
	r, slug := inflightRun{name: "asynq, same SAP call"}, "asynq"
	if sapq {
		r.name, slug = "sapq worker", "sapq"
	}
	if err := e.reset(ctx, simLatency); err != nil {
		return r, err
	}
	redisURL := "redis://" + e.redisSrv.Addr + "/0"
	start := func(ctx context.Context, name string) (*proc, error) {
		if sapq {
			return startReady(ctx, name, o.logDir, o.Binary, func(addr string) []string {
				return []string{"worker", "--redis-url", redisURL, "--sap-url", e.simURL, "--sap-timeout", sapTimeout.String(),
					"--concurrency", strconv.Itoa(c), "--metrics-addr", addr}
			}, child.Env("SAPQ_SAP_PASSWORD="+e.simPassword, "SAPQ_RECONCILE_AFTER="+settle.String(), "SAPQ_LOG_LEVEL=warn"))
		}
		return startReady(ctx, name, o.logDir, o.Binary, func(addr string) []string {
			return []string{"bench", "asynq-worker", "--redis-url", redisURL, "--sap-url", e.simURL, "--concurrency", strconv.Itoa(c), "--addr", addr}
		}, child.Env("SAPQ_SAP_PASSWORD="+e.simPassword))
	}
	// Idle: ready, with nothing queued.
	began := time.Now()
	idle, err := start(ctx, "inflight-"+slug+"-idle")
	if err != nil {
		return r, err
	}
	r.startupToIdle = time.Since(began)
	time.Sleep(time.Second) // let the start-up's garbage be collected, as a worker waiting for work would
	r.idle = readMemory(idle.PID())
	r.goIdle = goMemory(ctx, idle.addr)
	idle.Stop(10 * time.Second)

	// Queue every posting, then start the worker on it.
	run := fmt.Sprint(time.Now().UnixNano())
	var submit func(i int) error
	if sapq {
		l, err := e.newLedger(ctx)
		if err != nil {
			return r, err
		}
		defer l.Close()
		submit = func(i int) error { _, _, err := l.Submit(ctx, "bench", journalEntry(run, i)); return err }
	} else {
		client := asynq.NewClientFromRedisClient(e.rdb)
		submit = func(i int) error { return enqueueBaseline(ctx, client, run, i) }
	}
	if err := submitAll(ctx, n, submit); err != nil {
		return r, err
	}
	base := e.posted()
	e.peak.Store(0)
	began = time.Now()
	p, err := start(ctx, "inflight-"+slug)
	if err != nil {
		return r, err
	}
	defer p.Stop(10 * time.Second)
	type sample struct {
		at     time.Duration
		posted int64
	}
	var samples []sample
	var most int64
	deadline := time.Now().Add(5*time.Minute + time.Duration(n/c)*simLatency*2)
	for {
		posted := e.posted() - base
		at := time.Since(began)
		samples = append(samples, sample{at, posted})
		if f := e.inFlight.Load(); f > most {
			most, r.busy = f, readMemory(p.PID())
			if f >= int64(c) && r.goBusy == nil {
				r.goBusy = goMemory(ctx, p.addr)
			}
		}
		if posted >= int64(n) {
			r.wall = at
			break
		}
		if p.Exited() {
			return r, fmt.Errorf("bench: %s exited with %d of %d posted: %v (log %s)", p.Name, posted, n, p.Err(), p.Log)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r, fmt.Errorf("bench: %s: %d of %d posted after %s (log %s)", p.Name, posted, n, at, p.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.hwm = readMemory(p.PID()).hwm
	r.peakAtSAP = e.peak.Load()
	// Steady rate: between the samples where 10% and 90% were posted.
	var lo, hi *sample
	for i := range samples {
		if lo == nil && samples[i].posted >= int64(n)/10 {
			lo = &samples[i]
		}
		if hi == nil && samples[i].posted >= int64(n)*9/10 {
			hi = &samples[i]
		}
	}
	if lo != nil && hi != nil && hi.at > lo.at {
		r.steady = float64(hi.posted-lo.posted) / (hi.at - lo.at).Seconds()
	} else {
		r.steady = float64(n) / r.wall.Seconds()
	}
	return r, nil
}

// AsynqWorker is the baseline worker process of the many-in-flight
// scenario (`sapq bench asynq-worker`, started by the bench itself): an
// asynq server on the bench queue whose handler makes the same SAP call as
// sapq's through the same client, serving /readyz once started. The SAP
// password comes from SAPQ_SAP_PASSWORD.
func AsynqWorker(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("bench asynq-worker", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "redis://127.0.0.1:6379/0", "Redis")
	sapURL := fs.String("sap-url", "", "the SAP simulator's URL")
	conc := fs.Int("concurrency", 10, "handlers at once")
	addr := fs.String("addr", "127.0.0.1:0", "address of /readyz")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ro, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	client, err := sap.New(sap.Config{BaseURL: *sapURL, User: simUser, Password: os.Getenv("SAPQ_SAP_PASSWORD"), Timeout: sapTimeout, MaxIdleConns: *conc})
	if err != nil {
		return err
	}
	dest, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		return err
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: *conc, Queues: map[string]int{baselineQueue: 1},
		Logger: quietAsynq{}, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(baselineType, func(ctx context.Context, t *asynq.Task) error { return baselinePost(ctx, dest, t.Payload(), false) })
	if err := srv.Start(mux); err != nil {
		return err
	}
	defer srv.Shutdown()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// /readyz, and /metrics with the Go runtime's figures, as sapq
	// worker's, so that the two are read alike.
	hmux := http.NewServeMux()
	hmux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	hmux.Handle("/metrics", promhttp.Handler())
	hs := &http.Server{Handler: hmux}
	go hs.Serve(ln)
	<-ctx.Done()
	return hs.Close()
}
