package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// Options configures a Worker.
type Options struct {
	Redis  redis.UniversalClient // required; owned by the caller
	Ledger *ledger.Ledger        // required
	// SAP are the SAP systems postings go to (required). The destination
	// a job is routed to is part of its SAP-side identity (tasks.Identity).
	SAP SAP
	// Concurrency is how many postings run at once; default 10.
	Concurrency int
	// SAPTimeout bounds each SAP call; default 30s. It must be shorter than
	// the ledger's Settle, the time after which a call is taken to have
	// ended in SAP and a look-up that finds nothing is trusted.
	SAPTimeout time.Duration
	// MaxInFlight caps the attempts talking to one SAP destination at once,
	// across every worker on the Redis (an attempt's look-up and post hold
	// one slot); 0 means no cap. Set it alike on every worker. Jobs that
	// change the same SAP object are serialised in any case (locks.go);
	// the leases of both last the ledger's Settle and are renewed while held.
	MaxInFlight int
	Retry       RetryPolicy
	// RecordTimeout bounds how long an attempt keeps retrying to record its
	// outcome while Redis is away; default 30s.
	RecordTimeout time.Duration
	// PollInterval is how often idle workers look for new and due tasks;
	// default 1s.
	PollInterval time.Duration
	// ShutdownTimeout is how long Shutdown lets running postings finish;
	// default 30s (a SAP call's timeout), so that a graceful stop does not
	// leave calls in flight.
	ShutdownTimeout time.Duration
	// SweepInterval is how often recorded but unenqueued jobs are swept into
	// the queue; default 10s. Negative disables the sweeper.
	SweepInterval time.Duration
	// RecoverAfter is how long the asynq lease of a task may go unrenewed
	// before this worker puts the task back in the queue for any worker to
	// run (recover.go): a live server renews every 5 s, so a killed
	// worker's postings run again about this long after the kill, where
	// asynq alone takes 60 s to 2 min. Default 15s; at least 10s; negative
	// leaves recovery to asynq. Every such delivery is reconciled with SAP
	// before anything is sent.
	RecoverAfter time.Duration
	Logger       *slog.Logger
	Metrics      prometheus.Registerer // optional
	// Tracer makes a span of each attempt and each SAP call, continuing
	// the trace of the submission. Default otel.GetTracerProvider().
	Tracer trace.TracerProvider
}

// Worker consumes posting tasks and runs the exactly-once protocol.
type Worker struct {
	opts    Options
	ledger  *ledger.Ledger
	srv     *asynq.Server
	sweeper *ledger.Sweeper
	recover *recoverer
	// shutdown makes Shutdown idempotent: a test's cleanup and a signal
	// handler may both call it.
	shutdown sync.Once
	settle   time.Duration // the ledger's Settle
	gate     *gate         // serialisation toward SAP
	metrics  *metrics
	tracer   trace.Tracer
	log      *slog.Logger
	// inflight counts running handlers. asynq's Shutdown returns once its
	// timeout is up and cancels the handlers' contexts without waiting for
	// them; Shutdown waits here so that they record their outcome first.
	inflight sync.WaitGroup
	// closing is set once Shutdown waits on inflight; a handler that starts
	// after that (asynq had already given up on it) does nothing.
	mu      sync.Mutex
	closing bool
}

// enter counts a handler in, unless the worker is shutting down.
func (w *Worker) enter() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return false
	}
	w.inflight.Add(1)
	return true
}

// New returns a Worker; Start runs it.
func New(opts Options) (*Worker, error) {
	if opts.Redis == nil || opts.Ledger == nil || opts.SAP == nil {
		return nil, errors.New("worker: Options.Redis, Ledger and SAP are required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 10
	}
	if opts.SAPTimeout <= 0 {
		opts.SAPTimeout = 30 * time.Second
	}
	if settle := opts.Ledger.Settle(); settle <= opts.SAPTimeout {
		return nil, fmt.Errorf("worker: the settle time (%s) must be longer than the SAP timeout (%s): a look-up before a call has ended in SAP can miss its document", settle, opts.SAPTimeout)
	}
	if opts.MaxInFlight < 0 {
		return nil, fmt.Errorf("worker: Options.MaxInFlight must not be negative (0: no cap), got %d", opts.MaxInFlight)
	}
	if opts.RecordTimeout <= 0 {
		opts.RecordTimeout = 30 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = opts.SAPTimeout
	}
	if opts.RecoverAfter == 0 {
		opts.RecoverAfter = 15 * time.Second
	}
	if opts.RecoverAfter > 0 && opts.RecoverAfter < 10*time.Second {
		// Below two heartbeats, live servers' tasks would be requeued all
		// the time: safe, but every one a needless duplicate delivery.
		return nil, fmt.Errorf("worker: Options.RecoverAfter must be at least 10s (asynq renews leases every 5s), got %s", opts.RecoverAfter)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tracer == nil {
		opts.Tracer = otel.GetTracerProvider()
	}
	w := &Worker{
		opts:    opts,
		ledger:  opts.Ledger,
		settle:  opts.Ledger.Settle(),
		metrics: newMetrics(opts.Metrics, opts.Ledger),
		tracer:  opts.Tracer.Tracer("github.com/sapq/sapq/worker"),
		log:     opts.Logger.With("component", "worker"),
	}
	w.gate = &gate{rdb: opts.Redis, lease: w.settle, maxInFlight: opts.MaxInFlight, retry: opts.PollInterval, metrics: w.metrics, log: w.log}
	w.srv = asynq.NewServerFromRedisClient(opts.Redis, asynq.Config{
		Concurrency:              opts.Concurrency,
		Queues:                   map[string]int{opts.Ledger.Queue(): 1},
		RetryDelayFunc:           opts.Retry.RetryDelayFunc(),
		IsFailure:                isFailure,
		TaskCheckInterval:        opts.PollInterval,
		DelayedTaskCheckInterval: opts.PollInterval,
		ShutdownTimeout:          opts.ShutdownTimeout,
		Logger:                   asynqLogger{opts.Logger.With("component", "asynq")},
	})
	if opts.SweepInterval >= 0 {
		w.sweeper = ledger.NewSweeper(opts.Ledger, opts.SweepInterval, 0)
	}
	if opts.RecoverAfter > 0 {
		w.recover = newRecoverer(opts.Redis, opts.Ledger.Queue(), opts.RecoverAfter, w.log)
	}
	return w, nil
}

// Start begins consuming tasks; it returns once the worker is running.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	for _, kind := range tasks.Kinds {
		mux.Handle(kind.TaskType(), w)
	}
	if err := w.srv.Start(mux); err != nil {
		return err
	}
	if w.recover != nil {
		w.recover.start()
	}
	if w.sweeper != nil {
		w.sweeper.Start()
	}
	w.log.Info("worker started", "queue", w.ledger.Queue(), "concurrency", w.opts.Concurrency)
	return nil
}

// Shutdown stops taking tasks and waits up to ShutdownTimeout for running
// postings; unfinished ones return to the queue and are reconciled when
// they run again. Calling it again does nothing.
func (w *Worker) Shutdown() { w.shutdown.Do(w.stop) }

func (w *Worker) stop() {
	if w.recover != nil {
		w.recover.shutdown()
	}
	if w.sweeper != nil {
		w.sweeper.Shutdown()
	}
	w.srv.Shutdown()
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.opts.RecordTimeout + time.Second):
		w.log.Warn("handlers still running after shutdown; their jobs will be reconciled when they run again")
	}
	w.log.Info("worker stopped")
}
