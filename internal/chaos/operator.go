package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// reprocessUnknown does what the promise asks of an operator after a Redis
// loss: a failed job whose state was written before the loss reads as an
// outcome unknown ("SAP may hold the document after all"), because the
// ledger cannot tell whether lost writes had reprocessed and sent it. Such a
// failure is honest but not an end: the operator reprocesses it, the worker
// looks SAP up first and either adopts the document or gets SAP's refusal
// again. The run then checks the jobs as they end after that, so a failure
// that stayed unknown, or a reprocess that posted twice, is a breach.
func (r *run) reprocessUnknown(ctx context.Context, keys []*keyRun) (int, error) {
	var ids []string
	for _, k := range keys {
		k.mu.Lock()
		p := k.out.final
		k.mu.Unlock()
		if p != nil && p.Status == tasks.StatusFailed && p.Error != nil && p.Error.Category == tasks.CategoryUnknown {
			ids = append(ids, p.JobID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.redis.addr()})
	defer rdb.Close()
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: r.opts.ReconcileAfter, Logger: r.log})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	for _, id := range ids {
		for {
			_, err := l.Reprocess(ctx, id)
			if errors.Is(err, ledger.ErrStillFinishing) && sleep(ctx, 250*time.Millisecond) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("chaos: reprocess %s as an operator would: %w", id, err)
			}
			break
		}
	}
	return len(ids), nil
}
