package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

const settle = 30 * time.Second // generous bound for conditions awaited in tests

func TestPostsEachKind(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	inv := r.submit(taskstest.SupplierInvoice("INV-OK-1"))
	je := r.submit(taskstest.JournalEntry("je-ok-1"))

	gotInv := r.awaitStatus(inv.ID, tasks.StatusSucceeded, settle)
	gotJE := r.awaitStatus(je.ID, tasks.StatusSucceeded, settle)

	ledgerDocs := map[string]sim.LedgerDocument{}
	for _, d := range r.sim.Ledger() {
		ledgerDocs[d.Reference] = d
	}
	if d := ledgerDocs[ref(inv)]; d.Document == "" || d.Document != gotInv.Result.Document || d.FiscalYear != gotInv.Result.FiscalYear || d.Kind != sim.KindSupplierInvoice {
		t.Fatalf("invoice result %+v does not match the simulator's ledger %+v", gotInv.Result, d)
	}
	if d := ledgerDocs[ref(je)]; d.Document == "" || d.Document != gotJE.Result.Document || d.CompanyCode != "1010" || d.Kind != sim.KindJournalEntry {
		t.Fatalf("journal entry result %+v does not match the simulator's ledger %+v", gotJE.Result, d)
	}
	if gotInv.Attempts != 1 || gotJE.Attempts != 1 || gotInv.Result.Reconciled {
		t.Fatalf("attempts %d/%d, reconciled %v; want one clean attempt each", gotInv.Attempts, gotJE.Attempts, gotInv.Result.Reconciled)
	}
}

// Failures that certainly posted nothing are retried with backoff until
// SAP recovers, and SAP ends up with one document.
func TestRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults sim.Faults
		code   string
	}{
		{"503 before posting", sim.Faults{FailRate: 1}, "/IWFND/CM_BEC/026"},
		{"lock", sim.Faults{LockRate: 1}, "MC/601"},
		{"429 with Retry-After", sim.Faults{ThrottleRate: 1}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, c.faults)
			r.startWorker(r.options())
			job := r.submit(taskstest.SupplierInvoice(fmt.Sprintf("INV-TRANS-%d", i)))
			retrying := r.await(job.ID, "retrying after a fault", settle, func(j tasks.Job) bool { return j.Status == tasks.StatusRetrying && j.Error != nil })
			if retrying.Error.Category != tasks.CategoryTransient || retrying.Phase != tasks.PhasePending || retrying.Error.Code != c.code {
				t.Fatalf("while retrying: %s; want a transient %q error and nothing sent", describeJob(retrying), c.code)
			}
			if err := r.sim.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
			done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
			if done.Attempts < 2 || done.Result.Reconciled {
				t.Fatalf("job = %s; want a plain retry", describeJob(done))
			}
			if n := r.documents(ref(job)); n != 1 {
				t.Fatalf("simulator holds %d documents for the invoice, want 1", n)
			}
		})
	}
}

// An ambiguous failure posts the document and loses the answer. The retry
// must find it, not post it again. The simulator loses answers alternately by
// dropping the connection and by a gateway's 504, so two postings of each
// kind meet both.
func TestAmbiguousFailureIsReconciledNotResent(t *testing.T) {
	t.Parallel()
	for _, kind := range []tasks.Kind{tasks.KindSupplierInvoice, tasks.KindJournalEntry} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, sim.Faults{AmbiguousRate: 1}) // every POST; look-ups are reads
			r.startWorker(r.options())
			for _, variant := range []string{"connection dropped", "504"} {
				var posting tasks.Posting = taskstest.SupplierInvoice("INV-AMBIG-" + variant[:3])
				if kind == tasks.KindJournalEntry {
					posting = taskstest.JournalEntry("je-ambig-" + variant)
				}
				job := r.submit(posting)
				// The unknown outcome lasts only until the retry's look-up,
				// too briefly to observe reliably: the result tells.
				done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
				if n := r.documents(ref(job)); n != 1 {
					t.Fatalf("%s: simulator holds %d documents for %s, want exactly 1", variant, n, ref(job))
				}
				if !done.Result.Reconciled || done.Result.Document == "" || done.Attempts != 1 {
					t.Fatalf("%s: %s: want the document of the one call adopted by look-up", variant, describeJob(done))
				}
			}
			st := r.sim.Stats()
			if posts, lost := st.Attempts[sim.Kind(kind)], st.Faults[sim.FaultAmbiguous]; posts != 2 || lost != 2 {
				t.Fatalf("simulator received %d posting requests and lost %d answers, want 2 and 2 (no resend after a lost answer)", posts, lost)
			}
		})
	}
}

func TestPermanentErrorsFailAtOnceWithSAPMessage(t *testing.T) {
	t.Parallel()
	closed := taskstest.JournalEntry("je-closed")
	closed.PostingDate = time.Now().AddDate(-2, 0, 0).Format("2006-01-02")
	unknownAccount := taskstest.SupplierInvoice("INV-BADGL")
	unknownAccount.Items[1].GLAccount = "99999999"
	cases := []struct {
		name    string
		posting tasks.Posting
		code    string
		text    string
	}{
		{"closed period", closed, "F5/201", "is not open"},
		{"unknown G/L account", unknownAccount, "F5/507", "99999999"},
	}
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := r.submit(c.posting)
			got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
			if got.Attempts != 1 {
				t.Fatalf("attempts = %d, want 1 (no retry of a permanent error)", got.Attempts)
			}
			if got.Error == nil || got.Error.Code != c.code || got.Error.Category != tasks.CategoryPermanent || !strings.Contains(got.Error.Message, c.text) {
				t.Fatalf("error = %+v, want %s ...%s... permanent", got.Error, c.code, c.text)
			}
			r.awaitTaskState(job.ID, asynq.TaskStateArchived, settle) // kept for reprocessing
			// The Asynq UI shows the task's last error in a narrow column:
			// SAP's code and message come first.
			info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), ledger.TaskID(job.ID))
			if err != nil || !strings.HasPrefix(info.LastErr, c.code+" "+got.Error.Message) || !strings.Contains(info.LastErr, "(not retried)") {
				t.Fatalf("the task's last error = %q (%v), want it to start with %q", info.LastErr, err, c.code+" "+got.Error.Message)
			}
		})
	}
	if docs := r.sim.Ledger(); len(docs) != 0 {
		t.Fatalf("simulator posted %d documents for rejected postings", len(docs))
	}
}

// Once the cause is fixed, an operator reprocesses the failed job and it
// posts exactly once.
func TestReprocessAfterFix(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	late := taskstest.SupplierInvoice("INV-LATE")
	threeMonthsAgo := time.Now().UTC().AddDate(0, -3, 0) // the simulator's periods follow UTC
	late.PostingDate = threeMonthsAgo.Format("2006-01-02")
	job := r.submit(late)
	failed := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	if failed.Error.Code != "F5/201" {
		t.Fatalf("error = %+v, want F5/201", failed.Error)
	}
	// Finance reopens the period: in the simulator, its clock goes back.
	r.simShift.Store(int64(time.Until(threeMonthsAgo)))
	// The worker records the failure just before asynq archives the task;
	// an operator who is quicker than that is asked to try again.
	deadline := time.Now().Add(settle)
	for {
		_, err := r.ledger.Reprocess(context.Background(), job.ID)
		if err == nil {
			break
		}
		if !errors.Is(err, ledger.ErrStillFinishing) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if n := r.documents(ref(job)); n != 1 || done.Result.Document == "" {
		t.Fatalf("after reprocessing: %d documents, result %+v", n, done.Result)
	}
}

func TestConcurrentSubmissionsPostOneDocument(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	const n = 50
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			job, _, err := r.ledger.Submit(context.Background(), "tester", taskstest.JournalEntry("je-50"))
			if err != nil {
				t.Error(err)
				return
			}
			ids <- job.ID
		})
	}
	wg.Wait()
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Fatalf("two jobs for one key: %s and %s", first, id)
		}
	}
	job := r.awaitStatus(first, tasks.StatusSucceeded, settle)
	if c := r.documents(ref(job)); c != 1 {
		t.Fatalf("simulator holds %d documents, want 1", c)
	}
}

func TestCancelledJobIsNeverSent(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	job := r.submit(taskstest.JournalEntry("je-cancel"))
	if _, err := r.ledger.Cancel(context.Background(), "tester", job.ID, r.sapSystems()); err != nil {
		t.Fatal(err)
	}
	// Even if the task were delivered (a copy re-enqueued by a sweep), the
	// worker drops it: run the handler directly on the task.
	w := r.startWorker(r.options())
	task := asynq.NewTask(tasks.KindJournalEntry.TaskType(), []byte(`{"job_id":"`+job.ID+`","caller":"tester"}`))
	if err := w.ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("ProcessTask on a cancelled job: %v", err)
	}
	if got := r.sim.Stats().Attempts[sim.KindJournalEntry]; got != 0 {
		t.Fatalf("simulator received %d posts for a cancelled job", got)
	}
}

// A delivery of an already posted job (asynq redelivers after a crash
// between recording and acknowledging) returns the stored result and sends
// nothing.
func TestRedeliveryOfPostedJobSendsNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	w := r.startWorker(r.options())
	job := r.submit(taskstest.JournalEntry("je-redeliver"))
	r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	task := asynq.NewTask(tasks.KindJournalEntry.TaskType(), []byte(`{"job_id":"`+job.ID+`","caller":"tester"}`))
	if err := w.ProcessTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	if got := r.sim.Stats().Attempts[sim.KindJournalEntry]; got != 1 {
		t.Fatalf("simulator received %d posts, want 1", got)
	}
}

// A shutdown that outlasts a SAP call cancels it: the outcome is recorded
// as unknown, asynq puts the task back, and the next worker reconciles
// before sending. SAP ends up with exactly one document.
func TestShutdownMidCallIsReconciled(t *testing.T) {
	t.Parallel()
	// SAP takes a second over the call and, as SAP does, commits it even
	// though the worker gives up.
	r := newRig(t, sim.Faults{Latency: time.Second})
	opts := r.options()
	opts.ShutdownTimeout = 100 * time.Millisecond
	first, err := worker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	job := r.submit(taskstest.SupplierInvoice("INV-SHUTDOWN"))
	r.await(job.ID, "sending", settle, func(j tasks.Job) bool { return j.Phase == tasks.PhaseSending })
	r.awaitPosts(sim.KindSupplierInvoice, 1) // the POST itself is in flight, not just the CSRF fetch
	first.Shutdown()

	got, err := r.ledger.Get(context.Background(), "", job.ID)
	if err != nil || got.Phase != tasks.PhaseSending || got.Error == nil || got.Error.Category != tasks.CategoryUnknown {
		t.Fatalf("after shutdown: %s (%v); want the unknown outcome recorded, still sending", describeJob(got), err)
	}
	r.sim.SetFaults(sim.Faults{})
	// The next worker must not look before SAP can have finished the call:
	// a look-up during the second it takes would miss the document.
	r.startWorker(r.options())
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if n := r.documents(ref(job)); n != 1 || !done.Result.Reconciled || r.sim.Stats().Attempts[sim.KindSupplierInvoice] != 1 {
		t.Fatalf("%d documents, result %+v; want the one document adopted by look-up, one POST", n, done.Result)
	}
}

// Two invoices may share the supplier's invoice number (a credit memo, a
// corrected amount). Reconciling one must not adopt the other's document:
// a look-up finds only the document that carries the posting's own
// reference.
func TestReconcileDoesNotAdoptAnotherInvoiceWithTheSameNumber(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	first := r.submit(taskstest.SupplierInvoice("INV-SHARED"))
	firstDone := r.awaitStatus(first.ID, tasks.StatusSucceeded, settle)

	r.sim.SetFaults(sim.Faults{AmbiguousRate: 1})
	corrected := taskstest.SupplierInvoice("INV-SHARED-2")
	corrected.InvoiceReference = "INV-SHARED"
	corrected.GrossAmount, corrected.Items[1].Amount = "1200.00", "200.00"
	second := r.submit(corrected) // posted, answer lost; the retry looks it up
	secondDone := r.awaitStatus(second.ID, tasks.StatusSucceeded, settle)

	if secondDone.Result.Document == firstDone.Result.Document {
		t.Fatalf("the corrected invoice adopted the first invoice's document %s", firstDone.Result.Document)
	}
	if !secondDone.Result.Reconciled || r.documents(ref(first)) != 1 || r.documents(ref(second)) != 1 || r.sim.Stats().Attempts[sim.KindSupplierInvoice] != 2 {
		t.Fatalf("result %+v; want the second document found by look-up, one each, one POST each", secondDone.Result)
	}
}

// asynq archives a task whose last attempt returns any error, even a wait
// that spends no retry. A last attempt that meets an earlier call still
// settling in SAP waits in the handler and then reconciles, instead of
// ending the job as failed.
func TestLastAttemptWaitsForAnEarlierCallToSettle(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{AmbiguousRate: 1})
	// The settle time outlasts the retry delay: the retry, the last
	// attempt, meets a settling call.
	r.useLedger(ledger.Options{MaxRetry: 1})
	r.startWorker(r.options())
	job := r.submit(taskstest.SupplierInvoice("INV-LAST"))
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if !done.Result.Reconciled || r.documents(ref(job)) != 1 || r.sim.Stats().Attempts[sim.KindSupplierInvoice] != 1 {
		t.Fatalf("%s, %d documents; want the one document adopted by look-up", describeJob(done), r.documents(ref(job)))
	}
}

// A job this worker cannot build a request for (a payload written by a newer
// release, or damaged) fails without SAP being called, and keeps what the
// ledger knows of SAP: after a call whose outcome is unknown it stays
// uncancellable and is reconciled when it is reprocessed.
func TestUnsendablePayloadKeepsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, from, to string }{
		{"a newer release's field", `{`, `{"future_field":"x",`},
		{"a damaged amount", `"amount":"250.00"`, `"amount":"x250.00"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, sim.Faults{})
			ctx := context.Background()
			job := r.submit(taskstest.JournalEntry("je-unsendable"))
			claimed, err := r.ledger.Claim(ctx, job.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.ledger.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, ref(job)); err != nil { // a call went out; its answer was lost
				t.Fatal(err)
			}
			r.rewritePayload(job.ID, strings.Replace(string(job.Payload), c.from, c.to, 1))
			r.startWorker(r.options())
			got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
			if got.Phase != tasks.PhaseSending || got.Error == nil || got.Error.Code != "invalid_payload" || got.Error.Category != tasks.CategoryUnknown {
				t.Fatalf("%s; want failed, still sending, outcome unknown", describeJob(got))
			}
			if strings.Contains(got.Error.Message, "panic") || strings.Contains(got.Error.Message, ".go:") {
				t.Fatalf("error message %q", got.Error.Message)
			}
			if _, err := r.ledger.Cancel(ctx, "tester", job.ID, r.sapSystems()); !errors.Is(err, ledger.ErrNotCancellable) {
				t.Fatalf("cancel of a job SAP may hold: %v", err)
			}
			if n := r.sim.Stats().Attempts[sim.KindJournalEntry]; n != 0 {
				t.Fatalf("simulator received %d posts", n)
			}
		})
	}
}

// A handler that asynq starts as the worker shuts down (it had already given
// up on it) does nothing: the job is left for the next delivery.
func TestHandlerAfterShutdownDoesNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	w, err := worker.New(r.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	w.Shutdown()
	job := r.submit(taskstest.JournalEntry("je-late"))
	task := asynq.NewTask(tasks.KindJournalEntry.TaskType(), []byte(`{"job_id":"`+job.ID+`","caller":"tester"}`))
	if err := w.ProcessTask(context.Background(), task); err == nil {
		t.Fatal("a handler after shutdown reported success")
	}
	if got, _ := r.ledger.Get(context.Background(), "", job.ID); got.Status != tasks.StatusQueued || r.sim.Stats().Attempts[sim.KindJournalEntry] != 0 {
		t.Fatalf("job %s, %d posts; want it untouched", got.Status, r.sim.Stats().Attempts[sim.KindJournalEntry])
	}
}
