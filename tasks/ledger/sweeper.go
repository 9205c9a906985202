package ledger

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Sweeper keeps the ledger whole in the background. Like asynq's forwarder
// and recoverer, it is a small component with Start and Shutdown. Each pass,
// in every shard, it
//
//   - enqueues jobs that were recorded but never confirmed enqueued (the
//     process that accepted them died between the two steps, or Redis
//     refused the enqueue);
//   - trims the indexes of jobs whose retention has ended, so that they do
//     not grow without bound;
//   - after a Redis loss (see loss.go), re-enqueues every live job whose
//     queue task is gone: Redis may have kept the job and lost its task;
//   - rejects postings whose approval expired undecided.
//
// Any number of sweepers may run (one per worker); every step is idempotent.
type Sweeper struct {
	ledger   *Ledger
	interval time.Duration
	grace    time.Duration // leave fresh entries to the submitter that wrote them
	done     chan struct{}
	wg       sync.WaitGroup
}

// NewSweeper returns a sweeper that runs every interval and picks up
// unenqueued entries older than grace.
func NewSweeper(l *Ledger, interval, grace time.Duration) *Sweeper {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if grace <= 0 {
		grace = 30 * time.Second
	}
	return &Sweeper{ledger: l, interval: interval, grace: grace, done: make(chan struct{})}
}

// Start runs the sweeper in the background until Shutdown.
func (s *Sweeper) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), s.interval)
				if st, err := s.Sweep(ctx); err != nil {
					s.ledger.log.Warn("sweep failed", "err", err)
				} else if st != (SweepStats{}) {
					s.ledger.log.Info("swept the ledger", "enqueued", st.Enqueued, "trimmed", st.Trimmed, "repaired", st.Repaired, "approvals_expired", st.Expired)
				}
				cancel()
			}
		}
	}()
}

// Shutdown stops the sweeper and waits for a running sweep to end.
func (s *Sweeper) Shutdown() {
	close(s.done)
	s.wg.Wait()
}

// SweepStats says what one pass did.
type SweepStats struct {
	Enqueued int // recorded jobs put into the queue
	Trimmed  int // index entries of expired jobs removed
	Repaired int // live jobs re-enqueued after a Redis loss
	Expired  int // postings rejected because nobody approved them in time
}

// sweepBatch bounds the entries one pass handles per shard and step.
const sweepBatch = 500

// Sweep makes one pass over every shard. An entry that keeps failing does
// not hold up the others; the first error is returned with what was done.
func (s *Sweeper) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	n, firstErr := s.repairQueueLoss(ctx)
	st.Repaired += n
	for _, sh := range allShards() {
		n, err := s.repairAfterLoss(ctx, sh)
		st.Repaired += n
		firstErr = cmp.Or(firstErr, err)
		n, err = s.enqueueRecorded(ctx, sh)
		st.Enqueued += n
		firstErr = cmp.Or(firstErr, err)
		n, err = s.trim(ctx, sh)
		st.Trimmed += n
		firstErr = cmp.Or(firstErr, err)
		n, err = s.expireApprovals(ctx, sh)
		st.Expired += n
		firstErr = cmp.Or(firstErr, err)
	}
	return st, firstErr
}

func (s *Sweeper) enqueueRecorded(ctx context.Context, sh shard) (int, error) {
	l := s.ledger
	cutoff := l.opts.Now().Add(-s.grace)
	ids, err := l.rdb.ZRangeByScore(ctx, sh.unenqueuedKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(cutoff), 10), Count: sweepBatch,
	}).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, id := range ids {
		job, err := l.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			l.rdb.ZRem(ctx, sh.unenqueuedKey(), id)
			continue
		}
		if err == nil {
			err = l.enqueue(ctx, job)
		}
		if err != nil {
			l.log.Warn("sweep: job not enqueued", "job_id", id, "err", err)
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		n++
	}
	return n, firstErr
}

// trim removes the index entries of jobs whose retention has ended. The job
// hash and its idempotency key expire on their own; the indexes are sorted
// sets, whose members do not.
func (s *Sweeper) trim(ctx context.Context, sh shard) (int, error) {
	l := s.ledger
	members, err := l.rdb.ZRangeByScore(ctx, sh.expiryKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(l.opts.Now()), 10), Count: sweepBatch,
	}).Result()
	if err != nil || len(members) == 0 {
		return 0, err
	}
	pipe := l.rdb.Pipeline()
	for _, m := range members {
		id, hash, err := parseExpiryMember(m)
		if err == nil {
			pipe.ZRem(ctx, sh.jobsKey(), id)
			pipe.ZRem(ctx, sh.callerKey(hash), id)
			pipe.ZRem(ctx, sh.failedKey(), id)
		}
		pipe.ZRem(ctx, sh.expiryKey(), m)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return len(members), nil
}

// repairAfterLoss checks the shard's Redis (as Claim does) and, once after
// every loss, re-enqueues the shard's live jobs whose task is gone.
func (s *Sweeper) repairAfterLoss(ctx context.Context, sh shard) (int, error) {
	l := s.ledger
	res, err := checkShardScript.Run(ctx, l.rdb, []string{sh.metaKey()}).Int64Slice()
	if err != nil {
		return 0, err
	}
	loss := res[1]
	if loss == 0 {
		return 0, nil
	}
	repaired, err := l.rdb.HGet(ctx, sh.metaKey(), "repaired_ms").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	if repaired >= loss {
		return 0, nil
	}
	l.log.Warn("Redis lost writes in a ledger shard; re-enqueueing its live jobs whose tasks are gone", "shard", sh, "loss_ms", loss)
	n, err := s.requeueLive(ctx, sh)
	if err != nil {
		return n, err
	}
	// Only a complete pass counts; a failed one is tried again next time.
	return n, l.rdb.HSet(ctx, sh.metaKey(), "repaired_ms", loss).Err()
}

// repairQueueLoss watches the Redis that holds asynq's queue. On Redis
// Cluster it may be another node than a shard's: a loss there loses tasks of
// jobs in every shard, and no shard's own check would see it. It keeps a
// meta hash in the queue's hash slot ("{postings}"), checked like a shard's,
// and after a loss re-enqueues the live jobs of every shard.
func (s *Sweeper) repairQueueLoss(ctx context.Context) (int, error) {
	l := s.ledger
	meta := queueMetaKey(l.opts.Queue)
	res, err := checkShardScript.Run(ctx, l.rdb, []string{meta}).Int64Slice()
	if err != nil {
		return 0, err
	}
	loss := res[1]
	if loss == 0 {
		return 0, nil
	}
	repaired, err := l.rdb.HGet(ctx, meta, "repaired_ms").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	if repaired >= loss {
		return 0, nil
	}
	l.log.Warn("the Redis holding the queue lost writes; re-enqueueing live jobs whose tasks are gone", "queue", l.opts.Queue, "loss_ms", loss)
	n := 0
	for _, sh := range allShards() {
		m, err := s.requeueLive(ctx, sh)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, l.rdb.HSet(ctx, meta, "repaired_ms", loss).Err()
}

func (s *Sweeper) requeueLive(ctx context.Context, sh shard) (int, error) {
	l := s.ledger
	n, cursor := 0, "+"
	for {
		ids, err := l.rdb.ZRevRangeByLex(ctx, sh.jobsKey(), &redis.ZRangeBy{Max: cursor, Min: "-", Count: sweepBatch}).Result()
		if err != nil || len(ids) == 0 {
			return n, err
		}
		cursor = "(" + ids[len(ids)-1]
		jobs, err := l.loadMany(ctx, ids)
		if err != nil {
			return n, err
		}
		for _, job := range jobs {
			if job.ID == "" || !job.Status.InQueue() {
				continue
			}
			_, err := l.inspector.GetTaskInfo(l.opts.Queue, TaskID(job.ID))
			if err == nil {
				continue
			}
			if !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
				return n, err
			}
			if err := l.enqueue(ctx, job); err != nil {
				return n, err
			}
			l.log.Info("re-enqueued a live job whose task was lost", "job_id", job.ID, "status", job.Status)
			n++
		}
	}
}
