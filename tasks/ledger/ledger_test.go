package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) { redistest.Main(m, &redisSrv) }

func newLedger(t *testing.T) (*ledger.Ledger, redis.UniversalClient) {
	t.Helper()
	rdb, _ := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	return l, rdb
}

// testSettle is the ledger's settle time in these tests.
const testSettle = 200 * time.Millisecond

// sendOnce claims a job and begins sending it, as a worker does.
func sendOnce(t *testing.T, l *ledger.Ledger, id string) tasks.Job {
	t.Helper()
	claimed, err := l.Claim(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	job, err := l.BeginSend(context.Background(), claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func TestSubmitRecordsAndEnqueues(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, replayed, err := l.Submit(ctx, "alice", taskstest.SupplierInvoice("inv-1"))
	if err != nil || replayed {
		t.Fatalf("Submit = %v, replayed %v", err, replayed)
	}
	if job.Status != tasks.StatusQueued || job.Phase != tasks.PhasePending || job.Kind != tasks.KindSupplierInvoice {
		t.Fatalf("new job = %+v", job)
	}
	info, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID))
	if err != nil {
		t.Fatalf("task not enqueued: %v", err)
	}
	if info.State != asynq.TaskStatePending || info.Type != "posting:supplier_invoice" {
		t.Fatalf("task = %+v", info)
	}
	p, err := ledger.ParseTaskPayload(info.Payload)
	if err != nil || p.JobID != job.ID || p.Caller != "alice" {
		t.Fatalf("payload = %+v, %v", p, err)
	}
}

// Job IDs submitted together share their first characters; the part of a
// task ID the Asynq UI lists (before the first "-") is the job ID's last
// group, which tells them apart and is the end of the job ID an operator
// sees everywhere else. Each job's task is still found under its one ID.
func TestTaskIDsTellJobsApart(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	listed := map[string]string{}
	for i := range 20 {
		job, _, err := l.Submit(ctx, "alice", taskstest.SupplierInvoice(fmt.Sprintf("inv-ids-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		id := ledger.TaskID(job.ID)
		shown, _, _ := strings.Cut(id, "-")
		if !strings.HasSuffix(job.ID, "-"+shown) || !strings.HasSuffix(id, job.ID) {
			t.Fatalf("task ID %q of job %s: want the job's last group, then the job ID", id, job.ID)
		}
		if other, dup := listed[shown]; dup {
			t.Fatalf("jobs %s and %s would be listed as %s", other, job.ID, shown)
		}
		listed[shown] = job.ID
		if _, err := l.Inspector().GetTaskInfo(l.Queue(), id); err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		if again, _, err := l.Submit(ctx, "alice", taskstest.SupplierInvoice(fmt.Sprintf("inv-ids-%d", i))); err != nil || again.ID != job.ID {
			t.Fatalf("replay = %s, %v", again.ID, err)
		}
	}
	pending, err := l.Inspector().ListPendingTasks(l.Queue(), asynq.PageSize(100))
	if err != nil || len(pending) != 20 {
		t.Fatalf("pending tasks = %d, %v: want one per job, replays included", len(pending), err)
	}
}

func TestReplayAndConflict(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	first, _, err := l.Submit(ctx, "alice", taskstest.JournalEntry("je-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, replayed, err := l.Submit(ctx, "alice", taskstest.JournalEntry("je-1"))
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("replay = %s replayed=%v err=%v, want %s", again.ID, replayed, err, first.ID)
	}
	changed := taskstest.JournalEntry("je-1")
	changed.HeaderText = "Something else"
	_, _, err = l.Submit(ctx, "alice", changed)
	var conflict *ledger.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, ledger.ErrConflict) || conflict.JobID != first.ID {
		t.Fatalf("changed payload: err = %v, want conflict on %s", err, first.ID)
	}
	// The same key belongs to each caller separately.
	bobs, replayed, err := l.Submit(ctx, "bob", taskstest.JournalEntry("je-1"))
	if err != nil || replayed || bobs.ID == first.ID {
		t.Fatalf("bob's submission = %s replayed=%v err=%v", bobs.ID, replayed, err)
	}
	// Replays work in any state, including after success.
	if err := l.RecordPosted(ctx, first, tasks.Result{Document: "0100000001", FiscalYear: "2026", CompanyCode: "1010"}); err != nil {
		t.Fatal(err)
	}
	done, replayed, err := l.Submit(ctx, "alice", taskstest.JournalEntry("je-1"))
	if err != nil || !replayed || done.Status != tasks.StatusSucceeded || done.Result.Document != "0100000001" {
		t.Fatalf("replay after success = %+v replayed=%v err=%v", done, replayed, err)
	}
}

func TestConcurrentIdenticalSubmissionsCreateOneJob(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	const n = 50
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			job, _, err := l.Submit(ctx, "alice", taskstest.SupplierInvoice("same-key"))
			ids[i], errs[i] = job.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("submission %d: id %s err %v, want id %s", i, ids[i], errs[i], ids[0])
		}
	}
	page, err := l.List(ctx, "alice", ledger.ListFilter{})
	if err != nil || len(page.Jobs) != 1 {
		t.Fatalf("List = %d jobs, %v; want 1", len(page.Jobs), err)
	}
	q, err := l.Inspector().GetQueueInfo(l.Queue())
	if err != nil || q.Size != 1 {
		t.Fatalf("queue size = %+v, %v; want 1", q, err)
	}
}

func TestRetentionAppliesOnlyOnceTerminal(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("je-ttl"))
	if ttl := rdb.TTL(ctx, ledger.JobKey(job.ID)).Val(); ttl != -1 {
		t.Fatalf("live job has TTL %v; it must not expire while in flight", ttl)
	}
	if err := l.RecordFailure(ctx, job, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201", Message: "closed", Category: tasks.CategoryPermanent}); err != nil {
		t.Fatal(err)
	}
	if failed, _ := l.Get(ctx, "alice", job.ID); failed.Result != nil || failed.Error == nil || failed.Error.Code != "F5/201" {
		t.Fatalf("failed job = result %+v, error %+v; want no result and the error", failed.Result, failed.Error)
	}
	ttl := rdb.TTL(ctx, ledger.JobKey(job.ID)).Val()
	if ttl < ledger.DefaultFailedRetention-time.Minute || ttl > ledger.DefaultFailedRetention {
		t.Fatalf("failed job TTL = %v, want about %v", ttl, ledger.DefaultFailedRetention)
	}
	// Reprocessing makes it persistent while in flight.
	if _, err := l.Reprocess(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ledger.JobKey(job.ID), ledger.IdemKey("alice", "je-ttl")} {
		if ttl := rdb.TTL(ctx, key).Val(); ttl != -1 {
			t.Fatalf("reprocessed job: %s has TTL %v, want none", key, ttl)
		}
	}
	if err := l.RecordPosted(ctx, job, tasks.Result{Document: "1"}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, ledger.JobKey(job.ID)).Val(); ttl < ledger.DefaultRetention-time.Minute || ttl > ledger.DefaultRetention {
		t.Fatalf("succeeded job TTL = %v, want about %v", ttl, ledger.DefaultRetention)
	}
}

func TestProtocolTransitions(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("proto"))

	before, err := l.Claim(ctx, job.ID, 0)
	if err != nil || before.Phase != tasks.PhasePending {
		t.Fatalf("Claim = %+v, %v", before, err)
	}
	// A second delivery claims at the same time.
	other, err := l.Claim(ctx, job.ID, 0)
	if err != nil || other.Attempts != 0 {
		t.Fatalf("second Claim = %+v, %v", other, err)
	}
	sending, err := l.BeginSend(ctx, before.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
	if err != nil || sending.Attempts != 1 || sending.Phase != tasks.PhaseSending || sending.Generation != 0 ||
		sending.Destination != tasks.DefaultDestination || sending.Reference != "SQTESTREFERENCE1" {
		t.Fatalf("BeginSend = %+v, %v", sending, err)
	}
	// The second delivery may not send too, nor record an outcome over the
	// first one's call in flight.
	if _, err := l.BeginSend(ctx, other.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.Is(err, ledger.ErrConcurrentAttempt) {
		t.Fatalf("concurrent BeginSend: %v, want ErrConcurrentAttempt", err)
	}
	if err := l.RecordFailure(ctx, other.Job, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Message: "gave up"}); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("stale RecordFailure: %v, want ErrStale", err)
	}
	if _, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) {
		t.Fatalf("cancel while sending: %v, want ErrNotCancellable", err)
	}
	// An unknown outcome keeps the job in PhaseSending for the next attempt.
	if err := l.RecordFailure(ctx, sending, tasks.StatusRetrying, tasks.PhaseSending, tasks.JobError{Message: "504", Category: tasks.CategoryUnknown}); err != nil {
		t.Fatal(err)
	}
	again, err := l.Claim(ctx, job.ID, 0)
	if err != nil || again.Phase != tasks.PhaseSending || again.Attempts != 1 || again.Reference != "SQTESTREFERENCE1" {
		t.Fatalf("second Claim = %+v, %v; want phase sending after 1 attempt", again, err)
	}
	if err := l.RecordPosted(ctx, job, tasks.Result{Document: "5105600001", FiscalYear: "2026", CompanyCode: "1010", Reconciled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrPosted) {
		t.Fatalf("Claim after posting: %v, want ErrPosted", err)
	}
	if _, err := l.BeginSend(ctx, again.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.Is(err, ledger.ErrPosted) {
		t.Fatalf("BeginSend after posting: %v, want ErrPosted", err)
	}
	// A late failure report cannot overwrite a recorded document.
	if err := l.RecordFailure(ctx, again.Job, tasks.StatusRetrying, tasks.PhaseSending, tasks.JobError{Message: "late"}); !errors.Is(err, ledger.ErrPosted) {
		t.Fatalf("late failure: %v, want ErrPosted", err)
	}
	got, err := l.Get(ctx, "alice", job.ID)
	if err != nil || got.Status != tasks.StatusSucceeded || got.Result == nil || got.Result.Document != "5105600001" || got.Error != nil {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestCancel(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("to-cancel"))
	if _, err := l.Cancel(ctx, "bob", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("bob cancels alice's job: %v, want ErrNotFound", err)
	}
	got, err := l.Cancel(ctx, "alice", job.ID, simSAP(t))
	if err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("Cancel = %+v, %v", got, err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("cancelled job's task still queued: %v", err)
	}
	claimed, err := l.Claim(ctx, job.ID, 0)
	if !errors.Is(err, ledger.ErrCancelled) {
		t.Fatalf("Claim of cancelled job: %v", err)
	}
	if _, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.Is(err, ledger.ErrCancelled) {
		t.Fatalf("BeginSend of cancelled job: %v", err)
	}
	// Cancelling again answers with the cancelled job, as the first call did.
	if again, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); err != nil || again.Status != tasks.StatusCancelled {
		t.Fatalf("second cancel: %+v, %v", again, err)
	}
}

// A job that SAP rejected holds no document: the agent may withdraw it
// before submitting a corrected one, and it is then never reprocessed.
func TestCancelFailedJob(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	rejected, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("rejected"))
	rejected = sendOnce(t, l, rejected.ID)
	l.RecordFailure(ctx, rejected, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/507", Category: tasks.CategoryPermanent})
	if got, err := l.Cancel(ctx, "alice", rejected.ID, simSAP(t)); err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel a rejected job: %+v, %v", got, err)
	}
	if _, err := l.Reprocess(ctx, rejected.ID); !errors.Is(err, ledger.ErrNotFailed) {
		t.Fatalf("reprocess a cancelled job: %v, want ErrNotFailed", err)
	}

	unknown, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("unknown"))
	unknown = sendOnce(t, l, unknown.ID)
	l.RecordFailure(ctx, unknown, tasks.StatusFailed, tasks.PhaseSending, tasks.JobError{Category: tasks.CategoryUnknown})
	if _, err := l.Cancel(ctx, "alice", unknown.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) {
		t.Fatalf("cancel a job that SAP may hold: %v, want ErrNotCancellable", err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		var p tasks.Posting = taskstest.SupplierInvoice(fmt.Sprintf("inv-%d", i))
		if i%2 == 1 {
			p = taskstest.JournalEntry(fmt.Sprintf("je-%d", i))
		}
		job, _, err := l.Submit(ctx, "alice", p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, job.ID)
	}
	l.Submit(ctx, "bob", taskstest.SupplierInvoice("bob-1"))

	var seen []string
	cursor := ""
	for {
		page, err := l.List(ctx, "alice", ledger.ListFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			seen = append(seen, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d jobs, want 7", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("page order: got %v, want newest first %v", seen, ids)
		}
	}
	page, err := l.List(ctx, "alice", ledger.ListFilter{Kind: tasks.KindJournalEntry})
	if err != nil || len(page.Jobs) != 3 {
		t.Fatalf("journal entries: %d, %v; want 3", len(page.Jobs), err)
	}
	l.Cancel(ctx, "alice", ids[0], simSAP(t))
	page, _ = l.List(ctx, "alice", ledger.ListFilter{Status: tasks.StatusCancelled})
	if len(page.Jobs) != 1 || page.Jobs[0].ID != ids[0] {
		t.Fatalf("cancelled filter = %+v", page.Jobs)
	}
	all, _ := l.List(ctx, "", ledger.ListFilter{Limit: 100})
	if len(all.Jobs) != 8 {
		t.Fatalf("operator list = %d jobs, want 8", len(all.Jobs))
	}
}

// A submitter that dies between recording and enqueueing loses nothing: the
// sweeper (or a replay) enqueues the recorded job.
func TestSweeperEnqueuesRecordedJobs(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("crash"))
	// Simulate the crash: the task never reached asynq.
	if err := l.Inspector().DeleteTask(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, ledger.UnenqueuedKey(job.ID), redis.Z{Score: float64(time.Now().Add(-time.Hour).UnixMilli()), Member: job.ID})

	st, err := ledger.NewSweeper(l, time.Second, time.Minute).Sweep(ctx)
	if err != nil || st.Enqueued != 1 {
		t.Fatalf("Sweep = %+v, %v; want 1 enqueued", st, err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatalf("swept job not enqueued: %v", err)
	}
	if st, _ := ledger.NewSweeper(l, time.Second, time.Minute).Sweep(ctx); st.Enqueued != 0 {
		t.Fatalf("second sweep enqueued %d again", st.Enqueued)
	}
}

func TestReplayEnqueuesUnenqueuedJob(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("crash-2"))
	l.Inspector().DeleteTask(l.Queue(), ledger.TaskID(job.ID))
	rdb.ZAdd(ctx, ledger.UnenqueuedKey(job.ID), redis.Z{Score: float64(time.Now().UnixMilli()), Member: job.ID})

	if _, replayed, err := l.Submit(ctx, "alice", taskstest.SupplierInvoice("crash-2")); err != nil || !replayed {
		t.Fatalf("replay: %v %v", replayed, err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatalf("replay did not enqueue the recorded job: %v", err)
	}
}

func TestSubmitRejectsInvalidAndChangesNothing(t *testing.T) {
	l, rdb := newLedger(t)
	before := rdb.DBSize(context.Background()).Val()
	bad := taskstest.JournalEntry("bad")
	bad.Items[0].Amount = "250.001"
	_, _, err := l.Submit(context.Background(), "alice", bad)
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want validation error", err)
	}
	if n := rdb.DBSize(context.Background()).Val(); n != before {
		t.Fatalf("invalid submission wrote %d keys", n-before)
	}
}

func TestReprocessFailedJob(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("re-1"))
	if _, err := l.Reprocess(ctx, job.ID); !errors.Is(err, ledger.ErrNotFailed) {
		t.Fatalf("reprocess of a queued job: %v, want ErrNotFailed", err)
	}
	job = sendOnce(t, l, job.ID)
	l.RecordFailure(ctx, job, tasks.StatusFailed, tasks.PhaseSending, tasks.JobError{Message: "504", Category: tasks.CategoryUnknown})
	// asynq has the task archived by now; simulate that.
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatal(err)
	}
	got, err := l.Reprocess(ctx, job.ID)
	if err != nil || got.Status != tasks.StatusQueued || got.Phase != tasks.PhaseSending {
		t.Fatalf("Reprocess = %+v, %v; want queued and still sending (to be reconciled)", got, err)
	}
	info, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID))
	if err != nil || info.State != asynq.TaskStatePending || info.Retried != 0 {
		t.Fatalf("reprocessed task = %+v, %v; want pending with a fresh retry count", info, err)
	}
}

// A worker that dies on the last attempt leaves the ledger saying running
// while asynq archives the task (or an operator deletes it by hand). The job
// must show as failed and be reprocessable, still to be reconciled.
func TestStrandedJobShowsFailedAndCanBeReprocessed(t *testing.T) {
	for _, how := range []string{"archived", "deleted"} {
		t.Run(how, func(t *testing.T) {
			l, _ := newLedger(t)
			ctx := context.Background()
			job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("stranded"))
			sendOnce(t, l, job.ID)
			var err error
			if how == "archived" {
				err = l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID))
			} else {
				err = l.Inspector().DeleteTask(l.Queue(), ledger.TaskID(job.ID))
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Get(ctx, "alice", job.ID)
			if err != nil || got.Status != tasks.StatusFailed || got.Error == nil || got.Error.Category != tasks.CategoryUnknown {
				t.Fatalf("stranded job = %+v (%v), want failed with an unknown outcome", got, err)
			}
			if _, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) {
				t.Fatalf("cancel of a job SAP may hold: %v", err)
			}
			re, err := l.Reprocess(ctx, job.ID)
			if err != nil || re.Status != tasks.StatusQueued || re.Phase != tasks.PhaseSending {
				t.Fatalf("Reprocess = %+v, %v; want queued, still to be reconciled", re, err)
			}
			if info, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("task after reprocess = %+v, %v", info, err)
			}
		})
	}
}

// A reader that loads a job just before its handler records a permanent
// failure, and reads the task just after asynq archived it, must report the
// recorded failure, not a stranded job.
func TestReaderRacingAFinishingHandlerSeesTheRecord(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("racing"))
	sending := sendOnce(t, l, job.ID)
	stale, err := l.Get(ctx, "alice", job.ID) // the reader's first read
	if err != nil || stale.Status != tasks.StatusRunning {
		t.Fatalf("before the record: %+v, %v", stale, err)
	}
	rejected := tasks.JobError{Code: "F5/201", Message: "Posting period 008 2026 is not open", Category: tasks.CategoryPermanent}
	if err := l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, rejected); err != nil {
		t.Fatal(err)
	}
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatal(err)
	}
	got := ledger.OverlayQueueState(l, ctx, stale)
	if got.Status != tasks.StatusFailed || got.Error == nil || *got.Error != rejected {
		t.Fatalf("reader saw %s (error %+v), want failed with the recorded %+v", got.Status, got.Error, rejected)
	}
}

// Reprocess records a job as queued, marked for enqueueing, a moment before
// it replaces the archived task. A reader in that moment sees a queued job,
// not a stranded one.
func TestJobBeingReprocessedIsNotStranded(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("reprocessing"))
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID)); err != nil { // the old task
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, ledger.UnenqueuedKey(job.ID), redis.Z{Score: float64(time.Now().UnixMilli()), Member: job.ID})
	if got, err := l.Get(ctx, "alice", job.ID); err != nil || got.Status != tasks.StatusQueued || got.Error != nil {
		t.Fatalf("job being reprocessed = %s %+v (%v), want queued", got.Status, got.Error, err)
	}
}

// A live job whose task is merely waiting is not reprocessable.
func TestReprocessRefusesLiveJobs(t *testing.T) {
	l, _ := newLedger(t)
	job, _, _ := l.Submit(context.Background(), "alice", taskstest.JournalEntry("live"))
	if _, err := l.Reprocess(context.Background(), job.ID); !errors.Is(err, ledger.ErrNotFailed) {
		t.Fatalf("reprocess of a pending job: %v, want ErrNotFailed", err)
	}
}

// One broken entry does not hold up the sweep of the others.
func TestSweepGoesPastABrokenEntry(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	broken, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("broken"))
	fine, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("fine"))
	for _, id := range []string{broken.ID, fine.ID} {
		l.Inspector().DeleteTask(l.Queue(), ledger.TaskID(id))
		rdb.ZAdd(ctx, ledger.UnenqueuedKey(id), redis.Z{Score: float64(time.Now().Add(-time.Hour).UnixMilli()), Member: id})
	}
	rdb.HSet(ctx, ledger.JobKey(broken.ID), "result", "{not json")

	st, err := ledger.NewSweeper(l, time.Second, time.Minute).Sweep(ctx)
	if st.Enqueued != 1 || err == nil {
		t.Fatalf("Sweep = %+v, %v; want the good entry enqueued and the broken one reported", st, err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(fine.ID)); err != nil {
		t.Fatalf("the good entry was not enqueued: %v", err)
	}
}

// A filter that matches nothing among more jobs than one call reads still
// hands back a cursor, so the caller can go on looking.
func TestListScanBudgetLeavesACursor(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	match, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("the-one"))
	for i := range 2100 {
		if _, _, err := l.Submit(ctx, "alice", taskstest.JournalEntry(fmt.Sprintf("je-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var found []string
	cursor, calls := "", 0
	for {
		page, err := l.List(ctx, "alice", ledger.ListFilter{Kind: tasks.KindSupplierInvoice, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, j := range page.Jobs {
			found = append(found, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(found) != 1 || found[0] != match.ID || calls < 2 {
		t.Fatalf("found %v in %d calls; want the one invoice, behind a budget-exhausted empty page", found, calls)
	}
}
