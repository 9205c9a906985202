package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/tasks"
)

var (
	// ErrNotFailed is returned when reprocessing a job that has not failed.
	ErrNotFailed = errors.New("only failed postings can be reprocessed")
	// ErrStillFinishing is returned when the failed attempt's task has not
	// been archived yet; asking again a moment later works.
	ErrStillFinishing = errors.New("the last attempt is still finishing; try again in a few seconds")
)

// Reprocess queues a failed job again with a fresh retry budget, once an
// operator has fixed the cause (opened the period, created the account). The
// job starts a new run: a delivery of the old run's task (the Asynq UI's
// "Run" on the archived task, the recoverer's retry of a lost lease) finds
// its run stale and does nothing.
// asynq's own "run" keeps the exhausted retry count, so a reprocessed task
// that met one more transient error would be archived at once; instead the
// archived task is replaced by a new one with the same ID. The exactly-once
// protocol still applies: a job whose last outcome was unknown is looked up
// in SAP before anything is sent.
func (l *Ledger) Reprocess(ctx context.Context, id string) (tasks.Job, error) {
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	// A worker records the failure before asynq archives the task. While
	// the task is still active, a new task with its ID cannot be enqueued
	// and the old one would be archived after all: wait for it. A task that
	// is archived or gone while the ledger still says the job is live was
	// given up by the queue without the worker recording an end (a crash on
	// the last attempt): such a job is reprocessable too.
	gone := "0"
	info, err := l.inspector.GetTaskInfo(l.opts.Queue, TaskID(id))
	switch {
	case err == nil && info.State == asynq.TaskStateActive:
		return tasks.Job{}, ErrStillFinishing
	case err == nil && info.State == asynq.TaskStateArchived,
		errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		gone = "1"
		if l.awaitingEnqueue(ctx, id) {
			gone = "0" // recorded and about to be enqueued: not stranded
		}
	}
	k, _ := keysOf(id)
	res, err := reprocessScript.Run(ctx, l.rdb,
		[]string{k.job(), idemKeyOf(job.Caller, job.IdempotencyKey), k.unenqueued(), k.expiry(), k.failed()},
		ms(l.opts.Now()), gone, callToken(), expiryMember(id, job.Caller)).Slice()
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, err)
	}
	switch res[0] {
	case "ok":
	case "missing":
		return tasks.Job{}, ErrNotFound
	default:
		return tasks.Job{}, fmt.Errorf("%w: job %s is %v", ErrNotFailed, id, res[0])
	}
	run, _ := res[1].(int64)
	job.Status, job.Run = tasks.StatusQueued, int(run)
	if err := l.enqueue(ctx, job); err != nil {
		l.log.Warn("reprocess: enqueue failed; the sweeper will retry", "job_id", id, "err", err)
	}
	return l.load(ctx, id)
}
