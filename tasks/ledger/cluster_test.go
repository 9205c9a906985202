package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// The ledger runs on a Redis Cluster of three masters: every script stays
// in one slot (a cross-slot script fails with CROSSSLOT there), the indexes
// are spread over the masters, and the loss check reads each master's own
// run_id.
func TestLedgerOnRedisCluster(t *testing.T) {
	cluster := redistest.SharedCluster(t, redistest.ClusterOptions{Replicas: 1})
	rdb := cluster.Client()
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ledger.CheckRedis(ctx, rdb, true, testLog(t)); err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)

	var jobs []tasks.Job
	for i := range 40 {
		job, replayed, err := l.Submit(ctx, fmt.Sprintf("caller-%d", i%3), taskstest.JournalEntry(fmt.Sprintf("cluster-%d", i)))
		if err != nil || replayed {
			t.Fatalf("submit %d: %v (replayed %v)", i, err, replayed)
		}
		jobs = append(jobs, job)
	}
	if again, replayed, err := l.Submit(ctx, "caller-0", taskstest.JournalEntry("cluster-0")); err != nil || !replayed || again.ID != jobs[0].ID {
		t.Fatalf("replay: %s %v %v", again.ID, replayed, err)
	}
	// The jobs' shards are spread over all three masters.
	masters := map[string]bool{}
	for _, job := range jobs {
		addr, err := masterOf(ctx, rdb, ledger.JobKey(job.ID))
		if err != nil {
			t.Fatal(err)
		}
		masters[addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("the jobs live on %d masters, want 3", len(masters))
	}
	for i, job := range jobs {
		sending := sendOnce(t, l, job.ID)
		switch i % 3 {
		case 0:
			err = l.RecordPosted(ctx, sending, tasks.Result{Document: fmt.Sprintf("1%09d", i)})
		case 1:
			err = l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201", Category: tasks.CategoryPermanent})
		default:
			err = l.RecordFailure(ctx, sending, tasks.StatusRetrying, tasks.PhaseSending, tasks.JobError{Category: tasks.CategoryUnknown})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	page, err := l.List(ctx, "", ledger.ListFilter{Limit: 100})
	if err != nil || len(page.Jobs) != 40 {
		t.Fatalf("list over the cluster: %d jobs, %v", len(page.Jobs), err)
	}
	for i := 1; i < len(page.Jobs); i++ {
		if page.Jobs[i-1].ID <= page.Jobs[i].ID {
			t.Fatal("list is not newest first")
		}
	}
	mine, err := l.List(ctx, "caller-1", ledger.ListFilter{Status: tasks.StatusFailed, Limit: 100})
	if err != nil || len(mine.Jobs) == 0 {
		t.Fatalf("caller's failed jobs: %d, %v", len(mine.Jobs), err)
	}
	for _, j := range mine.Jobs {
		if j.Caller != "caller-1" || j.Status != tasks.StatusFailed {
			t.Fatalf("filter leaked %s %s", j.Caller, j.Status)
		}
	}
	failed := jobs[1]
	if got, err := l.Cancel(ctx, failed.Caller, failed.ID, simSAP(t)); err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	retried := jobs[5]
	if _, err := l.Claim(ctx, retried.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.NewSweeper(l, time.Second, time.Minute).Sweep(ctx); err != nil {
		t.Fatalf("sweep over the cluster: %v", err)
	}

	// A master fails over to its replica: the shards it serves see another
	// run_id and open a loss window; the others do not.
	moved := jobs[2]
	master, err := masterOf(ctx, rdb, ledger.JobKey(moved.ID))
	if err != nil {
		t.Fatal(err)
	}
	var elsewhere tasks.Job
	for _, j := range jobs[5:] {
		if j.ID != moved.ID && i3(j) == 2 {
			if addr, _ := masterOf(ctx, rdb, ledger.JobKey(j.ID)); addr != master {
				elsewhere = j
				break
			}
		}
	}
	cluster.Failover(master)
	claimed, err := l.Claim(ctx, moved.ID, 0)
	if err != nil || claimed.LossWait <= 0 {
		t.Fatalf("claim after the failover of its master: loss wait %v, %v", claimed.LossWait, err)
	}
	if elsewhere.ID != "" {
		if other, err := l.Claim(ctx, elsewhere.ID, 0); err != nil || other.LossWait != 0 {
			t.Fatalf("claim on a master that did not fail over: loss wait %v, %v", other.LossWait, err)
		}
	}
}

// i3 is which outcome TestLedgerOnRedisCluster gave a job (by its key).
func i3(j tasks.Job) int {
	var i int
	fmt.Sscanf(j.IdempotencyKey, "cluster-%d", &i)
	return i % 3
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// masterOf returns the address of the master serving key.
func masterOf(ctx context.Context, rdb *redis.ClusterClient, key string) (string, error) {
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", errors.New("no master serves the slot")
}
