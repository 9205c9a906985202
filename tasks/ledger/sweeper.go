package ledger

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sweeper enqueues jobs that were recorded but never confirmed enqueued: the
// process that accepted them died between the two steps, or Redis refused
// the enqueue. Like asynq's forwarder and recoverer, it is a small component
// with Start and Shutdown.
type Sweeper struct {
	ledger   *Ledger
	interval time.Duration
	grace    time.Duration // leave fresh entries to the submitter that wrote them
	done     chan struct{}
	wg       sync.WaitGroup
}

// NewSweeper returns a sweeper that runs every interval and picks up entries
// older than grace.
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
				if n, err := s.Sweep(ctx); err != nil {
					s.ledger.log.Warn("sweep failed", "err", err)
				} else if n > 0 {
					s.ledger.log.Info("swept unenqueued jobs into the queue", "count", n)
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

// Sweep enqueues up to 100 overdue unenqueued jobs and reports how many.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	l := s.ledger
	cutoff := l.opts.Now().Add(-s.grace)
	ids, err := l.rdb.ZRangeByScore(ctx, unenqueuedKey, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(cutoff), 10), Count: 100,
	}).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, id := range ids {
		// One entry that keeps failing must not hold up the others.
		job, err := l.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			l.rdb.ZRem(ctx, unenqueuedKey, id)
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
