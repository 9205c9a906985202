package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/worker"
)

// The recoverer requeues exactly the active tasks whose lease went
// unrenewed for RecoverAfter: not a live server's (renewed 2 s ago), not
// one it already requeued maxRecoveries times (asynq's own recoverer, which
// counts retries, takes that one); a lease entry of a task that is no
// longer active is dropped.
func TestRecovererRequeuesTasksOfDeadWorkers(t *testing.T) {
	rdb, _ := redisSrv.NewDB(t)
	ctx := context.Background()
	const queue = "postings"
	client := asynq.NewClientFromRedisClient(rdb)
	for _, id := range []string{"dead", "live", "looping", "finished"} {
		if _, err := client.Enqueue(asynq.NewTask("posting:journal_entry", []byte(id)), asynq.Queue(queue), asynq.TaskID(id)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	q := "asynq:{" + queue + "}:"
	// What asynq's dequeue and heartbeats leave: active, leased until 30 s
	// after the last renewal.
	activate := func(id string, renewed time.Time) {
		t.Helper()
		pipe := rdb.TxPipeline()
		pipe.LRem(ctx, q+"pending", 0, id)
		pipe.LPush(ctx, q+"active", id)
		pipe.HSet(ctx, q+"t:"+id, "state", "active")
		pipe.ZAdd(ctx, q+"lease", redis.Z{Score: float64(renewed.Add(30 * time.Second).Unix()), Member: id})
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	activate("dead", now.Add(-20*time.Second))
	activate("live", now.Add(-2*time.Second))
	activate("looping", now.Add(-20*time.Second))
	rdb.HSet(ctx, q+"t:looping", "sapq_recovered", 5)
	// A lease entry left behind by a task that is pending again.
	rdb.ZAdd(ctx, q+"lease", redis.Z{Score: float64(now.Add(-time.Minute).Unix()), Member: "finished"})

	moved, err := worker.RecoverPass(ctx, rdb, queue, 15*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(moved, []string{"dead"}) {
		t.Fatalf("requeued %v, want [dead]", moved)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for id, want := range map[string]asynq.TaskState{"dead": asynq.TaskStatePending, "live": asynq.TaskStateActive, "looping": asynq.TaskStateActive, "finished": asynq.TaskStatePending} {
		info, err := insp.GetTaskInfo(queue, id)
		if err != nil || info.State != want {
			t.Fatalf("task %s: %v (%v), want %v", id, info, err, want)
		}
	}
	if n, _ := rdb.HGet(ctx, q+"t:dead", "sapq_recovered").Int(); n != 1 {
		t.Fatalf("dead task's recovery count = %d, want 1", n)
	}
	if _, err := rdb.ZScore(ctx, q+"lease", "finished").Result(); err == nil {
		t.Fatal("the lease entry of a task no longer active is still there")
	}
	if _, err := rdb.ZScore(ctx, q+"lease", "live").Result(); err != nil {
		t.Fatalf("the live task lost its lease: %v", err)
	}
	// The requeued task is at the head of the queue: the next dequeue.
	if id, _ := rdb.LIndex(ctx, q+"pending", -1).Result(); id != "dead" {
		t.Fatalf("next task to dequeue = %q, want the requeued one", id)
	}
	// A second pass at the same time finds nothing more to do.
	if moved, err := worker.RecoverPass(ctx, rdb, queue, 15*time.Second, now); err != nil || len(moved) != 0 {
		t.Fatalf("second pass requeued %v (%v)", moved, err)
	}
}
