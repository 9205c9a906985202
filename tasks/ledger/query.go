package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Get returns one of the caller's jobs; caller "" reads any job (operators).
// For a job waiting to be retried it fills NextAttemptAt from the queue, and
// a job whose task the queue has archived without the worker recording an
// end (a crash on the last attempt) is reported as failed.
func (l *Ledger) Get(ctx context.Context, caller, id string) (tasks.Job, error) {
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	if caller != "" && job.Caller != caller {
		return tasks.Job{}, ErrNotFound
	}
	if job.Status.InQueue() {
		job = l.overlayQueueState(ctx, job)
	}
	return l.overlaySuspicion(ctx, job), nil
}

// overlaySuspicion reports a "failed, nothing posted" that the ledger wrote
// before its shard's last Redis loss as an unknown outcome: the writes Redis
// lost may have held a reprocess and a call that SAP committed. The next
// look-up in SAP (a reprocess) settles it; the record itself stays, for
// only a look-up may change it.
func (l *Ledger) overlaySuspicion(ctx context.Context, job tasks.Job) tasks.Job {
	if job.Status != tasks.StatusFailed || job.Phase != tasks.PhasePending || job.Error == nil ||
		job.Error.Category == tasks.CategoryUnknown || !l.writtenBeforeLoss(ctx, job) {
		return job
	}
	e := *job.Error
	e.Category = tasks.CategoryUnknown
	e.Message += "; Redis lost writes since this was recorded, so SAP may hold the document after all: sapq looks it up when the posting is reprocessed"
	job.Error = &e
	return job
}

// overlayQueueState completes a live job's state from its queue task: when
// it will be retried next, or that no task will run it any more.
//
// The job and its task are read one after the other while a worker may be
// moving both, so the job is read again once the task's state is known. A
// handler records its outcome before asynq archives or retries the task, so
// the second read is at least as new as the task: a job read just before its
// record can meet a task that is already archived, and only a job still live
// on the second read is reported stranded. A retry time is shown only if the
// job did not change meanwhile; otherwise an attempt began or ended between
// the reads, and the fresh record stands alone.
func (l *Ledger) overlayQueueState(ctx context.Context, job tasks.Job) tasks.Job {
	info, err := l.inspector.GetTaskInfo(l.opts.Queue, TaskID(job.ID))
	var stranded string // why no task will run the job, if none will
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		// Deleted by hand or trimmed from the archive.
		stranded = "its queue task is gone (deleted or trimmed); reprocess it to run it again"
	case err != nil:
		// The queue cannot be read now: the ledger's state stands.
		return job
	case info.State == asynq.TaskStateArchived:
		stranded = "the last attempt ended without a result: " + firstLine(info.LastErr, 200)
	case info.State == asynq.TaskStateRetry, info.State == asynq.TaskStateScheduled:
		now, ok := l.reload(ctx, job)
		if !ok || !sameAttempt(job, now) {
			return now
		}
		now.NextAttemptAt = info.NextProcessAt.UTC()
		if now.Status == tasks.StatusRunning {
			// The handler asked to wait without recording (an earlier call
			// still settling): the job waits for its next attempt.
			now.Status = tasks.StatusRetrying
		}
		return now
	default:
		return job
	}
	// Nothing will run the job until an operator reprocesses it, unless it
	// is live and marked for enqueueing: just recorded, or just reprocessed
	// while its old task is still archived.
	now, ok := l.reload(ctx, job)
	if ok && !l.awaitingEnqueue(ctx, now.ID) {
		l.strand(ctx, &now, stranded)
	}
	return now
}

// reload reads the job again after its task's state was read, and reports
// whether it is still live. When it cannot be read, the earlier copy stands
// and is not judged.
func (l *Ledger) reload(ctx context.Context, job tasks.Job) (tasks.Job, bool) {
	now, err := l.load(ctx, job.ID)
	if err != nil {
		return job, false
	}
	return now, now.Status.InQueue()
}

// firstLine shortens what asynq recorded as a task's last error (a panic
// carries a stack with file paths) to one line of at most max bytes.
func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		for max > 0 && !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max] + "…"
	}
	return s
}

// sameAttempt reports whether two reads of a job saw the same state.
func sameAttempt(a, b tasks.Job) bool {
	return a.Status == b.Status && a.Phase == b.Phase && a.Attempts == b.Attempts && a.UpdatedAt.Equal(b.UpdatedAt)
}

// strand reports a live job that no task will run as failed, with the
// outcome left to reconciliation if a call may have gone out, or if the
// ledger wrote the job before its shard's last Redis loss (its "pending"
// may then be older than what SAP holds).
func (l *Ledger) strand(ctx context.Context, job *tasks.Job, why string) {
	job.Status = tasks.StatusFailed
	category := tasks.CategoryUnknown
	if job.Phase == tasks.PhasePending && !l.writtenBeforeLoss(ctx, *job) {
		category = tasks.CategoryTransient
	}
	last := ""
	if job.Error != nil {
		last = "; last error: " + strings.TrimSpace(job.Error.Code+" "+job.Error.Message)
	}
	job.Error = &tasks.JobError{Code: "attempts_exhausted", Message: why + last, Category: category}
}

// writtenBeforeLoss reports whether the job's state was written before its
// shard's last Redis loss (or cannot be told: then it is taken to be).
func (l *Ledger) writtenBeforeLoss(ctx context.Context, job tasks.Job) bool {
	k, ok := keysOf(job.ID)
	if !ok {
		return true
	}
	loss, err := l.rdb.HGet(ctx, k.meta(), "loss_us").Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return false
	case err != nil:
		return true
	}
	return !job.WrittenAt.After(time.UnixMicro(loss))
}

// ListFilter selects jobs for List.
type ListFilter struct {
	Status tasks.Status
	Kind   tasks.Kind
	Limit  int    // default 20, at most 100
	Cursor string // NextCursor of the previous page
}

// Page is one page of jobs, newest first.
type Page struct {
	Jobs       []tasks.Job
	NextCursor string // "" on the last page
}

const (
	defaultLimit = 20
	maxLimit     = 100
	// scanBudget bounds how many index entries one List call reads while
	// filtering, so a rare status cannot make a call scan everything.
	scanBudget = 2000
)

// List returns the caller's jobs newest first; caller "" lists every job.
// The indexes are kept per shard; a page merges the shards' newest entries.
func (l *Ledger) List(ctx context.Context, caller string, f ListFilter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = defaultLimit
	}
	f.Limit = min(f.Limit, maxLimit)
	if f.Status != "" && !f.Status.Valid() {
		return Page{}, fmt.Errorf("unknown status %q", f.Status)
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return Page{}, fmt.Errorf("unknown kind %q", f.Kind)
	}
	indexes := make([]string, 0, shardCount)
	for _, s := range allShards() {
		if caller == "" {
			indexes = append(indexes, s.jobsKey())
		} else {
			indexes = append(indexes, s.callerKey(callerHash(caller)))
		}
	}
	var page Page
	cursor, scanned := f.Cursor, 0
	for len(page.Jobs) < f.Limit && scanned < scanBudget {
		batch := f.Limit - len(page.Jobs) + 1
		ids, err := l.newest(ctx, indexes, cursor, batch)
		if err != nil {
			return Page{}, err
		}
		if len(ids) == 0 {
			return page, nil
		}
		scanned += len(ids)
		jobs, err := l.loadMany(ctx, ids)
		if err != nil {
			return Page{}, err
		}
		for i, id := range ids {
			cursor = id
			job, ok := jobs[i], jobs[i].ID != ""
			if !ok {
				continue // expired past retention; the sweeper trims the index
			}
			if job.Status.InQueue() {
				job = l.overlayQueueState(ctx, job)
			}
			job = l.overlaySuspicion(ctx, job)
			if (f.Status != "" && job.Status != f.Status) || (f.Kind != "" && job.Kind != f.Kind) {
				continue
			}
			if len(page.Jobs) == f.Limit {
				// One more match exists: the page is full and has a successor.
				page.NextCursor = page.Jobs[len(page.Jobs)-1].ID
				return page, nil
			}
			page.Jobs = append(page.Jobs, job)
		}
	}
	if scanned >= scanBudget {
		// The budget ran out before the page filled: more may match further
		// on, so the caller continues from the last entry read, even with an
		// empty page in hand.
		page.NextCursor = cursor
	}
	return page, nil
}

// newest returns the n newest job IDs below cursor across the indexes: each
// index's n newest, merged. Job IDs are time-ordered, so lexical order is
// age.
func (l *Ledger) newest(ctx context.Context, indexes []string, cursor string, n int) ([]string, error) {
	max := "+"
	if cursor != "" {
		max = "(" + cursor
	}
	pipe := l.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(indexes))
	for i, idx := range indexes {
		cmds[i] = pipe.ZRevRangeByLex(ctx, idx, &redis.ZRangeBy{Max: max, Min: "-", Count: int64(n)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, l.ctxErr(ctx, err)
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.Val()...)
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	return ids[:min(n, len(ids))], nil
}

// loadMany reads jobs in one round trip; a job that no longer exists comes
// back as the zero Job.
func (l *Ledger) loadMany(ctx context.Context, ids []string) ([]tasks.Job, error) {
	pipe := l.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		k, _ := keysOf(id)
		cmds[i] = pipe.HGetAll(ctx, k.job())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, l.ctxErr(ctx, err)
	}
	jobs := make([]tasks.Job, len(ids))
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		job, err := decodeJob(c.Val())
		if err != nil {
			return nil, err
		}
		jobs[i] = job
	}
	return jobs, nil
}

// SAPLookup tells whether SAP holds a document under a job's reference
// (the look-up the worker makes before every call). *sap.Destinations
// implements it.
type SAPLookup interface {
	HoldsDocument(ctx context.Context, job tasks.Job) (bool, error)
}

// Cancel withdraws one of the caller's jobs while SAP holds no document for
// it and no call is in flight: awaiting approval, queued, waiting to retry after an attempt that
// certainly posted nothing, or failed that way. A cancelled job is never sent
// and cannot be reprocessed, so an agent that corrects a rejected document
// can withdraw the old job before submitting the new one. A job whose last
// call's outcome is unknown, or that a worker is calling SAP for, cannot be
// cancelled. Cancelling a cancelled job answers with it again.
//
// A job never sent (no attempt yet) is unverified (worker/model FIX 5): SAP
// may hold a document under its reference from a job of the same key that
// the ledger forgot (a Redis loss, or the retention expiry of a posted job
// before the agent submitted the key again). It is cancelled only after
// sap, outside any loss window, finds nothing under the reference, and only
// if meanwhile no attempt began and Redis lost nothing (the cancel script
// checks both). Without sap, or inside a loss window, it is not cancelled
// now: the worker looks SAP up before sending, and a later cancel may
// succeed.
func (l *Ledger) Cancel(ctx context.Context, caller, id string, sap SAPLookup) (tasks.Job, error) {
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	if caller != "" && job.Caller != caller {
		return tasks.Job{}, ErrNotFound
	}
	k, _ := keysOf(id)
	lookedUp, lossUS, floor := "0", int64(0), int64(0)
	if job.Attempts == 0 && job.Status != tasks.StatusCancelled {
		if lossUS, floor, err = l.verifyUnsent(ctx, k.shard, job, sap); err != nil {
			return tasks.Job{}, err
		}
		lookedUp = "1"
	}
	res, err := cancelScript.Run(ctx, l.rdb, []string{k.meta(), k.job(), idemKeyOf(job.Caller, job.IdempotencyKey), k.expiry(), k.approvals(), k.failed()},
		caller, ms(l.opts.Now()), l.opts.Retention.Milliseconds(), expiryMember(id, job.Caller), lookedUp, lossUS, floor).Text()
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, err)
	}
	switch res {
	case "ok":
	case "missing":
		return tasks.Job{}, ErrNotFound
	default:
		return tasks.Job{}, fmt.Errorf("%w: it is %s", ErrNotCancellable, describe(res))
	}
	// The worker re-checks the ledger before calling SAP, so deleting the
	// queued task is only tidiness.
	if err := l.inspector.DeleteTask(l.opts.Queue, TaskID(id)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		l.log.Debug("cancel: task not deleted from queue", "job_id", id, "err", err)
	}
	l.rdb.ZRem(ctx, k.unenqueued(), id)
	return l.load(ctx, id)
}

// verifyUnsent looks a job that was never sent up in SAP before a cancel,
// outside any loss window. It returns the shard's last loss (us) and write
// sequence as they stood before the look-up: the cancel script refuses if
// either moved, for then the look-up may have missed a call the ledger
// forgot. worker/model/exactlyonce.pml models this step (the Agent's FIX 5
// branch); they change together.
func (l *Ledger) verifyUnsent(ctx context.Context, s shard, job tasks.Job, sap SAPLookup) (lossUS, seq int64, err error) {
	if sap == nil {
		return 0, 0, fmt.Errorf("%w: it is %s", ErrNotCancellable, describe("unverified"))
	}
	floor := l.seq.floor(s)
	res, err := lossStateScript.Run(ctx, l.rdb, []string{s.metaKey()}).Slice()
	if err != nil {
		return 0, 0, l.ctxErr(ctx, fmt.Errorf("ledger: cancel %s: %w", job.ID, err))
	}
	now, _ := res[0].(int64)
	loss, _ := res[1].(int64)
	lossUS, _ = res[2].(int64)
	seq, _ = res[3].(int64)
	wait := lossWait(now, loss, l.opts.Settle)
	if l.seq.observe(s, floor, seq) {
		wait = l.noticeRollback(ctx, s)
	}
	if wait > 0 {
		return 0, 0, fmt.Errorf("%w now: it was never sent, and Redis lost writes recently; SAP can be checked for a document under its reference only after every call the ledger may have forgotten has ended, in %s; try again then", ErrNotCancellable, wait.Round(time.Second))
	}
	found, err := sap.HoldsDocument(ctx, job)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("%w now: it was never sent, and SAP could not be checked for a document under its reference (%v); try again later", ErrNotCancellable, err)
	case found:
		return 0, 0, fmt.Errorf("%w: SAP holds a document under its reference (from an earlier job of the same idempotency key); a worker records it", ErrNotCancellable)
	}
	return lossUS, seq, nil
}

func describe(statusPhase string) string {
	switch statusPhase {
	case "running/sending", "retrying/sending", "failed/sending", "queued/sending":
		return "possibly already posted in SAP (a call is in flight or its outcome is unknown)"
	case "succeeded/posted", "running/posted":
		return "already posted in SAP"
	case "running/pending":
		return "being sent to SAP right now"
	case "unverified":
		return "never sent, and SAP may hold a document under its reference from an earlier job of the same idempotency key; this server cannot check SAP, so it cannot be cancelled now (the worker checks SAP before sending)"
	case "changed":
		return "changed while SAP was checked (an attempt began, or Redis lost writes); try again"
	case "suspect":
		return "possibly already posted in SAP: Redis lost writes since its state was recorded; it can be cancelled once a worker has looked it up in SAP"
	}
	return statusPhase
}
