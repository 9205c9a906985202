package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// The exactly-once protocol, one delivery at a time (see doc.go for the
// whole picture). Its one rule: nothing is sent to SAP unless, immediately
// before, a look-up in SAP by the posting's reference found no document of
// it, at a time when every earlier call that may have carried that
// reference must have ended. The ledger may have lost writes; SAP is the
// system of record.
//
// worker/model/exactlyonce.pml models this protocol with spin; when the
// steps here change, the model must change with them.

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
		a, err := w.claim(ctx, payload, log, last)
		if a == nil {
			return err
		}
		err = a.traced(ctx)
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
func (w *Worker) claim(ctx context.Context, p ledger.TaskPayload, log *slog.Logger, last bool) (*attempt, error) {
	claimed, err := w.ledger.Claim(ctx, p.JobID, p.Run)
	job := claimed.Job
	switch {
	case errors.Is(err, ledger.ErrCancelled):
		log.Info("job was cancelled; dropping the task")
		return nil, nil
	case errors.Is(err, ledger.ErrPosted):
		log.Info("job already posted; confirming", "document", job.Result.Document)
		return nil, nil
	case errors.Is(err, ledger.ErrFailed):
		// A failed job is final for deliveries: asynq's recoverer retrying
		// a lost lease, or "Run" on the archived task in the Asynq UI, must
		// not post a document the agent may already have corrected and
		// resubmitted. Only a reprocess reopens it.
		log.Info("job has failed; only a reprocess runs it again; dropping the task")
		return nil, nil
	case errors.Is(err, ledger.ErrStaleRun):
		log.Info("task belongs to an earlier run of the job; dropping it", "task_run", p.Run, "job_run", job.Run)
		return nil, nil
	case errors.Is(err, ledger.ErrUnapproved):
		// Awaiting approval or rejected: approval, not the queue, lets it
		// run (a task run by hand, or one that outlived a Redis rollback).
		log.Warn("job is not approved; dropping the task", "status", job.Status)
		return nil, nil
	case errors.Is(err, ledger.ErrNotFound):
		// Without its ledger entry the job cannot be checked against SAP,
		// so it must not be sent.
		log.Error("task has no ledger entry; not posting")
		return nil, fmt.Errorf("%w: job %s has no ledger entry (expired or deleted)", asynq.SkipRetry, p.JobID)
	case err != nil:
		return nil, err // Redis trouble: retry the delivery
	}
	return &attempt{w: w, job: job, claimed: claimed, log: log.With("kind", job.Kind, "attempt", job.Attempts+1), last: last}, nil
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
	job     tasks.Job
	claimed ledger.Claimed // the job as the claim found it, with Redis's clock
	log     *slog.Logger
	last    bool // asynq archives the task if this attempt fails
	// destination is the SAP system this attempt calls and reference the
	// posting's reference in it, once known.
	destination, reference string
}

// traced runs the attempt in a span of its own that continues the trace of
// the submission (the job's traceparent), so that its logs and its SAP
// calls carry the trace ID the agent's request had.
func (a *attempt) traced(ctx context.Context) error {
	ctx, span := a.w.tracer.Start(tasks.ContextWithTraceParent(ctx, a.job.TraceParent), "posting attempt",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("sapq.job_id", a.job.ID), attribute.String("sapq.kind", string(a.job.Kind)), attribute.Int("sapq.attempt", a.job.Attempts+1)))
	defer span.End()
	err := a.run(ctx)
	var wait *waitError
	if err != nil && !errors.As(err, &wait) {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// sapCall starts one SAP call of the attempt: a span, whose context the
// call takes (its traceparent goes to SAP), and the call's latency metric.
// done ends both with the call's error.
func (a *attempt) sapCall(ctx context.Context, op string) (_ context.Context, done func(error)) {
	start := time.Now()
	ctx, span := a.w.tracer.Start(ctx, "sap "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("sapq.destination", a.destination), attribute.String("sapq.kind", string(a.job.Kind))))
	return ctx, func(err error) {
		a.w.metrics.sapCall(a.job.Kind, a.destination, op, start, err)
		if err != nil {
			span.SetStatus(codes.Error, sap.CategoryOf(err).String()+": "+err.Error())
		}
		span.End()
	}
}

// run takes the steps of the protocol in order. Each step is a method of
// its own so that the frames on the stack while the post waits for SAP's
// answer are run's and send's, not the locals of every step: the collector
// shrinks a handler goroutine's stack from 32 to 16 KB during the wait only
// if it then uses less than a quarter of it, and with a thousand postings
// in flight that is 17 MB of stacks (BENCHMARKS.md, scenario 4).
func (a *attempt) run(ctx context.Context) error {
	c, err := a.prepare(ctx)
	if c == nil {
		return err
	}
	// 1. Wait until no call that may carry this reference can still be in
	// flight.
	if err := a.awaitEarlierCalls(ctx); err != nil {
		return err
	}

	// From here to the recorded outcome the attempt holds its SAP objects
	// and a call slot of its destination (locks.go); if another job holds
	// them, it comes back later without spending its retry budget.
	pass, err := a.w.gate.enter(ctx, a.job.ID, c.objects, a.destination)
	if err != nil {
		return err
	}
	defer pass.release()

	// 2. Look the document up in SAP. Only a definite "not there" lets the
	// call go out.
	if done, err := a.lookUp(ctx, *c); done || err != nil {
		return err
	}

	// 3. Record "sending" (a compare-and-set against another delivery).
	began := time.Now()
	if send, err := a.beginSend(ctx); !send {
		return err
	}

	// 4. Send, and 5. record what SAP's answer proves.
	return a.send(ctx, c, pass, began)
}

// prepare checks that the job can be sent at all and builds its call. A nil
// call ends the attempt with the error returned.
func (a *attempt) prepare(ctx context.Context) (*call, error) {
	job := &a.job
	if !sap.Supports(job.Kind) {
		return nil, a.unsendable(ctx, "unknown_kind", "this worker cannot post postings of kind "+string(job.Kind))
	}
	if err := job.CheckApproval(); err != nil {
		return nil, a.unsendable(ctx, "not_approved", err.Error())
	}
	p, err := job.Posting()
	if err != nil {
		return nil, a.unsendable(ctx, "invalid_payload", err.Error())
	}
	destination, reference, err := a.identity(p)
	if err != nil {
		return nil, a.unsendable(ctx, CodeUnroutable, "no SAP destination for this posting: "+err.Error())
	}
	a.destination, a.reference = destination, reference
	c, err := newCall(a.w.opts.SAP, p, destination, reference)
	if err != nil {
		return nil, a.unsendable(ctx, "invalid_payload", err.Error())
	}
	return &c, nil
}

// awaitEarlierCalls returns the wait until no call that may carry this
// reference can still be in flight: the ledger's own record of the last
// one, or calls it may have forgotten in a Redis loss. Nil: none can be.
func (a *attempt) awaitEarlierCalls(ctx context.Context) error {
	if wait := a.claimed.LossWait; wait > 0 {
		a.w.metrics.waited("loss_window")
		return &waitError{reason: (&ledger.LossWindowError{Wait: wait}).Error(), after: wait}
	}
	if a.job.Phase == tasks.PhaseSending && !a.job.SendStartedAt.IsZero() {
		// (A job never sent, failed unverified, has no call of its own to
		// wait for; the loss window covers calls the ledger forgot.)
		if settle := a.w.settle - a.claimed.SinceSend; settle > 0 {
			// The wait is at most the settle time, even if Redis's clock
			// went back (a failover to a host whose clock is behind).
			a.w.metrics.waited("settle")
			return a.awaitSettling(ctx, min(settle, a.w.settle))
		}
	}
	return nil
}

// beginSend records "sending", a compare-and-set against another delivery,
// and reports whether the call may go out; if not, the attempt ends with
// the error returned.
func (a *attempt) beginSend(ctx context.Context) (send bool, _ error) {
	sending, err := a.w.ledger.BeginSend(ctx, a.job, a.destination, a.reference)
	var lossWindow *ledger.LossWindowError
	switch {
	case errors.As(err, &lossWindow):
		// Redis lost writes between the claim and now: the look-up before
		// proves nothing. Nothing was recorded; look again after the window.
		a.w.metrics.waited("loss_window")
		return false, &waitError{reason: lossWindow.Error(), after: lossWindow.Wait}
	case errors.Is(err, ledger.ErrCancelled), errors.Is(err, ledger.ErrPosted),
		errors.Is(err, ledger.ErrFailed), errors.Is(err, ledger.ErrStaleRun), errors.Is(err, ledger.ErrUnapproved):
		return false, nil
	case errors.Is(err, ledger.ErrConcurrentAttempt):
		// The delivery that is sending owns the outcome; this one records
		// nothing and looks again later.
		a.w.metrics.waited("concurrent")
		return false, &waitError{reason: "another delivery of this job began sending", after: time.Second}
	case err != nil:
		return false, err
	}
	a.job = sending
	return true, nil
}

// send makes the call, under the job's context and a timeout, and only while
// the attempt's leases are still its own: a lost one sends nothing, and the
// job, recorded as sending, is looked up after the settle time. Then it
// records what SAP's answer proves.
func (a *attempt) send(ctx context.Context, c *call, pass *pass, began time.Time) error {
	if err := pass.confirm(ctx); err != nil {
		return err
	}
	// The call's deadline counts from before BeginSend, not from now: the
	// settle time is counted from the recorded send, and a worker that
	// stalled since (a GC pause, a slow Redis round trip, a frozen VM) must
	// not send a call that reaches SAP after another delivery's settle wait
	// has ended (worker/model FIX 1).
	callCtx, cancel := context.WithDeadline(ctx, began.Add(a.w.opts.SAPTimeout))
	callCtx, done := a.sapCall(callCtx, "post")
	doc, err := c.post(callCtx, tasks.IdentityOf(&a.job, a.destination).MessageUUID(a.job.Generation))
	cancel()
	done(err)
	pass.sent(began, err)
	if err == nil {
		return a.succeed(ctx, doc, false)
	}
	jobErr := jobError(err)
	switch sap.CategoryOf(err) {
	case sap.Permanent:
		return a.fail(ctx, tasks.PhasePending, jobErr, err)
	case sap.Transient:
		return a.retry(ctx, tasks.PhasePending, jobErr, err)
	case sap.Duplicate:
		return a.duplicate(ctx, *c, jobErr, err)
	default:
		// SAP may have posted it: stay in PhaseSending so the next attempt
		// looks it up before sending again.
		return a.retry(ctx, tasks.PhaseSending, jobErr, err)
	}
}

// identity is where the job goes and the reference it carries. Once a call
// went out they are the job's own, whatever the configuration says now: a
// job is never sent to another destination than its first call's. Before
// that, the routes decide (the one the posting names, or its company
// code's, or the default).
func (a *attempt) identity(p tasks.Posting) (destination, reference string, err error) {
	if a.job.Destination != "" && a.job.Reference != "" {
		return a.job.Destination, a.job.Reference, nil
	}
	if destination, err = a.w.opts.SAP.Route(p); err != nil {
		return "", "", err
	}
	return destination, tasks.IdentityOf(&a.job, destination).Reference(), nil
}

// CodeUnroutable is the error code of a posting that no configured
// destination takes (the destination it names is not configured, or its
// company code has no route and there is no default).
const CodeUnroutable = "sapq/unroutable"

// lookUp looks for the job's document in SAP before anything is sent. It
// returns done when the job needs no send (adopted, or failed), or the
// error that asks for a later attempt.
func (a *attempt) lookUp(ctx context.Context, c call) (bool, error) {
	w, job := a.w, a.job
	m, err := a.find(ctx, c)
	if err != nil {
		// Fail closed: without a look-up a send could post twice.
		w.metrics.reconciled(job.Kind, "unreadable")
		jobErr := jobError(err)
		jobErr.Message = "SAP could not be read to check whether it already holds this posting; not sending: " + jobErr.Message
		// What SAP may hold is what it held before the look-up.
		phase := a.mayHoldPhase()
		jobErr.Category = tasks.CategoryTransient
		if phase == tasks.PhaseSending {
			jobErr.Category = tasks.CategoryUnknown
		}
		return true, a.retry(ctx, phase, jobErr, err)
	}
	if done, err := a.settleMatch(ctx, m); done {
		return true, err
	}
	if job.Phase == tasks.PhaseSending && job.Error != nil && sap.CodeCategory(job.Error.Code) == sap.Permanent {
		// The last call was refused with a data error inside an answer
		// that could not prove nothing was posted (an HTTP 500). The
		// look-up, now that the call must have ended, proves it.
		w.metrics.reconciled(job.Kind, "not_found")
		jobErr := *job.Error
		jobErr.Category = tasks.CategoryPermanent
		a.log.InfoContext(ctx, "reconciled: SAP holds no document for this posting; its last answer was a data error", "code", jobErr.Code)
		return true, a.fail(ctx, tasks.PhasePending, jobErr, nil)
	}
	w.metrics.reconciled(job.Kind, "not_found")
	return false, nil
}

func (a *attempt) find(ctx context.Context, c call) (sap.Match, error) {
	callCtx, cancel := context.WithTimeout(ctx, a.w.opts.SAPTimeout)
	defer cancel()
	callCtx, done := a.sapCall(callCtx, "find")
	m, err := c.find(callCtx)
	done(err)
	return m, err
}

// mayHoldPhase is the phase that says what SAP may hold for the job: the
// ledger's, unless the ledger wrote it before a Redis loss, when "pending"
// proves nothing and only a look-up can tell; nor does it for a job never
// sent (worker/model FIX 4: a new job is unverified): SAP may hold a
// document under its reference from a job of the same key that the ledger
// forgot (a Redis loss, or a posted job's retention that ended before the
// agent submitted the key again). The model's createJob and this change
// together.
func (a *attempt) mayHoldPhase() tasks.Phase {
	if a.job.Phase == tasks.PhasePending && (a.claimed.Suspect || a.job.Attempts == 0) {
		return tasks.PhaseSending
	}
	return a.job.Phase
}

// settleMatch acts on a document of this posting that a look-up found:
// adopted if it stands; if SAP reversed it, the job fails (sapq does not
// post a reversed posting again on its own) and keeps the document, so
// that it is neither cancelled nor reprocessed.
func (a *attempt) settleMatch(ctx context.Context, m sap.Match) (bool, error) {
	taken, by := m.TakenBy, m.TakenByUser
	if m.Found && m.Unproven && !a.mayHaveSent() {
		// Nothing ties the document to the posting but a call that may
		// have made it, and no call of this job can have gone out. It is
		// another's if another job of the ledger may have made it; if
		// none, it is this submission's only when a forgotten job of the
		// same submission may have (a new job is unverified, as
		// mayHoldPhase says).
		other, err := a.otherReversal(ctx)
		switch {
		case err != nil:
			return true, err
		case other != "":
			taken = m.Document.Number
			by += " by job " + other
		case a.mayHoldPhase() != tasks.PhaseSending:
			taken = m.Document.Number
		}
	}
	switch {
	case taken != "":
		a.w.metrics.reconciled(a.job.Kind, "taken")
		who := ""
		if by = strings.TrimSpace(by); strings.HasPrefix(by, "by job ") {
			who = " (made " + by + ")"
		} else if by != "" {
			who = " (created by SAP user " + by + ")"
		}
		jobErr := tasks.JobError{
			Code: CodeTaken,
			Message: fmt.Sprintf("SAP already shows the original reversed by document %s%s, which this reversal did not make; sapq does not reverse it a second time. Nothing was posted for this job.",
				taken, who),
			Category: tasks.CategoryPermanent,
		}
		a.log.WarnContext(ctx, "SAP shows the original reversed by another document; not posting", "document", taken, "created_by", by)
		return true, a.fail(ctx, tasks.PhasePending, jobErr, nil)
	case !m.Found:
		return false, nil
	case m.Reversed():
		a.w.metrics.reconciled(a.job.Kind, "reversed")
		a.log.WarnContext(ctx, "SAP holds this posting's document, reversed; not posting again", "document", m.Document.Number, "reversed_by", m.ReversedBy)
		jobErr := tasks.JobError{
			Code: CodeReversed,
			Message: fmt.Sprintf("SAP holds document %s %s for this posting, reversed by document %s; sapq does not post it again. To post it anew, submit it under a new idempotency_key.",
				m.Document.Number, m.Document.FiscalYear, m.ReversedBy),
			Category: tasks.CategoryReversed,
		}
		res := tasks.Result{Document: m.Document.Number, FiscalYear: m.Document.FiscalYear, CompanyCode: m.Document.CompanyCode,
			Reconciled: true, ReversedBy: m.ReversedBy}
		err := a.record(ctx, "reversed", func(ctx context.Context) error { return a.w.ledger.RecordReversed(ctx, a.job, res, jobErr) })
		if err != nil && !errors.Is(err, ledger.ErrPosted) {
			return true, err
		}
		a.w.metrics.finished(a.job.Kind, tasks.StatusFailed, jobErr.Code)
		return true, &taskError{jobErr: jobErr, skip: true}
	default:
		a.w.metrics.reconciled(a.job.Kind, "found")
		a.log.InfoContext(ctx, "SAP already holds the document; adopting it", "document", m.Document.Number)
		return true, a.succeed(ctx, m.Document, true)
	}
}

// CodeTaken is the error code of a posting whose place in SAP another
// document holds: a reversal of a document already reversed by another.
const CodeTaken = "sapq/already_reversed"

// mayHaveSent reports whether a call of this very job may have reached SAP:
// the ledger records one whose outcome is unknown, or may have forgotten
// one (a Redis loss). Unlike mayHoldPhase it does not count a new job as
// unverified: it decides whether a document that carries nothing of the
// job's (a supplier invoice's reversal) may be the job's, and a job that
// never sent cannot have made it. (A job of the same submission that the
// ledger forgot without a trace is the one case it misses: its reversal
// then fails the new job as already reversed, naming it; nothing is
// posted twice.)
func (a *attempt) mayHaveSent() bool {
	return a.job.Phase == tasks.PhaseSending || a.claimed.Suspect
}

// CodeReversed is the error code of a posting whose document SAP holds,
// reversed.
const CodeReversed = "sapq/reversed"

// duplicate handles SAP's "an equal document already exists" (M8/108). That
// document may be this posting's own: an earlier call whose answer was lost,
// or which SAP committed after the client gave up, or which the ledger
// forgot. Only the look-up by reference tells.
func (a *attempt) duplicate(ctx context.Context, c call, jobErr tasks.JobError, cause error) error {
	m, err := a.find(ctx, c)
	if err != nil {
		jobErr.Category = tasks.CategoryUnknown
		jobErr.Message += "; SAP could not be read to check whether the existing document is this posting's own: " + err.Error()
		return a.retry(ctx, tasks.PhaseSending, jobErr, err)
	}
	if done, err := a.settleMatch(ctx, m); done {
		return err
	}
	if a.claimed.Phase == tasks.PhaseSending || a.claimed.Suspect {
		// An earlier call of this posting had an unknown outcome (or the
		// ledger may have forgotten one): what SAP holds may still become
		// visible as ours. Never "nothing posted" then.
		jobErr.Category = tasks.CategoryUnknown
		jobErr.Message = "SAP reports an equal document already exists (" + jobErr.Message + "), but none carries this posting's reference; an earlier call of this posting may still be committing. Not cancellable; reprocessing looks again before anything is sent."
		return a.fail(ctx, tasks.PhaseSending, jobErr, cause)
	}
	jobErr.Category = tasks.CategoryPermanent
	jobErr.Message = "SAP refused the posting as a duplicate of a document that this posting did not create (" + jobErr.Message + "); nothing was posted."
	return a.fail(ctx, tasks.PhasePending, jobErr, cause)
}

// recordCtx is the context for writing an attempt's outcome. It survives the
// cancellation of the job's context (a shutdown or a task timeout right after
// SAP answered): an outcome that SAP already decided must still be recorded.
func recordCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// record writes an outcome, retrying with backoff while Redis is away: a
// lost record costs a look-up later (the job stays PhaseSending), but on a
// last attempt it would leave the job to an operator.
func (a *attempt) record(ctx context.Context, what string, write func(context.Context) error) error {
	ctx, cancel := recordCtx(ctx, a.w.opts.RecordTimeout)
	defer cancel()
	b := backoff.WithContext(backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond), backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	return backoff.Retry(func() error {
		err := write(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ledger.ErrPosted), errors.Is(err, ledger.ErrStale), errors.Is(err, ledger.ErrCancelled), errors.Is(err, ledger.ErrNotFound),
			errors.Is(err, ledger.ErrLossSinceClaim):
			return backoff.Permanent(err)
		}
		a.log.WarnContext(ctx, "recording the outcome failed; retrying", "outcome", what, "err", err)
		return err
	}, b)
}

func (a *attempt) succeed(ctx context.Context, doc sap.Document, reconciled bool) error {
	res := tasks.Result{Document: doc.Number, FiscalYear: doc.FiscalYear, CompanyCode: doc.CompanyCode, Reconciled: reconciled}
	for _, m := range doc.Messages {
		res.Messages = append(res.Messages, tasks.Message{Code: m.Code, Text: m.Text, Severity: m.Severity})
	}
	err := a.record(ctx, "posted", func(ctx context.Context) error { return a.w.ledger.RecordPosted(ctx, a.job, res) })
	if err != nil && !errors.Is(err, ledger.ErrPosted) {
		// The document exists but is not recorded. Returning the error makes
		// asynq retry; the job is still PhaseSending, so the retry adopts the
		// document by look-up instead of posting again.
		a.log.ErrorContext(ctx, "posted but not recorded; the next attempt will adopt it by look-up", "document", doc.Number, "err", err)
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusSucceeded, "")
	a.log.InfoContext(ctx, "posted", "document", doc.Number, "fiscal_year", doc.FiscalYear, "reconciled", reconciled)
	return nil
}

// fail ends the job now: SAP refused it and will refuse it again until the
// data or SAP's configuration changes.
func (a *attempt) fail(ctx context.Context, phase tasks.Phase, jobErr tasks.JobError, cause error) error {
	if err := a.recordFailure(ctx, tasks.StatusFailed, phase, jobErr); err != nil {
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusFailed, jobErr.Code)
	a.log.WarnContext(ctx, "posting failed", "code", jobErr.Code, "category", jobErr.Category, "message", jobErr.Message)
	return &taskError{jobErr: jobErr, cause: cause, skip: true}
}

// unsendable fails a job this worker cannot even build a request for. The
// job keeps its phase: if an earlier call's outcome is unknown, SAP may hold
// the document, and the job must stay uncancellable and be reconciled when it
// is reprocessed. A job never sent keeps "pending" here (unlike
// mayHoldPhase's FIX 4 rule): it cannot be routed or built, so no look-up
// could check it, and the failure says what this job did, nothing; a cancel
// still looks SAP up first (ledger.Cancel).
func (a *attempt) unsendable(ctx context.Context, code, msg string) error {
	phase := a.job.Phase
	if phase == tasks.PhasePending && a.claimed.Suspect {
		phase = tasks.PhaseSending
	}
	category := tasks.CategoryPermanent
	if phase == tasks.PhaseSending {
		category = tasks.CategoryUnknown
		msg += "; an earlier call's outcome is unknown: SAP may hold the document"
	}
	return a.fail(ctx, phase, tasks.JobError{Code: code, Message: msg, Category: category}, nil)
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
		a.w.metrics.finished(a.job.Kind, tasks.StatusFailed, jobErr.Code)
	} else {
		a.w.metrics.retried(a.job.Kind, jobErr)
	}
	a.log.WarnContext(ctx, "attempt failed", "category", jobErr.Category, "code", jobErr.Code, "message", jobErr.Message, "last", a.last)
	return &taskError{jobErr: jobErr, cause: cause}
}

// awaitSettling asks for a later attempt, without spending the retry
// budget, once any call still in flight from an earlier attempt must have
// ended.
func (a *attempt) awaitSettling(ctx context.Context, settle time.Duration) error {
	reason := fmt.Sprintf("previous call to SAP went out %s ago; looking the document up once it must have ended", a.claimed.SinceSend.Round(time.Millisecond))
	a.log.InfoContext(ctx, "waiting for an earlier call to settle", "after", settle)
	return &waitError{reason: reason, after: settle}
}

// exhausted ends a last attempt whose wait does not fit in the time asynq
// gives the task: asynq archives the task, so the ledger must say failed,
// with the outcome left to reconcile when it is reprocessed.
func (a *attempt) exhausted(ctx context.Context, wait *waitError) error {
	phase := a.mayHoldPhase()
	category := tasks.CategoryTransient
	if phase == tasks.PhaseSending {
		category = tasks.CategoryUnknown
	}
	jobErr := tasks.JobError{Code: "attempts_exhausted", Message: wait.reason + "; no attempts left", Category: category}
	if err := a.recordFailure(ctx, tasks.StatusFailed, phase, jobErr); err != nil {
		return err
	}
	a.w.metrics.finished(a.job.Kind, tasks.StatusFailed, jobErr.Code)
	return wait
}

// recordFailure records a failed attempt, fenced by the attempt count. A
// delivery that overtook this one (the job is posted, or a later attempt
// began) owns the outcome: that is not an error.
func (a *attempt) recordFailure(ctx context.Context, status tasks.Status, phase tasks.Phase, jobErr tasks.JobError) error {
	err := a.record(ctx, string(status), func(ctx context.Context) error {
		return a.w.ledger.RecordFailure(ctx, a.job, status, phase, jobErr)
	})
	if errors.Is(err, ledger.ErrPosted) || errors.Is(err, ledger.ErrStale) || errors.Is(err, ledger.ErrCancelled) {
		return nil
	}
	if errors.Is(err, ledger.ErrLossSinceClaim) {
		// The task stays: a later delivery, once the loss window has
		// passed, looks the document up and records what SAP holds.
		a.w.metrics.waited("loss_window")
		return &waitError{reason: err.Error(), after: a.w.settle}
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

// taskError is what a failed attempt returns to asynq, which records its
// text as the task's last error: the Asynq UI shows it in a narrow column,
// so it starts with SAP's code and message, and what the attempt was (the
// call, its category and HTTP status) follows. It unwraps to the SAP error
// (Retry-After, categories) and, for an attempt that ends the job, to
// asynq.SkipRetry.
type taskError struct {
	jobErr tasks.JobError
	cause  error
	skip   bool
}

func (e *taskError) Error() string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(e.jobErr.Code + " " + e.jobErr.Message))
	var se *sap.Error
	switch {
	case errors.As(e.cause, &se):
		fmt.Fprintf(&b, " [sap: %s: %s", se.Op, se.Category)
		if se.HTTPStatus != 0 {
			fmt.Fprintf(&b, ", HTTP %d", se.HTTPStatus)
		}
		if se.Err != nil {
			b.WriteString(": " + se.Err.Error())
		}
		b.WriteString("]")
	case e.cause != nil && e.cause.Error() != e.jobErr.Message:
		b.WriteString(" [" + e.cause.Error() + "]")
	}
	if e.skip {
		b.WriteString(" (not retried)")
	}
	return b.String()
}

func (e *taskError) Unwrap() []error {
	errs := []error{}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	if e.skip {
		errs = append(errs, asynq.SkipRetry)
	}
	return errs
}
