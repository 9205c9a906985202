package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/tasks"
)

// ErrNotFailed is returned when reprocessing a job that has not failed.
var ErrNotFailed = errors.New("only failed postings can be reprocessed")

// Reprocess queues a failed job again with a fresh retry budget, once an
// operator has fixed the cause (opened the period, created the account).
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
	res, err := reprocessScript.Run(ctx, l.rdb, []string{jobKey(id), idemKey(job.Caller, job.IdempotencyKey), unenqueuedKey}, ms(l.opts.Now())).Text()
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, err)
	}
	switch res {
	case "ok":
	case "missing":
		return tasks.Job{}, ErrNotFound
	default:
		return tasks.Job{}, fmt.Errorf("%w: job %s is %s", ErrNotFailed, id, res)
	}
	if err := l.inspector.DeleteTask(l.opts.Queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// The task is still live in the queue (retry or active): it will
		// run anyway, and the ledger now says queued.
		l.log.Warn("reprocess: old task not deleted", "job_id", id, "err", err)
	}
	job.Status = tasks.StatusQueued
	if err := l.enqueue(ctx, job); err != nil {
		l.log.Warn("reprocess: enqueue failed; the sweeper will retry", "job_id", id, "err", err)
	}
	return l.load(ctx, id)
}
