package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

const workerProcessEnv = "SAPQ_TEST_WORKER_PROCESS"

// runWorkerProcess is a worker in a child process, configured through the
// environment by the tests that kill it with SIGKILL (childWorker).
func runWorkerProcess() {
	db, _ := strconv.Atoi(os.Getenv("SAPQ_TEST_REDIS_DB"))
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("SAPQ_TEST_REDIS_ADDR"), DB: db})
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// By default SAP may take up to the minute-long timeout over a call.
	sapTimeout, settle := time.Minute, 70*time.Second
	if d, err := time.ParseDuration(os.Getenv("SAPQ_TEST_SAP_TIMEOUT")); err == nil {
		sapTimeout = d
	}
	if d, err := time.ParseDuration(os.Getenv("SAPQ_TEST_SETTLE")); err == nil {
		settle = d
	}
	maxInFlight, _ := strconv.Atoi(os.Getenv("SAPQ_TEST_MAX_IN_FLIGHT"))
	l, err := ledger.New(ledger.Options{Redis: rdb, Logger: log, Settle: settle})
	if err != nil {
		panic(err)
	}
	client, err := sap.New(sap.Config{BaseURL: os.Getenv("SAPQ_TEST_SAP_URL"), User: simUser, Password: simPassword, Timeout: sapTimeout})
	if err != nil {
		panic(err)
	}
	dest, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		panic(err)
	}
	w, err := worker.New(worker.Options{Redis: rdb, Ledger: l, SAP: dest, PollInterval: 50 * time.Millisecond, SAPTimeout: sapTimeout,
		MaxInFlight: maxInFlight, Logger: log, SweepInterval: -1})
	if err != nil {
		panic(err)
	}
	if err := w.Start(); err != nil {
		panic(err)
	}
	fmt.Println("worker process ready")
	select {} // until killed
}

// A worker killed with SIGKILL while its call to SAP is in flight leaves a
// job that asynq redelivers once the lease expires (about a minute); another
// worker finishes it, and SAP holds exactly one document.
func TestKilledWorkerMidCall(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about 60-90 s)")
	}
	t.Parallel()
	// SAP takes three seconds over the first call, long enough to kill the
	// worker in the middle of it, and then commits the document as SAP does:
	// the dangerous case, where a naive resend would post twice.
	r := newRig(t, sim.Faults{Latency: 3 * time.Second})
	job := r.submit(taskstest.JournalEntry("je-killed"))

	child := r.childWorker()

	r.await(job.ID, "sending in the child worker", settle, func(j tasks.Job) bool { return j.Phase == tasks.PhaseSending })
	r.awaitPosts(sim.KindJournalEntry, 1)
	child.kill()
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}

	r.useLedger(ledger.Options{Settle: 5 * time.Second}) // longer than SAP takes over a call
	r.startWorker(r.options())
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, 3*time.Minute)
	if n := r.documents(ref(job)); n != 1 {
		t.Fatalf("simulator holds %d documents for the job, want exactly 1", n)
	}
	if !done.Result.Reconciled || done.Result.Document == "" {
		t.Fatalf("job = %s; want the killed call's document adopted by look-up", describeJob(done))
	}
	if posts := r.sim.Stats().Attempts[sim.KindJournalEntry]; posts != 1 {
		t.Fatalf("simulator received %d posting requests, want 1 (no resend after the crash)", posts)
	}
	ctx := context.Background()
	if got, _ := r.ledger.Get(ctx, "", job.ID); got.Status != tasks.StatusSucceeded {
		t.Fatalf("ledger status %s", got.Status)
	}
}

// childWorker starts a worker process on the rig's Redis and simulator, with
// settings from env ("SAPQ_TEST_SETTLE=3s", see runWorkerProcess). It is
// killed when the test ends, if not before.
func (r *rig) childWorker(env ...string) *childProcess {
	r.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerProcessEnv+"=1",
		"SAPQ_TEST_REDIS_ADDR="+redisSrv.Addr, "SAPQ_TEST_REDIS_DB="+strconv.Itoa(r.db), "SAPQ_TEST_SAP_URL="+r.simURL)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := &childProcess{t: r.t, cmd: cmd}
	r.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return c
}

type childProcess struct {
	t   *testing.T
	cmd *exec.Cmd
}

// kill ends the worker process with SIGKILL: no handler finishes, no lease
// is given back.
func (c *childProcess) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	c.cmd.Wait()
}
