package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/tasks"
)

// awaitingEnqueue reports whether a job is recorded but not yet confirmed
// enqueued.
func (l *Ledger) awaitingEnqueue(ctx context.Context, id string) bool {
	return l.rdb.ZScore(ctx, unenqueuedKey, id).Err() == nil
}

// Submit records a validated posting under (caller, idempotency key) and
// enqueues it, with Stripe's semantics: the same key and payload return the
// original job (replayed) in whatever state it is; the same key with another
// payload is a *ConflictError.
//
// Recording and enqueueing are two steps in two systems' keyspaces. The job
// is recorded first, together with a mark in sapq:unenqueued that is cleared
// only once asynq has the task; if the process dies in between, a replay of
// the key or the Sweeper enqueues it. Enqueueing twice is harmless: the task
// ID is the job ID, and the worker's protocol skips posted jobs.
func (l *Ledger) Submit(ctx context.Context, caller string, p tasks.Posting) (tasks.Job, bool, error) {
	if caller == "" {
		return tasks.Job{}, false, errors.New("ledger: submit without a caller")
	}
	if err := p.Validate(); err != nil {
		return tasks.Job{}, false, err
	}
	fp, canonical, err := tasks.Fingerprint(p)
	if err != nil {
		return tasks.Job{}, false, fmt.Errorf("ledger: fingerprint: %w", err)
	}
	id := newJobID()
	now := l.opts.Now()
	res, err := submitScript.Run(ctx, l.rdb,
		[]string{idemKey(caller, p.IdempotencyKey()), jobKey(id), callerKey(caller), allJobsKey, unenqueuedKey},
		id, caller, string(p.Kind()), p.IdempotencyKey(), fp, string(canonical), ms(now), jobKey("")).Slice()
	if err != nil {
		return tasks.Job{}, false, l.ctxErr(ctx, fmt.Errorf("ledger: record: %w", err))
	}
	created, unenqueued := res[0].(int64) == 1, res[1].(int64) == 1
	job, err := decodeFlat(res[2])
	if err != nil {
		return tasks.Job{}, false, fmt.Errorf("ledger: record: %w", err)
	}
	if !created && (job.Fingerprint != fp || job.Kind != p.Kind()) {
		return tasks.Job{}, false, &ConflictError{JobID: job.ID, Key: p.IdempotencyKey()}
	}
	if unenqueued {
		if err := l.enqueue(ctx, job); err != nil {
			// The job is recorded and marked unenqueued: the Sweeper retries.
			l.log.Warn("enqueue failed; the sweeper will retry", "job_id", job.ID, "err", err)
		}
	}
	return job, !created, nil
}

func (l *Ledger) enqueue(ctx context.Context, job tasks.Job) error {
	if job.Status.Terminal() {
		return l.rdb.ZRem(ctx, unenqueuedKey, job.ID).Err()
	}
	payload, err := json.Marshal(TaskPayload{JobID: job.ID, Caller: job.Caller, Posting: job.Payload})
	if err != nil {
		return err
	}
	task := asynq.NewTask(job.Kind.TaskType(), payload)
	opts := []asynq.Option{asynq.TaskID(job.ID), asynq.Queue(l.opts.Queue), asynq.MaxRetry(l.opts.MaxRetry)}
	_, err = l.client.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// The queue still holds a task with this ID. A waiting one (pending,
		// scheduled, retry) will run the job. An active one may be about to
		// be archived by a failing last attempt: the mark stays, and a later
		// sweep looks again. An archived one is a previous failure; it is
		// replaced only if the ledger has put the job back in the queue's
		// hands (reprocess), never on the strength of a stale snapshot.
		info, ierr := l.inspector.GetTaskInfo(l.opts.Queue, job.ID)
		switch {
		case ierr != nil:
			return fmt.Errorf("ledger: enqueue %s: inspect conflicting task: %w", job.ID, ierr)
		case info.State == asynq.TaskStateActive:
			return nil
		case info.State == asynq.TaskStateArchived:
			st, serr := l.rdb.HGet(ctx, jobKey(job.ID), fStatus).Result()
			if serr != nil || tasks.Status(st) != tasks.StatusQueued {
				return l.rdb.ZRem(ctx, unenqueuedKey, job.ID).Err()
			}
			if derr := l.inspector.DeleteTask(l.opts.Queue, job.ID); derr != nil && !errors.Is(derr, asynq.ErrTaskNotFound) {
				return fmt.Errorf("ledger: replace archived task %s: %w", job.ID, derr)
			}
			_, err = l.client.EnqueueContext(ctx, task, opts...)
		default:
			err = nil
		}
	}
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("ledger: enqueue %s: %w", job.ID, err)
	}
	return l.rdb.ZRem(ctx, unenqueuedKey, job.ID).Err()
}
