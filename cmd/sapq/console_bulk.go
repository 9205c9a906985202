package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// A bulk action started in the console (reprocess or discard a failure
// group) runs in the background of the console instance that started it,
// in chunks (ledger.Bulk: one job per script, never one script over the
// whole set). Its progress and result are kept in Redis under an operation
// ID, so that the page that follows it can be served by any instance, and
// reloaded. An action cut short (the instance stops) says so; running it
// again picks up what it did not reach, and only that.

// operation is one bulk action as the console shows it.
type operation struct {
	ID       string            `json:"id"`
	Action   ledger.BulkAction `json:"action"`
	What     string            `json:"what"` // the group or the job, as the operator picked it
	Code     string            `json:"code,omitempty"`
	Message  string            `json:"message,omitempty"`
	JobID    string            `json:"job_id,omitempty"`
	Operator string            `json:"operator"`
	Begun    time.Time         `json:"begun"`
	// FailedBefore bounds the selection: running the action again takes
	// only jobs that had failed when this one began.
	FailedBefore time.Time `json:"failed_before"`
	Selected     int       `json:"selected"`
	Done         int       `json:"done"`
	SkippedCount int       `json:"skipped"`
	// Skipped lists the first skipped jobs and why.
	Skipped     []ledger.BulkSkip `json:"skipped_jobs,omitempty"`
	Finished    bool              `json:"finished"`
	Interrupted bool              `json:"interrupted,omitempty"`
	Error       string            `json:"error,omitempty"`
	Ended       time.Time         `json:"ended,omitzero"`
}

// maxSkipsShown bounds the skipped jobs an operation keeps.
const maxSkipsShown = 50

// opTTL is how long an operation's record is kept.
const opTTL = 7 * 24 * time.Hour

func opKey(id string) string { return "sapq:ui:op:" + id }

// bulkRunner runs the console's bulk actions.
type bulkRunner struct {
	ledger *ledger.Ledger
	rdb    redis.UniversalClient
	log    *slog.Logger
	audit  *slog.Logger
	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newBulkRunner(l *ledger.Ledger, rdb redis.UniversalClient, log, audit *slog.Logger) *bulkRunner {
	ctx, cancel := context.WithCancel(context.Background())
	return &bulkRunner{ledger: l, rdb: rdb, log: log, audit: audit, ctx: ctx, cancel: cancel}
}

// Shutdown interrupts the running actions and waits until each has
// recorded how far it came.
func (b *bulkRunner) Shutdown() {
	b.cancel()
	b.wg.Wait()
}

// groupIDs selects the failed jobs of a failure group (one code and
// message) that failed before a time: the ledger's filter selects by code,
// and the message is matched here.
func (b *bulkRunner) groupIDs(ctx context.Context, code, message string, before time.Time) ([]string, error) {
	var ids []string
	err := b.ledger.Each(ctx, ledger.Filter{Status: tasks.StatusFailed, Code: code, FailedBefore: before}, func(j tasks.Job) error {
		if inGroup(j, code, message) {
			ids = append(ids, j.ID)
		}
		return nil
	})
	return ids, err
}

func inGroup(j tasks.Job, code, message string) bool {
	if j.Error == nil {
		return code == "" && message == ""
	}
	return j.Error.Code == code && j.Error.Message == message
}

// start records the operation and runs it in the background.
func (b *bulkRunner) start(ctx context.Context, op operation) (operation, error) {
	if err := b.ctx.Err(); err != nil {
		return op, errors.New("the console is shutting down")
	}
	op.ID = randomToken()[:22]
	op.Begun = time.Now().UTC()
	if op.FailedBefore.IsZero() {
		op.FailedBefore = op.Begun
	}
	if err := b.save(ctx, op); err != nil {
		return op, err
	}
	b.audit.Info("console: bulk action begun", "operator", op.Operator, "action", op.Action, "target", op.What, "operation", op.ID)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.run(op)
	}()
	return op, nil
}

func (b *bulkRunner) run(op operation) {
	ctx := b.ctx
	var ids []string
	var err error
	if op.JobID != "" {
		ids = []string{op.JobID}
	} else {
		ids, err = b.groupIDs(ctx, op.Code, op.Message, op.FailedBefore)
	}
	var res ledger.BulkResult
	if err == nil {
		if len(ids) == 0 {
			op.Finished, op.Ended = true, time.Now().UTC()
			op.Error = "no posting of this group is failed any more: reprocessed, discarded or expired meanwhile"
			b.end(op)
			return
		}
		res, err = b.ledger.Bulk(ctx, op.Action, ledger.Filter{IDs: ids, FailedBefore: op.FailedBefore}, ledger.BulkOptions{
			Progress: func(p ledger.BulkProgress) {
				op.Selected, op.Done, op.SkippedCount = p.Selected, p.Done, p.Skipped
				// A record lost here shows stale progress until the end.
				if err := b.save(context.WithoutCancel(ctx), op); err != nil {
					b.log.Warn("console: bulk progress not recorded", "operation", op.ID, "err", err)
				}
			},
		})
	}
	op.Selected, op.Done, op.SkippedCount = res.Selected, res.Done, len(res.Skipped)
	op.Skipped = res.Skipped[:min(len(res.Skipped), maxSkipsShown)]
	op.Interrupted = res.Interrupted || (err != nil && ctx.Err() != nil)
	if err != nil && ctx.Err() == nil {
		op.Error = err.Error()
	}
	op.Finished, op.Ended = true, time.Now().UTC()
	b.end(op)
}

func (b *bulkRunner) end(op operation) {
	outcome := "done"
	switch {
	case op.Error != "":
		outcome = "error"
	case op.Interrupted:
		outcome = "interrupted"
	}
	b.audit.Info("console: bulk action ended", "operator", op.Operator, "action", op.Action, "target", op.What, "operation", op.ID,
		"outcome", outcome, "selected", op.Selected, "done", op.Done, "skipped", op.SkippedCount, "error", op.Error)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.save(ctx, op); err != nil {
		b.log.Error("console: bulk result not recorded", "operation", op.ID, "err", err)
	}
}

func (b *bulkRunner) save(ctx context.Context, op operation) error {
	data, err := json.Marshal(op)
	if err != nil {
		return err
	}
	return b.rdb.Set(ctx, opKey(op.ID), data, opTTL).Err()
}

var errNoOperation = errors.New("no such operation (or its record expired)")

func (b *bulkRunner) get(ctx context.Context, id string) (operation, error) {
	data, err := b.rdb.Get(ctx, opKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return operation{}, errNoOperation
	}
	if err != nil {
		return operation{}, err
	}
	var op operation
	if err := json.Unmarshal(data, &op); err != nil {
		return operation{}, fmt.Errorf("operation %s: %w", id, err)
	}
	return op, nil
}
