package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/sapq/sapq/tasks"
)

// The worker's side of the ledger: the state changes of the exactly-once
// protocol (claim, begin send, record the outcome). Each is one atomic script.

// Errors of the worker-facing transitions.
var (
	ErrCancelled = errors.New("posting was cancelled")
	ErrPosted    = errors.New("posting is already posted")
	// ErrConcurrentAttempt means another delivery of the same task began
	// sending since this one claimed it.
	ErrConcurrentAttempt = errors.New("another attempt of this posting is in progress")
)

// Claim starts an attempt on a job. It returns the job as it stood before the
// claim, ErrNotFound, ErrCancelled, or ErrPosted (with the job) when SAP already
// holds the recorded document.
func (l *Ledger) Claim(ctx context.Context, id string) (tasks.Job, error) {
	res, err := claimScript.Run(ctx, l.rdb, []string{jobKey(id), unenqueuedKey}, ms(l.opts.Now())).StringSlice()
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, fmt.Errorf("ledger: claim %s: %w", id, err))
	}
	if res[0] == "missing" {
		return tasks.Job{}, ErrNotFound
	}
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	job.Status, job.Phase = tasks.Status(res[0]), tasks.Phase(res[1])
	switch {
	case job.Status == tasks.StatusCancelled:
		return job, ErrCancelled
	case job.Phase == tasks.PhasePosted:
		return job, ErrPosted
	}
	return job, nil
}

// BeginSend records that a call to SAP is about to go out. From here until an
// outcome is recorded, the job is PhaseSending: any later attempt looks the
// document up in SAP before sending again. job is the value Claim returned;
// its attempt count fences off a concurrent delivery of the same task.
func (l *Ledger) BeginSend(ctx context.Context, job tasks.Job) error {
	id := job.ID
	res, err := beginSendScript.Run(ctx, l.rdb, []string{jobKey(id)}, ms(l.opts.Now()), job.Attempts).Text()
	if err != nil {
		return l.ctxErr(ctx, fmt.Errorf("ledger: begin send %s: %w", id, err))
	}
	switch res {
	case "ok":
		return nil
	case "cancelled":
		return ErrCancelled
	case "posted":
		return ErrPosted
	case "concurrent":
		return ErrConcurrentAttempt
	default:
		return ErrNotFound
	}
}

// RecordPosted stores SAP's result (tRFC's commit): the job is succeeded and
// kept for the retention period.
func (l *Ledger) RecordPosted(ctx context.Context, job tasks.Job, result tasks.Result) error {
	return l.finish(ctx, job, tasks.StatusSucceeded, tasks.PhasePosted, &result, nil)
}

// RecordFailure stores a failed attempt. phase says what SAP may hold:
// PhasePending when the failure proves nothing was posted, PhaseSending when
// the outcome is unknown. A failed job is kept for FailedRetention so that
// operators can reprocess it.
func (l *Ledger) RecordFailure(ctx context.Context, job tasks.Job, status tasks.Status, phase tasks.Phase, jobErr tasks.JobError) error {
	return l.finish(ctx, job, status, phase, nil, &jobErr)
}

func (l *Ledger) finish(ctx context.Context, job tasks.Job, status tasks.Status, phase tasks.Phase, result *tasks.Result, jobErr *tasks.JobError) error {
	var resJSON, errJSON string
	var err error
	if result != nil {
		if resJSON, err = marshalJSON(result); err != nil {
			return err
		}
	}
	if jobErr != nil {
		if errJSON, err = marshalJSON(jobErr); err != nil {
			return err
		}
	}
	var ttl int64
	switch status {
	case tasks.StatusSucceeded, tasks.StatusCancelled:
		ttl = l.opts.Retention.Milliseconds()
	case tasks.StatusFailed:
		ttl = l.opts.FailedRetention.Milliseconds()
	}
	res, err := finishScript.Run(ctx, l.rdb, []string{jobKey(job.ID), idemKey(job.Caller, job.IdempotencyKey)},
		string(status), string(phase), resJSON, errJSON, ms(l.opts.Now()), ttl).Text()
	if err != nil {
		return l.ctxErr(ctx, fmt.Errorf("ledger: record %s for %s: %w", status, job.ID, err))
	}
	switch res {
	case "ok":
		return nil
	case "posted":
		return ErrPosted
	default:
		return ErrNotFound
	}
}
