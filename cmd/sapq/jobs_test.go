package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

func TestJobsListAndReprocess(t *testing.T) {
	rdb, db := redisSrv.NewDB(t)
	url := fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrustRedis(ctx); err != nil {
		t.Fatal(err)
	}
	closed, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("je-closed"))
	other, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("je-other"))
	l.Submit(ctx, "bob", taskstest.SupplierInvoice("INV-QUEUED"))
	for _, f := range []struct {
		job  tasks.Job
		code string
	}{{closed, "F5/201"}, {other, "F5/507"}} {
		claimed, _ := l.Claim(ctx, f.job.ID, 0)
		sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
		if err != nil {
			t.Fatal(err)
		}
		l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: f.code, Message: "rejected", Category: tasks.CategoryPermanent})
		l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(f.job.ID))
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runJobs(ctx, append(args, "--redis-url", url), &out); err != nil {
			t.Fatalf("sapq jobs %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}

	list := run("list", "--status", "failed")
	if !strings.Contains(list, closed.ID) || !strings.Contains(list, "F5/201") || !strings.Contains(list, other.ID) || strings.Contains(list, "INV-QUEUED") {
		t.Fatalf("list --status failed:\n%s", list)
	}
	dry := run("reprocess", "--code", "F5/201", "--dry-run")
	if !strings.Contains(dry, "would reprocess "+closed.ID) || strings.Contains(dry, other.ID) {
		t.Fatalf("dry run:\n%s", dry)
	}
	if j, _ := l.Get(ctx, "", closed.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("dry run changed the job to %s", j.Status)
	}
	run("reprocess", "--code", "F5/201")
	if j, _ := l.Get(ctx, "", closed.ID); j.Status != tasks.StatusQueued {
		t.Fatalf("reprocessed job is %s, want queued", j.Status)
	}
	if j, _ := l.Get(ctx, "", other.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("job with another code is %s, want still failed", j.Status)
	}
	var out bytes.Buffer
	if err := runJobs(ctx, []string{"reprocess", "--redis-url", url}, &out); err == nil {
		t.Fatal("reprocess without a selection must refuse")
	}
}
