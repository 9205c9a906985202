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
//
// worker/model/exactlyonce.pml models this protocol; when a transition here
// changes, the model must change with it.

// Errors of the worker-facing transitions.
var (
	ErrCancelled = errors.New("posting was cancelled")
	ErrPosted    = errors.New("posting is already posted")
	// ErrFailed means the job failed: no delivery may run it again until
	// it is reprocessed.
	ErrFailed = errors.New("posting failed; only a reprocess reopens it")
	// ErrUnapproved means the job awaits an operator's approval or was
	// rejected: the queue has no business running it (a task that an
	// operator ran by hand, or one that outlived a Redis rollback).
	ErrUnapproved = errors.New("posting is not approved")
	// ErrStaleRun means the delivery's task belongs to an earlier run of
	// the job (the job has been reprocessed since it was enqueued).
	ErrStaleRun = errors.New("task belongs to an earlier run of this posting")
	// ErrConcurrentAttempt means another delivery of the same task began
	// sending since this one claimed it.
	ErrConcurrentAttempt = errors.New("another attempt of this posting is in progress")
	// ErrStale means a later attempt has begun since this one claimed the job:
	// that attempt owns the outcome.
	ErrStale = errors.New("a later attempt owns this posting's outcome")
	// ErrLossSinceClaim means Redis lost writes after this delivery claimed
	// the job: what it learnt may be older than what another delivery sent
	// since, so it records no failure; a later delivery looks SAP up.
	ErrLossSinceClaim = errors.New("Redis lost writes since this attempt claimed the posting; a later attempt looks it up in SAP")
)

// LossWindowError says that the shard's Redis lost writes recently (see
// loss.go): no call may go out for another Wait.
type LossWindowError struct{ Wait time.Duration }

func (e *LossWindowError) Error() string {
	return fmt.Sprintf("Redis lost writes recently; no call to SAP goes out for another %s, until every call the ledger may have forgotten has ended", e.Wait.Round(time.Millisecond))
}

// Claimed is a job as an attempt found it when claiming it.
type Claimed struct {
	tasks.Job
	// SinceSend is how long ago, by the Redis server's clock, the last call
	// to SAP was sent; it matters for PhaseSending jobs.
	SinceSend time.Duration
	// LossWait is how long the shard's loss window lasts yet: until then a
	// look-up proves nothing and no call may go out.
	LossWait time.Duration
	// Suspect is true when the job's state was written before the shard's
	// last Redis loss: the phase may be older than what SAP holds, so a
	// "pending" proves nothing until a look-up.
	Suspect bool
}

// Claim starts an attempt of a delivery of run run on a job. It returns the
// job as the claim left it, ErrNotFound, or (with the job) ErrCancelled,
// ErrPosted (SAP holds the recorded document), ErrFailed, ErrUnapproved or
// ErrStaleRun:
// for each of those the delivery must do nothing.
func (l *Ledger) Claim(ctx context.Context, id string, run int) (Claimed, error) {
	k, ok := keysOf(id)
	if !ok {
		return Claimed{}, ErrNotFound
	}
	floor := l.seq.floor(k.shard)
	res, err := claimScript.Run(ctx, l.rdb, []string{k.meta(), k.job(), k.unenqueued()}, ms(l.opts.Now()), run).Slice()
	if err != nil {
		return Claimed{}, l.ctxErr(ctx, fmt.Errorf("ledger: claim %s: %w", id, err))
	}
	if len(res) < 6 {
		return Claimed{}, ErrNotFound
	}
	job, err := decodeFlat(res[1])
	if err != nil {
		return Claimed{}, err
	}
	now, _ := res[2].(int64)
	loss, _ := res[3].(int64)
	lossUS, _ := res[5].(int64)
	if lossUS > 0 {
		job.LossSeen = time.UnixMicro(lossUS)
	}
	c := Claimed{Job: job, LossWait: lossWait(now, loss, l.opts.Settle),
		Suspect: lossUS > 0 && !job.WrittenAt.After(time.UnixMicro(lossUS))}
	if seq, _ := res[4].(int64); l.seq.observe(k.shard, floor, seq) {
		c.LossWait, c.Suspect = l.noticeRollback(ctx, k.shard), true
	}
	if !job.SendStartedAt.IsZero() {
		c.SinceSend = time.UnixMilli(now).Sub(job.SendStartedAt)
	}
	switch res[0] {
	case "ok":
		return c, nil
	case "cancelled":
		return c, ErrCancelled
	case "posted":
		return c, ErrPosted
	case "failed":
		return c, ErrFailed
	case "unapproved":
		return c, ErrUnapproved
	case "stale":
		return c, ErrStaleRun
	}
	return c, fmt.Errorf("ledger: claim %s: unexpected answer %v", id, res[0])
}

// BeginSend records that a call to SAP is about to go out to destination
// with the job's reference. From here until an outcome is recorded, the job
// is PhaseSending: any later attempt looks the document up in SAP before
// sending again. job is the value Claim returned; its attempt count fences
// off a concurrent delivery of the same task. It returns the job as it now
// stands, whose attempt count in turn fences the outcome this attempt
// records, and whose Generation names the message UUID the call carries.
// Inside a loss window it records nothing and returns a *LossWindowError.
func (l *Ledger) BeginSend(ctx context.Context, job tasks.Job, destination, reference string) (tasks.Job, error) {
	k, ok := keysOf(job.ID)
	if !ok {
		return job, ErrNotFound
	}
	token := callToken()
	floor := l.seq.floor(k.shard)
	res, err := beginSendScript.Run(ctx, l.rdb, []string{k.meta(), k.job()},
		ms(l.opts.Now()), job.Attempts, job.Run, token, destination, reference, l.opts.Settle.Milliseconds()).Slice()
	if err != nil {
		return job, l.ctxErr(ctx, fmt.Errorf("ledger: begin send %s: %w", job.ID, err))
	}
	if len(res) == 6 {
		if seq, _ := res[5].(int64); l.seq.observe(k.shard, floor, seq) {
			// "sending" may be recorded: the next attempt waits it out and
			// looks up, as after any call whose outcome is unknown.
			return job, &LossWindowError{Wait: l.noticeRollback(ctx, k.shard)}
		}
	}
	switch res[0] {
	case "ok":
		attempts, _ := res[1].(int64)
		gen, _ := res[2].(int64)
		job.Attempts, job.Generation, job.SendToken = int(attempts), int(gen), token
		job.Phase, job.Status = tasks.PhaseSending, tasks.StatusRunning
		if job.Destination == "" {
			job.Destination, job.Reference = destination, reference
		}
		return job, nil
	case "loss_window":
		now, _ := res[3].(int64)
		loss, _ := res[4].(int64)
		return job, &LossWindowError{Wait: max(lossWait(now, loss, l.opts.Settle), time.Millisecond)}
	case "cancelled":
		return job, ErrCancelled
	case "posted":
		return job, ErrPosted
	case "failed":
		return job, ErrFailed
	case "unapproved":
		return job, ErrUnapproved
	case "stale":
		return job, ErrStaleRun
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

// RecordReversed stores that SAP holds the job's document, reversed: the
// job is failed (sapq does not post it again) and, as SAP holds a document
// for it, neither cancellable nor reprocessable.
func (l *Ledger) RecordReversed(ctx context.Context, job tasks.Job, result tasks.Result, jobErr tasks.JobError) error {
	return l.finish(ctx, job, tasks.StatusFailed, tasks.PhasePosted, &result, &jobErr)
}

// RecordFailure stores a failed attempt. phase says what SAP may hold:
// PhasePending when the failure proves nothing was posted, PhaseSending when
// the outcome is unknown. A failed job is kept for FailedRetention so that
// operators can reprocess it. job must be what this attempt saw: BeginSend's
// after a call (its send token fences the outcome), Claim's before one (its
// attempt count and run). A delivery that another one has overtaken gets
// ErrStale and records nothing; a cancelled job gets ErrCancelled.
func (l *Ledger) RecordFailure(ctx context.Context, job tasks.Job, status tasks.Status, phase tasks.Phase, jobErr tasks.JobError) error {
	return l.finish(ctx, job, status, phase, nil, &jobErr)
}

func (l *Ledger) finish(ctx context.Context, job tasks.Job, status tasks.Status, phase tasks.Phase, result *tasks.Result, jobErr *tasks.JobError) error {
	k, ok := keysOf(job.ID)
	if !ok {
		return ErrNotFound
	}
	var resJSON, errJSON string
	var err error
	if result != nil {
		if resJSON, err = marshalJSON(capResult(*result)); err != nil {
			return err
		}
	}
	if jobErr != nil {
		if errJSON, err = marshalJSON(capError(*jobErr)); err != nil {
			return err
		}
	}
	res, err := finishScript.Run(ctx, l.rdb, []string{k.job(), idemKeyOf(job.Caller, job.IdempotencyKey), k.expiry(), k.failed(), k.meta()},
		string(status), string(phase), resJSON, errJSON, ms(l.opts.Now()), l.ttl(status).Milliseconds(), job.Attempts,
		expiryMember(job.ID, job.Caller), job.SendToken, job.Run, us(job.LossSeen)).Text()
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
	case "loss":
		return ErrLossSinceClaim
	case "cancelled":
		return ErrCancelled
	default:
		return ErrNotFound
	}
}

// ttl is how long a job in status is kept; 0 for live jobs, kept until
// they end.
func (l *Ledger) ttl(status tasks.Status) time.Duration {
	switch status {
	case tasks.StatusSucceeded, tasks.StatusCancelled, tasks.StatusRejected:
		return l.opts.Retention
	case tasks.StatusFailed:
		return l.opts.FailedRetention
	}
	return 0
}

// us is t in microseconds since the epoch, 0 for the zero time.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
