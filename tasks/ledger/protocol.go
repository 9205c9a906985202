package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	// ErrStale means a later attempt has begun since this one claimed the job:
	// that attempt owns the outcome.
	ErrStale = errors.New("a later attempt owns this posting's outcome")
)

// Claimed is a job as an attempt found it when claiming it.
type Claimed struct {
	tasks.Job
	// SinceSend is how long ago, by the Redis server's clock, the last call
	// to SAP was sent; it matters for PhaseSending jobs.
	SinceSend time.Duration
}

// Claim starts an attempt on a job. It returns the job as it stood before
// the claim, ErrNotFound, ErrCancelled, or ErrPosted (with the job) when SAP
// already holds the recorded document.
func (l *Ledger) Claim(ctx context.Context, id string) (Claimed, error) {
	res, err := claimScript.Run(ctx, l.rdb, []string{jobKey(id), unenqueuedKey}, ms(l.opts.Now())).Slice()
	if err != nil {
		return Claimed{}, l.ctxErr(ctx, fmt.Errorf("ledger: claim %s: %w", id, err))
	}
	if len(res) < 2 {
		return Claimed{}, ErrNotFound
	}
	job, err := decodeFlat(res[0])
	if err != nil {
		return Claimed{}, err
	}
	c := Claimed{Job: job}
	if now, ok := res[1].(int64); ok && !job.SendStartedAt.IsZero() {
		c.SinceSend = time.UnixMilli(now).Sub(job.SendStartedAt)
	}
	switch {
	case job.Status == tasks.StatusCancelled:
		return c, ErrCancelled
	case job.Phase == tasks.PhasePosted:
		return c, ErrPosted
	}
	return c, nil
}

// BeginSend records that a call to SAP is about to go out. From here until an
// outcome is recorded, the job is PhaseSending: any later attempt looks the
// document up in SAP before sending again. job is the value Claim returned;
// its attempt count fences off a concurrent delivery of the same task. It
// returns the job as it now stands, whose attempt count in turn fences the
// outcome this attempt records.
func (l *Ledger) BeginSend(ctx context.Context, job tasks.Job) (tasks.Job, error) {
	res, err := beginSendScript.Run(ctx, l.rdb, []string{jobKey(job.ID)}, ms(l.opts.Now()), job.Attempts).Text()
	if err != nil {
		return job, l.ctxErr(ctx, fmt.Errorf("ledger: begin send %s: %w", job.ID, err))
	}
	switch res {
	case "ok":
		job.Attempts++
		job.Phase, job.Status = tasks.PhaseSending, tasks.StatusRunning
		return job, nil
	case "cancelled":
		return job, ErrCancelled
	case "posted":
		return job, ErrPosted
	case "concurrent":
		return job, ErrConcurrentAttempt
	default:
		return job, ErrNotFound
	}
}

// RecordPosted stores SAP's result (tRFC's commit): the job is succeeded and
// kept for the retention period. A document is recorded whichever attempt
// found it.
func (l *Ledger) RecordPosted(ctx context.Context, job tasks.Job, result tasks.Result) error {
	return l.finish(ctx, job, tasks.StatusSucceeded, tasks.PhasePosted, &result, nil)
}

// RecordFailure stores a failed attempt. phase says what SAP may hold:
// PhasePending when the failure proves nothing was posted, PhaseSending when
// the outcome is unknown. A failed job is kept for FailedRetention so that
// operators can reprocess it. job must carry the attempt count this attempt
// saw (Claim's, or BeginSend's after sending): a delivery that another one
// has overtaken gets ErrStale and records nothing.
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
		string(status), string(phase), resJSON, errJSON, ms(l.opts.Now()), ttl, job.Attempts).Text()
	if err != nil {
		return l.ctxErr(ctx, fmt.Errorf("ledger: record %s for %s: %w", status, job.ID, err))
	}
	switch res {
	case "ok":
		return nil
	case "posted":
		return ErrPosted
	case "stale":
		return ErrStale
	default:
		return ErrNotFound
	}
}
