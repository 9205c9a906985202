package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Submit records a validated posting under (caller, idempotency key) and
// enqueues it, with Stripe's semantics: the same key and payload return the
// original job (replayed) in whatever state it is; the same key with another
// payload is a *ConflictError.
//
// Recording and enqueueing are two steps in two systems' keyspaces. The job
// is recorded first, together with a mark in its shard's unenqueued set that
// is cleared only once asynq has the task; if the process dies in between, a
// replay of the key or the Sweeper enqueues it. Enqueueing twice is harmless:
// the task ID is derived from the job ID (TaskID), and the worker's protocol skips posted jobs.
func (l *Ledger) Submit(ctx context.Context, caller string, p tasks.Posting) (tasks.Job, bool, error) {
	return l.submit(ctx, caller, p, nil)
}

// ApprovalRequest asks for an operator's approval before a posting may be
// sent (four-eyes).
type ApprovalRequest struct {
	// Reason says why, naming the policy rule; the approver reads it.
	Reason string
	// TTL is how long the posting waits for a decision before it is
	// rejected on its own (default DefaultApprovalTTL).
	TTL time.Duration
}

// DefaultApprovalTTL is how long a posting waits for approval by default:
// over a weekend.
const DefaultApprovalTTL = 72 * time.Hour

// SubmitForApproval records a posting as Submit does, but awaiting an
// operator's approval (tasks.StatusAwaitingApproval): it is not enqueued
// until Approve, and Reject or the approval's expiry end it unsent. The
// approval is bound to the posting's fingerprint. A replayed key returns
// its job as it stands, approved or not.
func (l *Ledger) SubmitForApproval(ctx context.Context, caller string, p tasks.Posting, req ApprovalRequest) (tasks.Job, bool, error) {
	if req.Reason == "" {
		return tasks.Job{}, false, errors.New("ledger: an approval request needs a reason")
	}
	if req.TTL <= 0 {
		req.TTL = DefaultApprovalTTL
	}
	return l.submit(ctx, caller, p, &req)
}

func (l *Ledger) submit(ctx context.Context, caller string, p tasks.Posting, approval *ApprovalRequest) (tasks.Job, bool, error) {
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
	var approvalJSON string
	var expires time.Time
	if approval != nil {
		now := l.opts.Now().UTC()
		expires = now.Add(approval.TTL)
		if approvalJSON, err = marshalJSON(tasks.Approval{Reason: cutText(approval.Reason), PayloadHash: fp, RequestedAt: now, ExpiresAt: expires}); err != nil {
			return tasks.Job{}, false, err
		}
	}
	job, unenqueued, created, err := l.record(ctx, caller, p, fp, canonical, approvalJSON, expires)
	if err != nil {
		return tasks.Job{}, false, err
	}
	if !created && (job.Fingerprint != fp || job.Kind != p.Kind()) {
		return tasks.Job{}, false, &ConflictError{JobID: job.ID, Key: p.IdempotencyKey()}
	}
	if unenqueued {
		switch unmark, err := l.place(ctx, job); {
		case err != nil:
			// The job is recorded and marked unenqueued: the Sweeper retries.
			l.log.Warn("enqueue failed; the sweeper will retry", "job_id", job.ID, "err", err)
		case unmark:
			// Cleared in one round trip with the marks of the submissions
			// confirmed meanwhile.
			k, _ := keysOf(job.ID)
			if err := l.unmarks.clear(ctx, k); err != nil {
				l.log.Warn("clearing the enqueued job's mark failed; the sweeper will confirm it", "job_id", job.ID, "err", err)
			}
		}
	}
	return job, !created, nil
}

// record runs the submit script, and for a key that names another job reads
// that job. A key whose job no longer exists is dropped and the posting
// recorded anew: whatever the old job did in SAP, the worker's look-up
// before its first call finds it.
func (l *Ledger) record(ctx context.Context, caller string, p tasks.Posting, fp string, canonical []byte, approval string, expires time.Time) (job tasks.Job, unenqueued, created bool, err error) {
	s := shardOfKey(caller, p.IdempotencyKey())
	idem := idemKeyOf(caller, p.IdempotencyKey())
	for range 2 {
		id := newJobID(s)
		res, err := submitScript.Run(ctx, l.rdb,
			[]string{idem, s.jobKey(id), s.jobsKey(), s.callerKey(callerHash(caller)), s.unenqueuedKey(), s.approvalsKey()},
			id, caller, string(p.Kind()), p.IdempotencyKey(), fp, string(canonical), ms(l.opts.Now()), approval, ms(expires), tasks.TraceParentOf(ctx)).Slice()
		if err != nil {
			return job, false, false, l.ctxErr(ctx, fmt.Errorf("ledger: record: %w", err))
		}
		if res[0].(int64) == 1 {
			job, err := decodeFlat(res[1])
			return job, res[2].(int64) == 1, true, err
		}
		other, _ := res[1].(string)
		job, unenqueued, err = l.readJob(ctx, other)
		if !errors.Is(err, ErrNotFound) {
			return job, unenqueued, false, err
		}
		keys := []string{idem}
		if k, ok := keysOf(other); ok && k.shard == s {
			keys = append(keys, k.job())
		}
		if err := forgetKeyScript.Run(ctx, l.rdb, keys, other).Err(); err != nil {
			return job, false, false, l.ctxErr(ctx, fmt.Errorf("ledger: record: %w", err))
		}
		l.log.Warn("idempotency key named a job that no longer exists; recording the posting again", "job_id", other)
	}
	return job, false, false, errors.New("ledger: record: idempotency key keeps naming a missing job")
}

// readJob reads a job and whether it awaits enqueueing.
func (l *Ledger) readJob(ctx context.Context, id string) (tasks.Job, bool, error) {
	k, ok := keysOf(id)
	if !ok {
		return tasks.Job{}, false, ErrNotFound
	}
	res, err := readJobScript.Run(ctx, l.rdb, []string{k.job(), k.unenqueued()}, id).Slice()
	if err != nil {
		return tasks.Job{}, false, l.ctxErr(ctx, fmt.Errorf("ledger: load %s: %w", id, err))
	}
	job, err := decodeFlat(res[0])
	return job, res[1].(int64) == 1, err
}

// awaitingEnqueue reports whether a job is recorded but not yet confirmed
// enqueued.
func (l *Ledger) awaitingEnqueue(ctx context.Context, id string) bool {
	k, ok := keysOf(id)
	return ok && l.rdb.ZScore(ctx, k.unenqueued(), id).Err() == nil
}

// enqueue gives a recorded job to asynq and clears its unenqueued mark once
// asynq has it.
func (l *Ledger) enqueue(ctx context.Context, job tasks.Job) error {
	unmark, err := l.place(ctx, job)
	if err != nil || !unmark {
		return err
	}
	k, _ := keysOf(job.ID)
	return l.rdb.ZRem(ctx, k.unenqueued(), job.ID).Err()
}

// place gives a recorded job to asynq. unmark says that the job's
// unenqueued mark may be cleared now: asynq has its task, or the job is not
// the queue's to run.
func (l *Ledger) place(ctx context.Context, job tasks.Job) (unmark bool, _ error) {
	k, _ := keysOf(job.ID)
	if !job.Status.InQueue() {
		return true, nil
	}
	payload, err := buildTaskPayload(TaskPayload{JobID: job.ID, Caller: job.Caller, Run: job.Run, Posting: job.Payload})
	if err != nil {
		return false, err
	}
	task := asynq.NewTask(job.Kind.TaskType(), payload)
	opts := []asynq.Option{asynq.TaskID(TaskID(job.ID)), asynq.Queue(l.opts.Queue), asynq.MaxRetry(l.opts.MaxRetry)}
	_, err = l.client.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// The queue still holds a task with this ID. A waiting one (pending,
		// scheduled, retry) will run the job (a stale run's task is
		// dropped by Claim; the sweeper then finds the job still marked).
		// An active one may be about to be archived by a failing last
		// attempt: the mark stays, and a later sweep looks again. An
		// archived one is a previous failure; it is replaced only if the
		// ledger has put the job back in the queue's hands (reprocess),
		// never on the strength of a stale snapshot.
		info, ierr := l.inspector.GetTaskInfo(l.opts.Queue, TaskID(job.ID))
		switch {
		case ierr != nil:
			return false, fmt.Errorf("ledger: enqueue %s: inspect conflicting task: %w", job.ID, ierr)
		case info.State == asynq.TaskStateActive:
			return false, nil
		case info.State == asynq.TaskStateArchived:
			st, serr := l.rdb.HGet(ctx, k.job(), fStatus).Result()
			if serr != nil || tasks.Status(st) != tasks.StatusQueued {
				return true, nil
			}
			if derr := l.inspector.DeleteTask(l.opts.Queue, TaskID(job.ID)); derr != nil && !errors.Is(derr, asynq.ErrTaskNotFound) {
				return false, fmt.Errorf("ledger: replace archived task %s: %w", job.ID, derr)
			}
			_, err = l.client.EnqueueContext(ctx, task, opts...)
		default:
			if p, perr := ParseTaskPayload(info.Payload); perr == nil && p.Run != job.Run {
				// A waiting task of an earlier run: it would be dropped
				// as stale. Replace it with this run's.
				if derr := l.inspector.DeleteTask(l.opts.Queue, TaskID(job.ID)); derr != nil && !errors.Is(derr, asynq.ErrTaskNotFound) {
					return false, fmt.Errorf("ledger: replace stale task %s: %w", job.ID, derr)
				}
				_, err = l.client.EnqueueContext(ctx, task, opts...)
			} else {
				err = nil
			}
		}
	}
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, fmt.Errorf("ledger: enqueue %s: %w", job.ID, err)
	}
	return true, nil
}

// Lookup returns the job a caller's idempotency key names, or ErrNotFound.
// It changes nothing: a dry run uses it to say what a submission would do.
func (l *Ledger) Lookup(ctx context.Context, caller, key string) (tasks.Job, error) {
	id, err := l.rdb.Get(ctx, idemKeyOf(caller, key)).Result()
	if errors.Is(err, redis.Nil) {
		return tasks.Job{}, ErrNotFound
	}
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, err)
	}
	return l.Get(ctx, caller, id)
}
