package worker

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A worker that dies (SIGKILL, OOM, a lost machine) leaves its tasks active
// in asynq. asynq gives them back only when their lease is 30 s past its end
// (to allow for clock skew), and looks once a minute: a killed worker's
// postings wait 60 s to 2 min before another worker runs them.
//
// The recoverer shortens that. asynq's heartbeater renews the lease of every
// task a live server runs every 5 s, to 30 s from then; a lease that has not
// been renewed for Options.RecoverAfter (default 15 s, three heartbeats)
// belongs to a server that stopped beating. The recoverer puts such a task
// back at the head of its queue, as asynq's own graceful shutdown does
// (Requeue), where any worker picks it up at once.
//
// That is safe however wrong the guess: a delivery of a task that another
// attempt still runs (a stalled server, a clock skewed by more than
// RecoverAfter minus 5 s) is fenced by the ledger like any duplicate
// delivery. Its claim finds the job sending and waits out the settle time,
// it looks the document up in SAP before anything is sent, and BeginSend's
// compare-and-set lets only one of two attempts send (doc.go). The early
// recovery changes when a job runs again, never whether it is sent twice.
//
// A requeue spends no retry, so that a task which kills every worker that
// runs it cannot loop for ever, each task is recovered this way at most
// maxRecoveries times (counted in its asynq hash); after that it is left to
// asynq's recoverer, which counts retries and archives the task when they
// are spent.

// asynqLease is asynq's lease duration (internal/rdb.LeaseDuration in
// v0.26.0): a task's lease ends this long after its last renewal.
const asynqLease = 30 * time.Second

// maxRecoveries bounds the requeues of one task by recoverers.
const maxRecoveries = 5

// recoverBatch bounds the tasks one pass requeues.
const recoverBatch = 1000

// recoverScript requeues the active tasks of a queue whose lease ended
// before ARGV[1] (Unix seconds, as asynq scores leases). An entry of a task
// that is no longer active (it finished meanwhile) is dropped from the
// lease set; asynq would otherwise skip it for ever. KEYS: lease, active,
// pending. ARGV: cutoff, task key prefix, most recoveries, batch.
// Returns the requeued task IDs.
var recoverScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local moved = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  if tonumber(redis.call('HGET', key, 'sapq_recovered') or '0') < tonumber(ARGV[3]) then
    if redis.call('LREM', KEYS[2], 0, id) == 0 then
      redis.call('ZREM', KEYS[1], id)
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('RPUSH', KEYS[3], id)
      redis.call('HSET', key, 'state', 'pending')
      redis.call('HINCRBY', key, 'sapq_recovered', 1)
      moved[#moved + 1] = id
    end
  end
end
return moved
`)

// recoverer requeues the tasks of dead servers (see above).
type recoverer struct {
	rdb      redis.UniversalClient
	queue    string
	after    time.Duration // how long a lease may go unrenewed
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	done     chan struct{}
	wg       sync.WaitGroup
}

func newRecoverer(rdb redis.UniversalClient, queue string, after time.Duration, log *slog.Logger) *recoverer {
	// Look a few times within the allowance, so that a task is back within
	// about RecoverAfter of its last renewal.
	interval := min(max(after/8, 500*time.Millisecond), 5*time.Second)
	return &recoverer{rdb: rdb, queue: queue, after: after, interval: interval, now: time.Now, log: log, done: make(chan struct{})}
}

func (r *recoverer) start() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), r.interval)
				if ids, err := r.pass(ctx); err != nil {
					r.log.Warn("recovering the tasks of dead workers failed", "err", err)
				} else if len(ids) > 0 {
					r.log.Warn("requeued tasks whose worker stopped renewing their lease (a killed or stalled worker); each is reconciled with SAP before anything is sent",
						"tasks", len(ids), "unrenewed_for", r.after, "task_ids", ids)
				}
				cancel()
			}
		}
	}()
}

func (r *recoverer) shutdown() {
	close(r.done)
	r.wg.Wait()
}

// pass requeues the tasks whose lease has not been renewed for r.after.
func (r *recoverer) pass(ctx context.Context) ([]string, error) {
	// A lease renewed at time x ends at x + asynqLease: unrenewed since
	// before now - after means it ends before now + asynqLease - after.
	cutoff := r.now().Add(asynqLease - r.after).Unix()
	q := "asynq:{" + r.queue + "}:"
	return recoverScript.Run(ctx, r.rdb, []string{q + "lease", q + "active", q + "pending"},
		strconv.FormatInt(cutoff, 10), q+"t:", maxRecoveries, recoverBatch).StringSlice()
}
