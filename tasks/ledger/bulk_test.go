package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// failJob records a job's attempt as failed with code, as a worker does,
// and archives its task as asynq would.
func failJob(t *testing.T, l *ledger.Ledger, id string, phase tasks.Phase, code, msg string) {
	t.Helper()
	ctx := context.Background()
	job := sendOnce(t, l, id)
	if err := l.RecordFailure(ctx, job, tasks.StatusFailed, phase, tasks.JobError{Code: code, Message: msg, Category: tasks.CategoryPermanent}); err != nil {
		t.Fatal(err)
	}
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(id)); err != nil {
		t.Fatal(err)
	}
}

func TestFailureGroupsAndBulkReprocess(t *testing.T) {
	rdb, _ := redisSrv.NewDB(t)
	now := time.Now()
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	ctx := context.Background()
	const period = "Posting period 011 2026 is not open"
	var closed []string
	for i := range 25 {
		p := taskstest.JournalEntry(fmt.Sprintf("closed-%02d", i))
		if i%5 == 0 {
			p.CompanyCode = "1710"
		}
		job, _, err := l.Submit(ctx, "alice", p)
		now = now.Add(time.Millisecond) // the sample is the oldest failure
		if err != nil {
			t.Fatal(err)
		}
		failJob(t, l, job.ID, tasks.PhasePending, "F5/201", period)
		closed = append(closed, job.ID)
	}
	for i := range 3 {
		job, _, _ := l.Submit(ctx, "bob", taskstest.SupplierInvoice(fmt.Sprintf("acct-%d", i)))
		failJob(t, l, job.ID, tasks.PhasePending, "F5/507", "Account 61003000 is not defined")
	}
	live, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("live"))

	groups, err := l.FailureGroups(ctx, ledger.Filter{})
	if err != nil || len(groups) != 2 {
		t.Fatalf("FailureGroups = %+v, %v", groups, err)
	}
	g := groups[0]
	if g.Code != "F5/201" || g.Message != period || g.Count != 25 || fmt.Sprint(g.CompanyCodes) != "[1010 1710]" ||
		fmt.Sprint(g.Kinds) != "[journal_entry]" || g.Sample.ID != closed[0] || g.Oldest.IsZero() {
		t.Fatalf("the F5/201 group = %+v", g)
	}
	if groups[1].Code != "F5/507" || groups[1].Count != 3 {
		t.Fatalf("the F5/507 group = %+v", groups[1])
	}
	if only, _ := l.FailureGroups(ctx, ledger.Filter{CompanyCode: "1710"}); len(only) != 1 || only[0].Count != 5 {
		t.Fatalf("groups in company code 1710 = %+v", only)
	}

	// Interrupted after the first chunk: what was done stays done.
	cctx, cancel := context.WithCancel(ctx)
	var reports []ledger.BulkProgress
	res, err := l.Bulk(cctx, ledger.BulkReprocess, ledger.Filter{Code: "F5/201"}, ledger.BulkOptions{Chunk: 10, Progress: func(p ledger.BulkProgress) {
		reports = append(reports, p)
		cancel()
	}})
	if err != nil || !res.Interrupted || res.Selected != 25 || res.Done != 10 || len(reports) != 2 {
		t.Fatalf("interrupted bulk reprocess = %+v (reports %+v), %v", res, reports, err)
	}
	// One of them fails again before the operator resumes: resuming with
	// the first run's start does not pick it up again.
	failJob2 := func(id string) {
		claimed, err := l.Claim(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
		if err != nil {
			t.Fatal(err)
		}
		l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201", Message: period, Category: tasks.CategoryPermanent})
	}
	now = now.Add(time.Second)
	failJob2(closed[0])
	again, err := l.Bulk(ctx, ledger.BulkReprocess, ledger.Filter{Code: "F5/201", FailedBefore: res.Started}, ledger.BulkOptions{Chunk: 10})
	if err != nil || again.Interrupted || again.Selected != 15 || again.Done != 15 || len(again.Skipped) != 0 {
		t.Fatalf("resumed bulk reprocess = %+v, %v", again, err)
	}
	for i, id := range closed {
		j, _ := l.Get(ctx, "", id)
		want := tasks.StatusQueued
		if i == 0 {
			want = tasks.StatusFailed
		}
		if j.Status != want || j.Run != 1 {
			t.Errorf("job %d after the bulk reprocess: %s run %d, want %s run 1", i, j.Status, j.Run, want)
		}
	}
	if j, _ := l.Get(ctx, "", live.ID); j.Status != tasks.StatusQueued || j.Run != 0 {
		t.Fatalf("a live job was touched: %+v", j)
	}
}

func TestBulkDiscardLeavesWhatSAPMayHold(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	nothing, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("discard-1"))
	failJob(t, l, nothing.ID, tasks.PhasePending, "F5/507", "Account 61003000 is not defined")
	unknown, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("discard-2"))
	failJob(t, l, unknown.ID, tasks.PhaseSending, "F5/507", "Account 61003000 is not defined")

	res, err := l.Bulk(ctx, ledger.BulkDiscard, ledger.Filter{Code: "F5/507"}, ledger.BulkOptions{})
	if err != nil || res.Selected != 2 || res.Done != 1 || len(res.Skipped) != 1 || res.Skipped[0].ID != unknown.ID {
		t.Fatalf("bulk discard = %+v, %v", res, err)
	}
	if j, _ := l.Get(ctx, "", nothing.ID); j.Status != tasks.StatusCancelled {
		t.Fatalf("discarded job is %s", j.Status)
	}
	if j, _ := l.Get(ctx, "", unknown.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("a job SAP may hold was discarded: %s", j.Status)
	}
	if groups, _ := l.FailureGroups(ctx, ledger.Filter{}); len(groups) != 1 || groups[0].Count != 1 {
		t.Fatalf("groups after the discard = %+v", groups)
	}
}
