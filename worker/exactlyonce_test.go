package worker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

// The tests in this file each play one way the exactly-once promise broke
// before the ledger recorded SAP-side identity and Redis losses (see the
// README's Guarantees). Each asserts what SAP holds in the end.

// Redis loses its last writes (a crash with appendfsync everysec, a
// failover to a lagging replica; here a restart from an older copy of the
// AOF): the ledger forgets that a job was posted, or forgets the job itself.
// What SAP holds is adopted, never posted again, and no job is recorded as
// a duplicate failure.
func TestRedisRollbackAdoptsWhatSAPHolds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		posting func(key string) tasks.Posting
	}{
		{"supplier invoice", func(k string) tasks.Posting { return taskstest.SupplierInvoice(k) }},
		{"journal entry", func(k string) tasks.Posting { return taskstest.JournalEntry(k) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartPersistent(t, redistest.PersistentOptions{AppendFsync: "always"})
			r := newRigOn(t, srv.Client(), 0, sim.Faults{})
			ctx := context.Background()

			// The job the ledger will remember as queued, and the one it
			// will forget altogether.
			remembered := r.submit(c.posting("rollback-remembered"))
			srv.RewriteAOF()
			beforeForgotten := srv.Snapshot()
			forgotten := r.submit(c.posting("rollback-forgotten"))
			w := r.startWorker(r.options())
			r.awaitStatus(remembered.ID, tasks.StatusSucceeded, settle)
			r.awaitStatus(forgotten.ID, tasks.StatusSucceeded, settle)
			w.Shutdown()

			srv.RestartFrom(beforeForgotten)
			if got, err := r.ledger.Get(ctx, "", remembered.ID); err != nil || got.Status != tasks.StatusQueued {
				t.Fatalf("after the rollback the ledger says %s (%v); the test needs it to have forgotten the posting", describeJob(got), err)
			}
			if _, err := r.ledger.Get(ctx, "", forgotten.ID); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("after the rollback the forgotten job is still there (%v)", err)
			}
			// The agent finds its job gone and submits its key again.
			again := r.submit(c.posting("rollback-forgotten"))
			r.startWorker(r.options())
			for _, job := range []tasks.Job{remembered, again} {
				done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
				if !done.Result.Reconciled {
					t.Errorf("%s: %s; want the document SAP holds adopted", job.IdempotencyKey, describeJob(done))
				}
				if n := r.documents(ref(job)); n != 1 {
					t.Errorf("%s: SAP holds %d documents, want 1", job.IdempotencyKey, n)
				}
			}
			if posts := r.sim.Stats().Attempts[sim.Kind(remembered.Kind)]; posts != 2 {
				t.Errorf("SAP received %d posting requests, want 2 (none after the rollback)", posts)
			}
		})
	}
}

// A slow commit: the first POST outlasts the client's timeout, and SAP
// commits it only after the look-up that followed found nothing, just
// before the resend arrives. The resend is answered "duplicate invoice"
// (M8/108): that is this posting's own document, adopted, not a failure.
func TestSlowCommitAnsweredAsDuplicateIsAdopted(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{Next: []sim.FaultKind{sim.FaultHold, sim.FaultHold}})
	r.startWorker(r.options())
	job := r.submit(taskstest.SupplierInvoice("INV-SLOW"))
	// Both POSTs are inside SAP: the first outlasted its timeout, was
	// waited out, looked up (nothing yet) and resent.
	r.eventually(settle, "two posts held in SAP", func() (bool, string) {
		return r.sim.Held() == 2, describeJob(r.job(job.ID))
	})
	r.sim.Release() // the first commits
	r.eventually(settle, "the first post committed", func() (bool, string) {
		return len(r.sim.Ledger()) == 1, describeJob(r.job(job.ID))
	})
	r.sim.Release() // the resend meets SAP's duplicate check
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if !done.Result.Reconciled || r.documents(ref(job)) != 1 || r.sim.Stats().Rejected[sim.KindSupplierInvoice] != 1 {
		t.Fatalf("%s; want the slow document adopted after SAP refused the resend as a duplicate", describeJob(done))
	}
}

// SAP's duplicate check matches business data only. A look-up by those
// fields adopted another caller's invoice, or a reversed one: only the
// document that carries the posting's own reference is adopted.
func TestAnotherCallersInvoiceIsNeverAdopted(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	ctx := context.Background()
	a, _, err := r.ledger.Submit(ctx, "caller-a", taskstest.SupplierInvoice("INV-SAME"))
	if err != nil {
		t.Fatal(err)
	}
	aDone := r.awaitStatus(a.ID, tasks.StatusSucceeded, settle)

	// Caller B sends the same invoice: refused as a duplicate of a document
	// that B did not create.
	b, _, err := r.ledger.Submit(ctx, "caller-b", taskstest.SupplierInvoice("INV-SAME"))
	if err != nil {
		t.Fatal(err)
	}
	bDone := r.awaitStatus(b.ID, tasks.StatusFailed, settle)
	if bDone.Result != nil || bDone.Error.Code != "M8/108" || bDone.Error.Category != tasks.CategoryPermanent || bDone.Phase != tasks.PhasePending {
		t.Fatalf("caller B: %s; want a permanent M8/108 failure, nothing posted, and A's document not adopted", describeJob(bDone))
	}
	if strings.Contains(bDone.Error.Message, aDone.Result.Document) && bDone.Result != nil {
		t.Fatalf("caller B learnt caller A's document: %s", describeJob(bDone))
	}

	// A's invoice is reversed in SAP; the ledger forgets A's job (its
	// retention ended) and A submits the key again: the reversed document is
	// not adopted, and the invoice is not posted a second time either.
	if _, err := r.sim.Reverse(sim.KindSupplierInvoice, "1010", aDone.Result.Document, aDone.Result.FiscalYear); err != nil {
		t.Fatal(err)
	}
	r.forget(a)
	again, _, err := r.ledger.Submit(ctx, "caller-a", taskstest.SupplierInvoice("INV-SAME"))
	if err != nil {
		t.Fatal(err)
	}
	againDone := r.awaitStatus(again.ID, tasks.StatusFailed, settle)
	if againDone.Error.Code != worker.CodeReversed || againDone.Error.Category != tasks.CategoryReversed ||
		againDone.Result == nil || againDone.Result.Document != aDone.Result.Document || againDone.Result.ReversedBy == "" {
		t.Fatalf("resubmitted after a reversal: %s; want failed, with the reversed document and its reversal", describeJob(againDone))
	}
	// SAP holds a document for it: it is neither cancelled nor reprocessed.
	if _, err := r.ledger.Cancel(ctx, "caller-a", again.ID, r.sapSystems()); !errors.Is(err, ledger.ErrNotCancellable) {
		t.Fatalf("cancel of a job whose document SAP holds reversed: %v", err)
	}
	if posts := r.sim.Stats().Attempts[sim.KindSupplierInvoice]; posts != 2 || r.documents(ref(a)) != 1 {
		t.Fatalf("SAP received %d posts, holds %d documents of A; want 2 and 1", posts, r.documents(ref(a)))
	}
}

// The SAP-side identity came from the random job ID: a key the ledger had
// forgotten (its retention ended), submitted again, posted a second journal
// entry. It is now derived from the submission, and the look-up finds the
// entry SAP holds.
func TestForgottenKeySubmittedAgainFindsTheDocument(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.useLedger(ledger.Options{Retention: time.Second})
	r.startWorker(r.options())
	first := r.submit(taskstest.JournalEntry("je-forgotten"))
	firstDone := r.awaitStatus(first.ID, tasks.StatusSucceeded, settle)
	r.eventually(settle, "the job's retention to end", func() (bool, string) {
		_, err := r.ledger.Get(context.Background(), "", first.ID)
		return errors.Is(err, ledger.ErrNotFound), describeJob(r.job(first.ID))
	})
	again := r.submit(taskstest.JournalEntry("je-forgotten"))
	if again.ID == first.ID {
		t.Fatal("the ledger still knew the key")
	}
	done := r.awaitStatus(again.ID, tasks.StatusSucceeded, settle)
	if done.Result.Document != firstDone.Result.Document || !done.Result.Reconciled || r.documents(ref(first)) != 1 {
		t.Fatalf("%s; want the first entry %s found again, one document", describeJob(done), firstDone.Result.Document)
	}
}

// asynq can deliver the task of a failed job again (the recoverer after a
// lost lease, "Run" on the archived task in the Asynq UI). After the agent
// submitted a corrected document, that posted a second one. A failed job is
// final for deliveries now.
func TestDeliveryOfAFailedJobSendsNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	w := r.startWorker(r.options())
	wrong := taskstest.JournalEntry("je-wrong")
	wrong.PostingDate = time.Now().UTC().AddDate(0, -3, 0).Format("2006-01-02")
	job := r.submit(wrong)
	r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	r.awaitTaskState(job.ID, asynq.TaskStateArchived, settle)
	// The agent submits the corrected document under a new key.
	corrected := r.submit(taskstest.JournalEntry("je-corrected"))
	r.awaitStatus(corrected.ID, tasks.StatusSucceeded, settle)
	// Meanwhile the period of the wrong one was opened, and an operator
	// clicks "Run" on its archived task.
	r.simShift.Store(int64(-90 * 24 * time.Hour))
	if err := r.ledger.Inspector().RunTask(r.ledger.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatal(err)
	}
	r.awaitGone(job.ID)
	// And asynq's recoverer delivers the same task once more.
	task := asynq.NewTask(tasks.KindJournalEntry.TaskType(), []byte(`{"job_id":"`+job.ID+`","caller":"tester"}`))
	if err := w.ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("a delivery of the failed job: %v", err)
	}
	if got := r.job(job.ID); got.Status != tasks.StatusFailed {
		t.Fatalf("the failed job became %s", describeJob(got))
	}
	if posts := r.sim.Stats().Attempts[sim.KindJournalEntry]; posts != 2 || len(r.sim.Ledger()) != 1 {
		t.Fatalf("SAP received %d posts and holds %d documents; want 2 and only the corrected one", posts, len(r.sim.Ledger()))
	}
}

// A 500 that carries a permanent SAP code was retried for hours: a 500 may
// follow a commit, so it is an unknown outcome, but once the look-up after
// the settle time finds nothing, the code stands and the job fails.
func TestPermanentCodeInA500FailsOnceTheLookUpFindsNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{Next: []sim.FaultKind{sim.FaultServerError}})
	r.startWorker(r.options())
	closed := taskstest.SupplierInvoice("INV-500")
	closed.PostingDate = time.Now().UTC().AddDate(0, -3, 0).Format("2006-01-02")
	job := r.submit(closed)
	done := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	if done.Error.Code != "F5/201" || done.Error.Category != tasks.CategoryPermanent || done.Phase != tasks.PhasePending || done.Attempts != 1 {
		t.Fatalf("%s; want F5/201 permanent after one call and a look-up", describeJob(done))
	}
}

// Recording a posted document failed on the last attempt (Redis away for a
// moment): asynq archived the task and the job read failed while SAP held
// the document. The record is retried with backoff instead.
func TestLastAttemptRetriesItsRecord(t *testing.T) {
	t.Parallel()
	rdb, db := redisSrv.NewDB(t)
	r := newRigOn(t, rdb, db, sim.Faults{Next: []sim.FaultKind{sim.FaultHold}})
	// The worker's own connection gives up quickly while Redis is paused.
	workerRedis := redis.NewClient(&redis.Options{Addr: redisSrv.Addr, DB: db, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { workerRedis.Close() })
	r.useLedger(ledger.Options{Redis: workerRedis, MaxRetry: 0}) // the first attempt is the last
	opts := r.options()
	opts.Redis = workerRedis
	r.startWorker(opts)
	job := r.submit(taskstest.JournalEntry("je-record"))
	r.eventually(settle, "the post held in SAP", func() (bool, string) { return r.sim.Held() == 1, describeJob(r.job(job.ID)) })
	// Redis refuses writes for a second while SAP answers.
	if err := rdb.Do(context.Background(), "CLIENT", "PAUSE", 1000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	r.sim.Release()
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if done.Result.Reconciled || r.documents(ref(job)) != 1 {
		t.Fatalf("%s; want the posted document recorded by the attempt that posted it", describeJob(done))
	}
	r.awaitGone(job.ID) // the task completed, not archived
}

// FIX 4 (worker/model): a job never sent is unverified, for SAP may hold a
// document under its reference from a job of the same key that the ledger
// forgot. A look-up that fails on the last attempt leaves it failed with
// the outcome unknown, never "failed, nothing posted"; it is cancelled only
// once a look-up finds nothing.
func TestUnreadableLookUpOnTheLastAttemptOfAJobNeverSent(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.useLedger(ledger.Options{MaxRetry: 0}) // the first attempt is the last
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // SAP cannot be reached
	unreachable, err := sap.New(sap.Config{BaseURL: gone.URL, User: simUser, Password: simPassword, Timeout: rigSAPTimeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	opts := r.options()
	if opts.SAP, err = sap.SingleDestination(tasks.DefaultDestination, unreachable); err != nil {
		t.Fatal(err)
	}
	r.startWorker(opts)
	job := r.submit(taskstest.JournalEntry("je-unverified"))
	done := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	if done.Attempts != 0 || done.Phase != tasks.PhaseSending || done.Error == nil || done.Error.Category != tasks.CategoryUnknown {
		t.Fatalf("%s; want failed, never sent, outcome unknown (SAP was not checked)", describeJob(done))
	}
	if _, err := r.ledger.Cancel(context.Background(), "tester", job.ID, nil); !errors.Is(err, ledger.ErrNotCancellable) {
		t.Fatalf("cancel without a look-up: %v", err)
	}
	got, err := r.ledger.Cancel(context.Background(), "tester", job.ID, r.sapSystems())
	if err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel once SAP answers that it holds nothing: %s %v", describeJob(got), err)
	}
}

// Redis loses the record of a call that is still in flight in SAP: the
// ledger says nothing was sent, and a look-up made now would miss the
// document SAP is about to commit. No call goes out until every call sent
// before the loss must have ended; then the look-up finds it. (SAP's
// duplicate invoice check is off here, as customizing allows, so that only
// sapq stands between the job and a second invoice.)
func TestRedisLossWhileACallIsInFlight(t *testing.T) {
	t.Parallel()
	srv := redistest.StartPersistent(t, redistest.PersistentOptions{AppendFsync: "always"})
	r := newRigOn(t, srv.Client(), 0, sim.Faults{Next: []sim.FaultKind{sim.FaultHold}})
	r.useSimOptions(sim.Options{NoDuplicateInvoiceCheck: true, Faults: sim.Faults{Next: []sim.FaultKind{sim.FaultHold}}})
	job := r.submit(taskstest.SupplierInvoice("INV-INFLIGHT"))
	srv.RewriteAOF()
	beforeTheCall := srv.Snapshot()
	r.startWorker(r.options())
	r.eventually(settle, "the post held in SAP", func() (bool, string) { return r.sim.Held() == 1, describeJob(r.job(job.ID)) })

	srv.RestartFrom(beforeTheCall) // the "sending" record is lost; the task is pending again
	// SAP commits the call a moment later, within the settle time.
	r.eventually(settle, "the job delivered again", func() (bool, string) {
		return r.job(job.ID).Status == tasks.StatusRunning, describeJob(r.job(job.ID))
	})
	r.sim.Release()
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if n := r.documents(ref(job)); n != 1 {
		t.Fatalf("%s; SAP holds %d documents, want 1", describeJob(done), n)
	}
}

// A key used again after its retention for other content is another
// posting: the look-up must not adopt the first document for it (the
// reference is derived from the content too).
func TestKeyUsedAgainForOtherContentIsANewPosting(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.useLedger(ledger.Options{Retention: time.Second})
	r.startWorker(r.options())
	first := r.submit(taskstest.JournalEntry("je-reused"))
	firstDone := r.awaitStatus(first.ID, tasks.StatusSucceeded, settle)
	r.eventually(settle, "the job's retention to end", func() (bool, string) {
		_, err := r.ledger.Get(context.Background(), "", first.ID)
		return errors.Is(err, ledger.ErrNotFound), describeJob(r.job(first.ID))
	})
	other := taskstest.JournalEntry("je-reused")
	other.Items[0].Amount, other.Items[1].Amount = "9999.00", "-9999.00"
	second := r.submit(other)
	done := r.awaitStatus(second.ID, tasks.StatusSucceeded, settle)
	if done.Result.Document == firstDone.Result.Document || done.Result.Reconciled || r.documents(ref(second)) != 1 {
		t.Fatalf("%s; want a new document for the new content, not %s adopted", describeJob(done), firstDone.Result.Document)
	}
}

// A duplicate answer (M8/108) on a call that followed only definite
// refusals is provably another document's: the job fails permanently and
// may be cancelled and corrected.
func TestDuplicateAfterDefiniteRefusalsIsPermanent(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	w := r.startWorker(r.options())
	ctx := context.Background()
	a, _, err := r.ledger.Submit(ctx, "caller-a", taskstest.SupplierInvoice("INV-LOCKED"))
	if err != nil {
		t.Fatal(err)
	}
	r.awaitStatus(a.ID, tasks.StatusSucceeded, settle)
	w.Shutdown()
	// Caller B's equal invoice meets a lock first, then SAP's duplicate check.
	r.sim.SetFaults(sim.Faults{Next: []sim.FaultKind{sim.FaultLock}})
	b, _, err := r.ledger.Submit(ctx, "caller-b", taskstest.SupplierInvoice("INV-LOCKED"))
	if err != nil {
		t.Fatal(err)
	}
	r.startWorker(r.options())
	done := r.awaitStatus(b.ID, tasks.StatusFailed, settle)
	if done.Attempts != 2 || done.Error.Code != "M8/108" || done.Error.Category != tasks.CategoryPermanent || done.Phase != tasks.PhasePending {
		t.Fatalf("%s; want a permanent M8/108 after the lock, nothing posted", describeJob(done))
	}
	if got, err := r.ledger.Cancel(ctx, "caller-b", b.ID, r.sapSystems()); err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
}
