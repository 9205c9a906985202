package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// The cases below are the protocol fixes worker/model/exactlyonce.pml
// found; each is named after the fix in the model.

// FIX 2: a delivery that claimed before a Redis loss records no failure
// after it. After a rollback its fence can match again, and a refusal it
// got before the loss would overwrite what another delivery sent since.
func TestNoFailureRecordedAcrossALoss(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("fix2"))
	sending := sendOnce(t, l, job.ID)
	rdb.HSet(ctx, ledger.MetaKey(job.ID), "run_id", "0000000000000000000000000000000000000000") // another Redis answers now
	err := l.RecordFailure(ctx, sending, tasks.StatusRetrying, tasks.PhasePending, tasks.JobError{Code: "MC/601", Category: tasks.CategoryTransient})
	if !errors.Is(err, ledger.ErrLossSinceClaim) {
		t.Fatalf("a failure recorded across a loss: %v", err)
	}
	if got, _ := l.Get(ctx, "", job.ID); got.Phase != tasks.PhaseSending || got.Error != nil {
		t.Fatalf("the job after the refused record: %+v", got)
	}
	// A document is recorded whatever happened: SAP holds it.
	if err := l.RecordPosted(ctx, sending, tasks.Result{Document: "100000001"}); err != nil {
		t.Fatalf("a document recorded across a loss: %v", err)
	}
}

// FIX 3: a reprocess (or an approval) learns nothing of what SAP holds: a
// "failed, nothing posted" written before a loss stays suspect after it,
// cannot be cancelled, and reads as an unknown outcome.
func TestReprocessDoesNotLaunderAStateWrittenBeforeALoss(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("fix3"))
	failJob(t, l, job.ID, tasks.PhasePending, "F5/201", "Posting period 011 2026 is not open")
	rdb.HSet(ctx, ledger.MetaKey(job.ID), "run_id", "0000000000000000000000000000000000000000")
	l.Claim(ctx, job.ID, 0) // a stale delivery notices the loss
	got, _ := l.Get(ctx, "alice", job.ID)
	if got.Error == nil || got.Error.Category != tasks.CategoryUnknown || !strings.Contains(got.Error.Message, "Redis lost writes") {
		t.Fatalf("a failure written before a loss reads %+v", got.Error)
	}
	if _, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) {
		t.Fatalf("cancel of a suspect failed job: %v", err)
	}
	if _, err := l.Reprocess(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "Redis lost writes") {
		t.Fatalf("cancel after a reprocess of a suspect job: %v; want it still suspect", err)
	}
	claimed, err := l.Claim(ctx, job.ID, 1)
	if err != nil || !claimed.Suspect {
		t.Fatalf("claim after the reprocess: suspect=%v %v", claimed.Suspect, err)
	}
}

// FIX 7: failed is final for deliveries all the way: a delivery that
// claimed before another one failed the job does not revive it.
func TestAFailedJobIsNotRevivedByAnEarlierDelivery(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("fix7"))
	first, err := l.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Claim(ctx, job.ID, 0) // a duplicate delivery (lease expiry)
	if err != nil {
		t.Fatal(err)
	}
	lookUpFailed := tasks.JobError{Code: "sap_unreadable", Message: "look-up failed on the last attempt", Category: tasks.CategoryTransient}
	if err := l.RecordFailure(ctx, first.Job, tasks.StatusFailed, tasks.PhasePending, lookUpFailed); err != nil {
		t.Fatal(err)
	}
	// The same record again (go-redis resends after a lost reply) answers ok.
	if err := l.RecordFailure(ctx, first.Job, tasks.StatusFailed, tasks.PhasePending, lookUpFailed); err != nil {
		t.Fatalf("the failure recorded a second time: %v", err)
	}
	err = l.RecordFailure(ctx, second.Job, tasks.StatusRetrying, tasks.PhasePending, tasks.JobError{Code: "MC/601", Category: tasks.CategoryTransient})
	if !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("an earlier delivery's record over a failed job: %v", err)
	}
	if got, _ := l.Get(ctx, "", job.ID); got.Status != tasks.StatusFailed {
		t.Fatalf("the failed job was revived: %+v", got)
	}
}
