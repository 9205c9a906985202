package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

// The tests in this file play serialisation toward SAP (worker/locks.go):
// jobs of one SAP object never overlap in SAP, a destination never gets
// more calls than its cap, waiting costs neither retries nor worker slots,
// and a dead worker's leases run out.

const supplierA, supplierB = "17300001", "17300002"

// invoiceOf is a supplier invoice of the given supplier.
func invoiceOf(key, supplier string) tasks.Posting {
	inv := taskstest.SupplierInvoice(key)
	inv.Supplier = supplier
	return inv
}

// paymentTo is a journal entry with a line on the supplier's account: it
// locks the supplier as an invoice of it does.
func paymentTo(key, supplier string) tasks.Posting {
	je := taskstest.JournalEntry(key)
	je.Items = je.Items[:1]
	je.SupplierItems = []tasks.JournalEntrySupplierItem{{Supplier: supplier, Amount: "-250.00", Text: "Payable"}}
	return je
}

// metricSum adds up the samples of a counter over registries, those whose
// labels include label=value ("" for all).
func metricSum(t *testing.T, name, label, value string, regs ...*prometheus.Registry) float64 {
	t.Helper()
	var sum float64
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				match := label == ""
				for _, l := range m.GetLabel() {
					match = match || (l.GetName() == label && l.GetValue() == value)
				}
				if match {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// retryWatch watches the queue's retry set while a test runs: the most
// retries any task had spent, and how many times a task was seen waiting
// there for an SAP object or a call slot.
type retryWatch struct {
	mu         sync.Mutex
	maxRetried int
	waits      int
	stop       chan struct{}
	done       chan struct{}
}

func (r *rig) watchRetries() *retryWatch {
	w := &retryWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			tasks, _ := r.ledger.Inspector().ListRetryTasks(r.ledger.Queue(), asynq.PageSize(1000))
			w.mu.Lock()
			for _, ti := range tasks {
				w.maxRetried = max(w.maxRetried, ti.Retried)
				if strings.Contains(ti.LastErr, "being posted by another job") || strings.Contains(ti.LastErr, "calls to SAP destination") {
					w.waits++
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	r.t.Cleanup(func() { w.end() })
	return w
}

// end stops watching and returns what was seen.
func (w *retryWatch) end() (maxRetried, waits int) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxRetried, w.waits
}

// Two workers and many jobs of one supplier (invoices, and payments whose
// supplier is written with leading zeros): SAP never processes two of them
// at once, so none meets SAP's lock, each is sent once, and waiting for the
// supplier spends no retries (the budget is one retry).
func TestJobsOfOneSupplierNeverOverlapInSAP(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.useSimOptions(sim.Options{EnqueueLocks: true, Faults: sim.Faults{Latency: 100 * time.Millisecond}})
	r.useLedger(ledger.Options{MaxRetry: 1})
	var regs []*prometheus.Registry
	for range 2 {
		opts := r.options()
		reg := prometheus.NewRegistry()
		opts.Metrics, regs = reg, append(regs, reg)
		r.startWorker(opts)
	}
	watch := r.watchRetries()
	var jobs []tasks.Job
	for i := range 8 {
		jobs = append(jobs, r.submit(invoiceOf(fmt.Sprintf("INV-ONE-%d", i), supplierA)))
	}
	for i := range 4 {
		jobs = append(jobs, r.submit(paymentTo(fmt.Sprintf("pay-one-%d", i), "00"+supplierA)))
		jobs = append(jobs, r.submit(invoiceOf(fmt.Sprintf("INV-OTHER-%d", i), supplierB)))
	}
	for _, job := range jobs {
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 || done.Attempts != 1 {
			t.Errorf("%s: %s, %d documents; want one, sent once", job.IdempotencyKey, describeJob(done), n)
		}
	}
	maxRetried, waits := watch.end()
	st := r.sim.Stats()
	if st.LockCollisions != 0 {
		t.Errorf("SAP saw %d postings meet a lock another posting held", st.LockCollisions)
	}
	if waits == 0 || metricSum(t, "sapq_lock_waits_total", "domain", "supplier", regs...) == 0 {
		t.Fatalf("no job was seen waiting for the supplier (%d in the retry set): the test did not play what it claims", waits)
	}
	if maxRetried != 0 {
		t.Errorf("a task waiting for the supplier had spent %d retries; waiting must spend none", maxRetried)
	}
}

// A job waiting for its SAP object is back in the queue, not in a worker:
// a worker with one slot posts another supplier's invoice meanwhile, and
// the waiting job, with a budget of one retry, spends none.
func TestWaitingForALockHoldsNoWorkerSlot(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{Next: []sim.FaultKind{sim.FaultHold}})
	// The held call must not time out: SAP holds it until the test lets go.
	client, err := sap.New(sap.Config{BaseURL: r.simURL, User: simUser, Password: simPassword, Timeout: 20 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.sap = client
	r.useLedger(ledger.Options{MaxRetry: 1, Settle: 25 * time.Second})
	one := func() (worker.Options, *prometheus.Registry) {
		opts := r.options()
		opts.Concurrency, opts.SAPTimeout = 1, 20*time.Second
		reg := prometheus.NewRegistry()
		opts.Metrics = reg
		return opts, reg
	}
	holderOpts, _ := one()
	r.startWorker(holderOpts)
	held := r.submit(invoiceOf("INV-HELD", supplierA))
	r.eventually(settle, "the first invoice held inside SAP", func() (bool, string) {
		return r.sim.Held() == 1, describeJob(r.job(held.ID))
	})

	// The holder's one slot is taken; the other worker gets both jobs.
	otherOpts, reg := one()
	r.startWorker(otherOpts)
	waiting := r.submit(invoiceOf("INV-WAITING", supplierA))
	r.eventually(settle, "the second invoice waiting for the supplier", func() (bool, string) {
		n := metricSum(t, "sapq_lock_waits_total", "domain", "supplier", reg)
		return n >= 2, fmt.Sprintf("%v waits", n)
	})
	free := r.submit(invoiceOf("INV-FREE", supplierB))
	r.awaitStatus(free.ID, tasks.StatusSucceeded, settle)
	if r.sim.Held() != 1 || r.job(waiting.ID).Status.Terminal() {
		t.Fatalf("the held invoice or the waiting one moved on before the test let go: %s", describeJob(r.job(waiting.ID)))
	}
	info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), ledger.TaskID(waiting.ID))
	if err != nil || info.Retried != 0 {
		t.Fatalf("the waiting task: %+v (%v); want no retry spent", info, err)
	}

	r.sim.Release()
	for _, job := range []tasks.Job{held, waiting} {
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 || done.Attempts != 1 {
			t.Errorf("%s: %s, %d documents; want one, sent once", job.IdempotencyKey, describeJob(done), n)
		}
	}
	if st := r.sim.Stats(); st.LockCollisions != 0 {
		t.Errorf("SAP saw %d postings meet a lock another posting held", st.LockCollisions)
	}
}

// A destination's cap holds in what SAP sees, across two workers that
// could run eight calls at once; without a cap they do run more.
func TestDestinationCapHoldsInSAP(t *testing.T) {
	t.Parallel()
	const capped = 2
	for _, maxInFlight := range []int{capped, 0} {
		t.Run(fmt.Sprintf("max_in_flight=%d", maxInFlight), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, sim.Faults{Latency: 150 * time.Millisecond})
			var regs []*prometheus.Registry
			for range 2 {
				opts := r.options()
				reg := prometheus.NewRegistry()
				opts.Metrics, opts.MaxInFlight, regs = reg, maxInFlight, append(regs, reg)
				r.startWorker(opts)
			}
			var jobs []tasks.Job
			for i := range 16 {
				// Journal entries of G/L lines only: no SAP object to
				// serialise on, only the cap.
				jobs = append(jobs, r.submit(taskstest.JournalEntry(fmt.Sprintf("je-cap-%d-%d", maxInFlight, i))))
			}
			for _, job := range jobs {
				r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
			}
			seen := r.sim.Stats().MaxInFlight
			waits := metricSum(t, "sapq_destination_waits_total", "destination", tasks.DefaultDestination, regs...)
			switch {
			case maxInFlight > 0 && (seen > maxInFlight || waits == 0):
				t.Fatalf("SAP processed %d requests at once (cap %d; %v waits)", seen, maxInFlight, waits)
			case maxInFlight == 0 && seen <= capped:
				t.Fatalf("without a cap SAP processed at most %d requests at once: the capped run proves nothing", seen)
			}
			t.Logf("at most %d requests in SAP at once", seen)
		})
	}
}

// A worker killed while it posts leaves its leases behind: they run out by
// themselves (the settle time after the call began), long before asynq
// recovers the killed task, and other jobs of the same supplier and the
// same capped destination proceed; SAP never sees them overlap.
func TestKilledWorkersLeasesRunOut(t *testing.T) {
	t.Parallel()
	const settleTime = 6 * time.Second
	r := newRig(t, sim.Faults{Next: []sim.FaultKind{sim.FaultSlow}, SlowLatency: time.Second})
	r.useLedger(ledger.Options{Settle: settleTime})
	child := r.childWorker("SAPQ_TEST_SETTLE="+settleTime.String(), "SAPQ_TEST_SAP_TIMEOUT=2s", "SAPQ_TEST_MAX_IN_FLIGHT=1")
	killed := r.submit(invoiceOf("INV-KILLED", supplierA))
	r.awaitPosts(sim.KindSupplierInvoice, 1)
	child.kill()

	ctx := context.Background()
	if h, _ := r.rdb.Get(ctx, worker.LockKey("supplier/1010/"+supplierA)).Result(); !strings.HasPrefix(h, killed.ID) {
		t.Fatalf("the supplier's lease is held by %q, want the killed worker's job %s", h, killed.ID)
	}
	if n, _ := r.rdb.ZCard(ctx, worker.InFlightKey(tasks.DefaultDestination)).Result(); n != 1 {
		t.Fatalf("%d call slots held, want the killed worker's", n)
	}

	opts := r.options()
	reg := prometheus.NewRegistry()
	opts.Metrics, opts.MaxInFlight = reg, 1
	r.startWorker(opts)
	same := r.submit(invoiceOf("INV-AFTER-KILL", supplierA))
	other := r.submit(invoiceOf("INV-OTHER-KILL", supplierB))
	for _, job := range []tasks.Job{same, other} {
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 || done.Attempts != 1 {
			t.Errorf("%s: %s, %d documents; want one, sent once", job.IdempotencyKey, describeJob(done), n)
		}
	}
	if j := r.job(killed.ID); j.Status != tasks.StatusRunning || j.Phase != tasks.PhaseSending {
		t.Fatalf("the killed job is %s: asynq recovered it already, so the leases may not have run out by themselves", describeJob(j))
	}
	if metricSum(t, "sapq_lock_waits_total", "domain", "supplier", reg) == 0 || metricSum(t, "sapq_destination_waits_total", "", "", reg) == 0 {
		t.Fatal("no job waited for the killed worker's leases: the test did not play what it claims")
	}
	if st := r.sim.Stats(); st.LockCollisions != 0 || st.MaxInFlight != 1 {
		t.Fatalf("SAP saw %d lock collisions and %d requests at once; want none and 1", st.LockCollisions, st.MaxInFlight)
	}
}

// On a Redis Cluster, where each SAP object's lease and each destination's
// slots live in slots of their own, two workers keep the supplier and the
// cap as on one Redis.
func TestSerialisationOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.SharedCluster(t, redistest.ClusterOptions{})
	r := newRigOn(t, cluster.Client(), 0, sim.Faults{})
	r.useSimOptions(sim.Options{EnqueueLocks: true, Faults: sim.Faults{Latency: 100 * time.Millisecond}})
	const maxInFlight = 3
	for range 2 {
		opts := r.options()
		opts.MaxInFlight = maxInFlight
		r.startWorker(opts)
	}
	var jobs []tasks.Job
	for i := range 6 {
		jobs = append(jobs, r.submit(invoiceOf(fmt.Sprintf("INV-CL-A-%d", i), supplierA)))
		jobs = append(jobs, r.submit(paymentTo(fmt.Sprintf("pay-cl-b-%d", i), supplierB)))
		jobs = append(jobs, r.submit(taskstest.JournalEntry(fmt.Sprintf("je-cl-%d", i))))
	}
	for _, job := range jobs {
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 || done.Attempts != 1 {
			t.Errorf("%s: %s, %d documents; want one, sent once", job.IdempotencyKey, describeJob(done), n)
		}
	}
	if st := r.sim.Stats(); st.LockCollisions != 0 || st.MaxInFlight > maxInFlight {
		t.Fatalf("SAP saw %d lock collisions and %d requests at once; want none and at most %d", st.LockCollisions, st.MaxInFlight, maxInFlight)
	}
}
