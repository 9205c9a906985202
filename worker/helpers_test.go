package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/worker"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	if os.Getenv(workerProcessEnv) != "" {
		runWorkerProcess() // the child side of TestKilledWorker
		return
	}
	redistest.Main(m, &redisSrv)
}

const (
	simUser     = "SAPQ_COMM"
	simPassword = "test-secret-Pa55"
)

// rig is a worker wired to a real Redis and the SAP simulator.
type rig struct {
	t      *testing.T
	rdb    redis.UniversalClient
	db     int
	ledger *ledger.Ledger
	sim    *sim.Server
	simURL string
	sap    *sap.Client
	// simShift moves the simulator's clock, which decides the open posting
	// periods (the current and the previous month).
	simShift atomic.Int64
}

// The rig's SAP timeout and settle time: short, so that waiting for an
// earlier call to settle costs little, and long enough for the simulator to
// answer a call on a loaded machine.
const (
	rigSAPTimeout = 2 * time.Second
	rigSettle     = 2500 * time.Millisecond
)

func newRig(t *testing.T, faults sim.Faults) *rig {
	t.Helper()
	rdb, db := redisSrv.NewDB(t)
	return newRigOn(t, rdb, db, faults)
}

// newRigOn is a rig on the given Redis.
func newRigOn(t *testing.T, rdb redis.UniversalClient, db int, faults sim.Faults) *rig {
	t.Helper()
	r := &rig{t: t, rdb: rdb, db: db}
	r.useLedger(ledger.Options{})
	// A fresh database opens a loss window (it cannot be told from one
	// that lost its data); tests that are not about that start without.
	if err := r.ledger.TrustRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.useSimOptions(sim.Options{Faults: faults})
	return r
}

// useSimOptions gives the rig a new simulator with opts (the rig's
// credentials, logger and clock filled in) and a client of it.
func (r *rig) useSimOptions(opts sim.Options) {
	t := r.t
	t.Helper()
	opts.User, opts.Password, opts.Seed, opts.Logger = simUser, simPassword, 1, testLogger(t)
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(r.simShift.Load())) }
	s := sim.New(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		for s.Release() { // a held request would keep the server from closing
		}
	})
	client, err := sap.New(sap.Config{BaseURL: hs.URL, User: simUser, Password: simPassword, Timeout: rigSAPTimeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.sim, r.simURL, r.sap = s, hs.URL, client
}

// useLedger replaces the rig's ledger by one with opts (on the rig's Redis,
// settle time rigSettle unless opts says otherwise).
func (r *rig) useLedger(opts ledger.Options) {
	r.t.Helper()
	if opts.Redis == nil {
		opts.Redis = r.rdb
	}
	if opts.Settle == 0 {
		opts.Settle = rigSettle
	}
	opts.Logger = testLogger(r.t)
	l, err := ledger.New(opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.ledger = l
}

// ref is the reference the job's documents carry in SAP.
func ref(job tasks.Job) string {
	return tasks.IdentityOf(&job, tasks.DefaultDestination).Reference()
}

// fastOptions keep retries and reconciliation quick enough for tests.
func (r *rig) options() worker.Options {
	return worker.Options{
		Redis: r.rdb, Ledger: r.ledger, SAP: r.sapSystems(),
		Concurrency: 4, SAPTimeout: rigSAPTimeout,
		Retry:        worker.RetryPolicy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		PollInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second, SweepInterval: -1,
		Logger: testLogger(r.t),
	}
}

func (r *rig) startWorker(opts worker.Options) *worker.Worker {
	r.t.Helper()
	w, err := worker.New(opts)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(w.Shutdown)
	return w
}

func (r *rig) submit(p tasks.Posting) tasks.Job {
	r.t.Helper()
	job, _, err := r.ledger.Submit(context.Background(), "tester", p)
	if err != nil {
		r.t.Fatal(err)
	}
	return job
}

// eventually checks cond until it holds, or fails the test with what cond
// last saw. There is no change notification to wait on in the ledger, asynq
// or the simulator, so it polls.
func (r *rig) eventually(limit time.Duration, what string, cond func() (bool, string)) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s not reached within %s; last seen %s", what, limit, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// await waits until cond holds for the job as the ledger reports it.
func (r *rig) await(id string, what string, limit time.Duration, cond func(tasks.Job) bool) tasks.Job {
	r.t.Helper()
	var job tasks.Job
	r.eventually(limit, "job "+id+" "+what, func() (bool, string) {
		var err error
		job, err = r.ledger.Get(context.Background(), "", id)
		return err == nil && cond(job), fmt.Sprintf("%s (err %v)", describeJob(job), err)
	})
	return job
}

// job reads a job as the ledger reports it (the zero Job if it cannot).
func (r *rig) job(id string) tasks.Job {
	j, _ := r.ledger.Get(context.Background(), "", id)
	return j
}

// awaitGone waits until the job's task has left the queue (completed).
func (r *rig) awaitGone(id string) {
	r.t.Helper()
	r.eventually(settle, "task "+id+" gone", func() (bool, string) {
		info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), ledger.TaskID(id))
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, info.State.String()
	})
}

// forget deletes a job and its idempotency key from the ledger, as the end
// of its retention does.
func (r *rig) forget(job tasks.Job) {
	r.t.Helper()
	ctx := context.Background()
	keys, err := r.rdb.Keys(ctx, "sapq:*:job:"+job.ID).Result()
	if err != nil || len(keys) != 1 {
		r.t.Fatalf("forget: job key of %s: %v %v", job.ID, keys, err)
	}
	idem, err := r.rdb.Keys(ctx, "sapq:*:idem:*").Result()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, k := range idem {
		if v, _ := r.rdb.Get(ctx, k).Result(); v == job.ID {
			keys = append(keys, k)
		}
	}
	if err := r.rdb.Del(ctx, keys...).Err(); err != nil || len(keys) != 2 {
		r.t.Fatalf("forget %s: deleted %v (%v)", job.ID, keys, err)
	}
}

func (r *rig) awaitStatus(id string, want tasks.Status, limit time.Duration) tasks.Job {
	r.t.Helper()
	return r.await(id, string(want), limit, func(j tasks.Job) bool { return j.Status == want })
}

// awaitTaskState waits until the job's task reaches state. A handler
// records the outcome in the ledger before it returns to asynq, so the task
// moves a moment after the ledger does.
func (r *rig) awaitTaskState(id string, want asynq.TaskState, limit time.Duration) {
	r.t.Helper()
	r.eventually(limit, "task "+id+" "+want.String(), func() (bool, string) {
		info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), ledger.TaskID(id))
		if err != nil {
			return false, err.Error()
		}
		return info.State == want, info.State.String()
	})
}

// awaitPosts waits until the simulator has received n posting requests of a
// kind.
func (r *rig) awaitPosts(kind sim.Kind, n int) {
	r.t.Helper()
	r.eventually(settle, fmt.Sprintf("%d %s posts", n, kind), func() (bool, string) {
		got := r.sim.Stats().Attempts[kind]
		return got >= n, fmt.Sprintf("%d posts", got)
	})
}

// rewritePayload replaces a job's stored payload, as an older or newer
// release might have written it. The ledger offers no way to do this, so
// the test writes the job's hash directly.
func (r *rig) rewritePayload(id, payload string) {
	r.t.Helper()
	ctx := context.Background()
	keys, err := r.rdb.Keys(ctx, "sapq:*:job:"+id).Result()
	if err != nil || len(keys) != 1 {
		r.t.Fatalf("rewritePayload: job key of %s: %v %v", id, keys, err)
	}
	if old, _ := r.rdb.HGet(ctx, keys[0], "payload").Result(); old == payload {
		r.t.Fatal("rewritePayload: the payload is unchanged")
	}
	if err := r.rdb.HSet(ctx, keys[0], "payload", payload).Err(); err != nil {
		r.t.Fatal(err)
	}
}

// documents counts the simulator's postings for a reference.
func (r *rig) documents(ref string) int { return r.sim.CountByReference(ref) }

func describeJob(j tasks.Job) string {
	s := fmt.Sprintf("status=%s phase=%s attempts=%d", j.Status, j.Phase, j.Attempts)
	if j.Error != nil {
		s += fmt.Sprintf(" error=%s %q (%s)", j.Error.Code, j.Error.Message, j.Error.Category)
	}
	if j.Result != nil {
		s += " document=" + j.Result.Document
	}
	return s
}

// testLogger sends logs to the test log, shown only on failure or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// sapSystems is SAP as the MCP front sees it: the rig's simulator, for
// the look-up before a job never sent is cancelled.
func (r *rig) sapSystems() *sap.Destinations {
	r.t.Helper()
	dest, err := sap.SingleDestination(tasks.DefaultDestination, r.sap)
	if err != nil {
		r.t.Fatal(err)
	}
	return dest
}
