package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// ProcessTask runs the exactly-once protocol for one delivery of a posting
// task. It implements asynq.Handler.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if !w.enter() {
		return &waitError{reason: "worker shutting down", after: time.Second}
	}
	defer w.inflight.Done()
	payload, err := ledger.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	log := w.log.With("job_id", payload.JobID, "type", t.Type())
	last := isLastAttempt(ctx)
	for {
		a, err := w.claim(ctx, payload.JobID, log, last)
		if a == nil {
			return err
		}
		err = a.run(ctx)
		var wait *waitError
		if !last || !errors.As(err, &wait) {
			return err
		}
		// asynq archives a task whose last attempt returns any error, even
		// one that spends no retry: a wait returned now would strand the
		// job. The last attempt waits here instead and runs the protocol
		// again. A shutdown that outlasts the wait requeues the task and
		// cancels ctx, and what this delivery returns no longer counts.
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait.after {
			return a.exhausted(ctx, wait)
		}
		log.Info("last attempt: waiting in the handler", "reason", wait.reason, "after", wait.after)
		select {
		case <-time.After(wait.after):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// claim starts an attempt on the job, or returns a nil attempt when there
// is nothing to do, with what to tell asynq.
func (w *Worker) claim(ctx context.Context, id string, log *slog.Logger, last bool) (*attempt, error) {
	claimed, err := w.ledger.Claim(ctx, id)
	job := claimed.Job
	switch {
	case errors.Is(err, ledger.ErrCancelled):
		log.Info("job was cancelled; dropping the task")
		return nil, nil
	case errors.Is(err, ledger.ErrPosted):
		log.Info("job already posted; confirming", "document", job.Result.Document)
		return nil, nil
	case errors.Is(err, ledger.ErrNotFound):
		// Without its ledger entry the job cannot be checked against SAP,
		// so it must not be sent.
		log.Error("task has no ledger entry; not posting")
		return nil, fmt.Errorf("%w: job %s has no ledger entry (expired or deleted)", asynq.SkipRetry, id)
	case err != nil:
		return nil, err // Redis trouble: retry the delivery
	}
	return &attempt{w: w, job: job, sinceSend: claimed.SinceSend, log: log, last: last}, nil
}

func isLastAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= max
}

// attempt is one run of the protocol for one job.
type attempt struct {
	w *Worker
	// job is the job as this attempt knows it; its attempt count fences the
	// outcome it records against a delivery that overtook it.
	job       tasks.Job
	sinceSend time.Duration // since the previous call to SAP went out, by Redis's clock
	log       *slog.Logger
	last      bool // asynq archives the task if this attempt fails
}

func (a *attempt) run(ctx context.Context) error {
	w, job := a.w, a.job
	p, ok := w.posters[job.Kind]
	if !ok {
		return a.unsendable(ctx, "unknown_kind", "no worker for kind "+string(job.Kind))
	}
	c, err := p(job)
	if err != nil {
		return a.unsendable(ctx, "invalid_payload", err.Error())
	}

	if job.Phase == tasks.PhaseSending {
		if done, err := a.reconcile(ctx, c); done || err != nil {
			return err
		}
	}

	sending, err := w.ledger.BeginSend(ctx, job)
	switch {
	case errors.Is(err, ledger.ErrCancelled), errors.Is(err, ledger.ErrPosted):
		return nil
	case errors.Is(err, ledger.ErrConcurrentAttempt):
		// The delivery that is sending owns the outcome; this one records
		// nothing and looks again later.
		return &waitError{reason: "another delivery of this job began sending", after: time.Second}
	case err != nil:
		return err
	}
	a.job, job = sending, sending

	callCtx, cancel := context.WithTimeout(ctx, w.opts.SAPTimeout)
	start := time.Now()
	doc, err := c.post(callCtx)
	cancel()
	w.metrics.sapCall(job.Kind, "post", start, err)
	if err == nil {
		return a.succeed(ctx, doc, false)
	}

	jobErr := jobError(err)
	switch sap.CategoryOf(err) {
	case sap.Permanent:
		return a.fail(ctx, tasks.PhasePending, jobErr, err)
	case sap.Transient:
		return a.retry(ctx, tasks.PhasePending, jobErr, err)
	default:
		// SAP may have posted it: stay in PhaseSending so the next attempt
		// looks it up before sending again.
		return a.retry(ctx, tasks.PhaseSending, jobErr, err)
	}
}

// reconcile settles an unknown outcome by looking the document up in SAP.
// It returns done when the job needs no send (adopted, or must wait).
func (a *attempt) reconcile(ctx context.Context, c call) (bool, error) {
	w, job := a.w, a.job
	// A call sent moments ago may still be running in SAP (a delivery
	// re-queued by a shutdown, say): a look-up now could miss a document
	// about to be committed. Wait until any such call must have ended. The
	// wait is at most ReconcileAfter, even if Redis's clock went back (a
	// failover to a host whose clock is behind).
	if settle := w.opts.ReconcileAfter - a.sinceSend; settle > 0 {
		return true, a.awaitSettling(min(settle, w.opts.ReconcileAfter))
	}
	callCtx, cancel := context.WithTimeout(ctx, w.opts.SAPTimeout)
	start := time.Now()
	doc, found, err := c.find(callCtx)
	cancel()
	w.metrics.sapCall(job.Kind, "find", start, err)
	if err != nil {
		// Fail closed: without a look-up a resend could post twice.
		w.metrics.reconciled(job.Kind, "unreadable")
		jobErr := jobError(err)
		jobErr.Category = tasks.CategoryUnknown
		jobErr.Message = "previous outcome unknown and SAP could not be read to check it; not resending: " + jobErr.Message
		return true, a.retry(ctx, tasks.PhaseSending, jobErr, err)
	}
	if found {
		w.metrics.reconciled(job.Kind, "adopted")
		a.log.Info("reconciled: SAP already holds the document; adopting it", "document", doc.Number)
		return true, a.succeed(ctx, doc, true)
	}
	w.metrics.reconciled(job.Kind, "absent")
	a.log.Info("reconciled: SAP holds no document for this job; sending")
	return false, nil
}

// recordTimeout bounds a ledger write after a SAP call.
const recordTimeout = 5 * time.Second

// recordCtx is the context for writing an attempt's outcome. It survives the
// cancellation of the job's context (a shutdown or a task timeout right after
// SAP answered): an outcome that SAP already decided must still be recorded.
func recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

func (a *attempt) succeed(ctx context.Context, doc sap.Document, reconciled bool) error {
	ctx, cancel := recordCtx(ctx)
	defer cancel()
	res := tasks.Result{Document: doc.Number, FiscalYear: doc.FiscalYear, CompanyCode: doc.CompanyCode, Reconciled: reconciled}
	for _, m := range doc.Messages {
		res.Messages = append(res.Messages, tasks.Message{Code: m.Code, Text: m.Text, Severity: m.Severity})
	}
	if err := a.w.ledger.RecordPosted(ctx, a.job, res); err != nil && !errors.Is(err, ledger.ErrPosted) {
		// The document exists but is not recorded. Returning the error makes
		// asynq retry; the job is still PhaseSending, so the retry adopts the
		// document by look-up instead of posting again.
		a.log.Error("posted but not recorded; the retry will reconcile", "document", doc.Number, "err", err)
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusSucceeded)
	a.log.Info("posted", "document", doc.Number, "fiscal_year", doc.FiscalYear, "reconciled", reconciled)
	return nil
}

// fail ends the job now: SAP refused it and will refuse it again until the
// data or SAP's configuration changes.
func (a *attempt) fail(ctx context.Context, phase tasks.Phase, jobErr tasks.JobError, cause error) error {
	if err := a.recordFailure(ctx, tasks.StatusFailed, phase, jobErr); err != nil {
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusFailed)
	a.log.Warn("posting failed permanently", "code", jobErr.Code, "message", jobErr.Message)
	return fmt.Errorf("%w: %s", asynq.SkipRetry, describeCause(jobErr, cause))
}

// unsendable fails a job this worker cannot even build a request for. The
// job keeps its phase: if an earlier call's outcome is unknown, SAP may hold
// the document, and the job must stay uncancellable and be reconciled when it
// is reprocessed.
func (a *attempt) unsendable(ctx context.Context, code, msg string) error {
	category := tasks.CategoryPermanent
	if a.job.Phase == tasks.PhaseSending {
		category = tasks.CategoryUnknown
		msg += "; an earlier call's outcome is unknown: SAP may hold the document"
	}
	return a.fail(ctx, a.job.Phase, tasks.JobError{Code: code, Message: msg, Category: category}, nil)
}

// retry records a failed attempt that asynq will try again, unless this
// was the last attempt, in which case the job is failed.
func (a *attempt) retry(ctx context.Context, phase tasks.Phase, jobErr tasks.JobError, cause error) error {
	status := tasks.StatusRetrying
	if a.last {
		status = tasks.StatusFailed
	}
	if err := a.recordFailure(ctx, status, phase, jobErr); err != nil {
		return err
	}
	if a.last {
		a.w.metrics.finished(a.job.Kind, tasks.StatusFailed)
	}
	a.log.Warn("attempt failed", "category", jobErr.Category, "code", jobErr.Code, "message", jobErr.Message, "last", a.last)
	return cause
}

// awaitSettling asks for a later attempt, without spending the retry
// budget, once any call still in flight from an earlier attempt must have
// ended.
func (a *attempt) awaitSettling(settle time.Duration) error {
	reason := fmt.Sprintf("previous call to SAP went out %s ago; looking the document up once it must have ended", a.sinceSend.Round(time.Millisecond))
	a.log.Info("waiting for an earlier call to settle", "after", settle)
	return &waitError{reason: reason, after: settle}
}

// exhausted ends a last attempt whose wait does not fit in the time asynq
// gives the task: asynq archives the task, so the ledger must say failed,
// with the outcome left to reconcile when it is reprocessed.
func (a *attempt) exhausted(ctx context.Context, wait *waitError) error {
	category := tasks.CategoryTransient
	if a.job.Phase == tasks.PhaseSending {
		category = tasks.CategoryUnknown
	}
	jobErr := tasks.JobError{Code: "attempts_exhausted", Message: wait.reason + "; no attempts left", Category: category}
	if err := a.recordFailure(ctx, tasks.StatusFailed, a.job.Phase, jobErr); err != nil {
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusFailed)
	return wait
}

// recordFailure records a failed attempt, fenced by the attempt count. A
// delivery that overtook this one (the job is posted, or a later attempt
// began) owns the outcome: that is not an error.
func (a *attempt) recordFailure(ctx context.Context, status tasks.Status, phase tasks.Phase, jobErr tasks.JobError) error {
	ctx, cancel := recordCtx(ctx)
	defer cancel()
	err := a.w.ledger.RecordFailure(ctx, a.job, status, phase, jobErr)
	if errors.Is(err, ledger.ErrPosted) || errors.Is(err, ledger.ErrStale) {
		return nil
	}
	return err
}

// jobError turns a SAP error into what the ledger keeps and agents read.
func jobError(err error) tasks.JobError {
	je := tasks.JobError{Message: err.Error(), Category: category(sap.CategoryOf(err))}
	var se *sap.Error
	if errors.As(err, &se) {
		je.Code = se.Code
		if se.Message != "" {
			je.Message = se.Message
		}
	}
	return je
}

func category(c sap.Category) tasks.ErrorCategory {
	switch c {
	case sap.Permanent:
		return tasks.CategoryPermanent
	case sap.Transient:
		return tasks.CategoryTransient
	default:
		return tasks.CategoryUnknown
	}
}

func describeCause(je tasks.JobError, cause error) string {
	if cause != nil {
		return cause.Error()
	}
	return je.Message
}
