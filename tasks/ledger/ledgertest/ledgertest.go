// Package ledgertest puts jobs of a ledger into the states tests start
// from, the way a worker and asynq would have left them, in the spirit of
// River's rivertest: one place that knows the steps, so tests name only
// the outcome they need.
package ledgertest

import (
	"context"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// Refuse records a submitted job as refused by SAP with code and msg, as a
// worker does after a permanent error on its first attempt (claimed, sent,
// refused: nothing posted), and archives its task as asynq would.
func Refuse(tb testing.TB, l *ledger.Ledger, id, code, msg string) {
	tb.Helper()
	ctx := context.Background()
	claimed, err := l.Claim(ctx, id, 0)
	if err != nil {
		tb.Fatal(err)
	}
	sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, tasks.IdentityOf(&claimed.Job, tasks.DefaultDestination).Reference())
	if err != nil {
		tb.Fatal(err)
	}
	if err := l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: code, Message: msg, Category: tasks.CategoryPermanent}); err != nil {
		tb.Fatal(err)
	}
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(id)); err != nil {
		tb.Fatal(err)
	}
}
