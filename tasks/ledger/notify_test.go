package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// Wait returns as soon as the job's status changes, told by the script
// that changed it: with rereads turned off, only the notification can wake
// it before its deadline.
func TestWaitReturnsWhenTheStatusChanges(t *testing.T) {
	ledger.NoWaitRecheck(t)
	l, _ := newLedger(t)
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("wait-1"))

	type result struct {
		job tasks.Job
		err error
	}
	waited := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		j, err := l.Wait(ctx, "alice", job.ID, 20*time.Second)
		waited <- result{j, err}
	}()
	<-started
	// Until the claim, Wait has nothing to return.
	select {
	case r := <-waited:
		t.Fatalf("Wait returned before the job changed: %+v", r.job)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := l.Claim(ctx, job.ID, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-waited:
		if r.err != nil || r.job.Status != tasks.StatusRunning {
			t.Fatalf("Wait = %+v, %v", r.job.Status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the job changed")
	}

	// A final job is returned at once; another caller's job is not found.
	sending := sendOnce(t, l, job.ID)
	l.RecordPosted(ctx, sending, tasks.Result{Document: "100000001"})
	if j, err := l.Wait(ctx, "alice", job.ID, time.Minute); err != nil || j.Status != tasks.StatusSucceeded {
		t.Fatalf("Wait on a final job = %+v, %v", j.Status, err)
	}
	if _, err := l.Wait(ctx, "mallory", job.ID, time.Second); err == nil {
		t.Fatal("Wait returned another caller's job")
	}
	// Nothing changes: Wait returns the job as it is when its time is up.
	other, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("wait-2"))
	if j, err := l.Wait(ctx, "alice", other.ID, 100*time.Millisecond); err != nil || j.Status != tasks.StatusQueued {
		t.Fatalf("Wait without a change = %+v, %v", j.Status, err)
	}
}
