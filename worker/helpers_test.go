package worker_test

import (
	"context"
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

func newRig(t *testing.T, faults sim.Faults) *rig {
	t.Helper()
	rdb, db := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, rdb: rdb, db: db, ledger: l}
	s := sim.New(sim.Options{User: simUser, Password: simPassword, Faults: faults, Seed: 1, Logger: testLogger(t),
		Now: func() time.Time { return time.Now().Add(time.Duration(r.simShift.Load())) }})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	client, err := sap.New(sap.Config{BaseURL: hs.URL, User: simUser, Password: simPassword, Timeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.sim, r.simURL, r.sap = s, hs.URL, client
	return r
}

// fastOptions keep retries and reconciliation quick enough for tests.
func (r *rig) options() worker.Options {
	return worker.Options{
		Redis: r.rdb, Ledger: r.ledger, SAP: r.sap, SAPUser: simUser,
		Concurrency: 4, SAPTimeout: 5 * time.Second, ReconcileAfter: 50 * time.Millisecond,
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
		info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), id)
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
	if old, _ := r.rdb.HGet(context.Background(), "sapq:job:"+id, "payload").Result(); old == payload {
		r.t.Fatal("rewritePayload: the payload is unchanged")
	}
	if err := r.rdb.HSet(context.Background(), "sapq:job:"+id, "payload", payload).Err(); err != nil {
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
