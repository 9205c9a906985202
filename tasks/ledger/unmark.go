package ledger

import (
	"context"
	"sync"
)

// unmarker clears the unenqueued marks of submitted jobs once asynq has
// their tasks, by group commit: while one pipelined ZREM is on its way, the
// submissions confirmed meanwhile queue their marks, and the next round trip
// clears them all. Each Submit still returns only once its mark is cleared,
// as before (a mark outliving its Submit would be mistaken for one a crash
// left, and could clear a mark set again since); under concurrency the
// round trips and commands per submission fall below one.
type unmarker struct {
	l        *Ledger
	mu       sync.Mutex
	pending  map[shard][]string
	waiters  []chan error
	flushing bool
}

func newUnmarker(l *Ledger) *unmarker { return &unmarker{l: l, pending: map[shard][]string{}} }

// clear removes job k.id's mark, in the next batch.
func (u *unmarker) clear(ctx context.Context, k jobKeys) error {
	done := make(chan error, 1)
	u.mu.Lock()
	u.pending[k.shard] = append(u.pending[k.shard], k.id)
	u.waiters = append(u.waiters, done)
	lead := !u.flushing
	u.flushing = true
	u.mu.Unlock()
	if lead {
		u.flush(ctx)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The mark stays or goes with the batch; either is safe.
		return ctx.Err()
	}
}

// flush sends one batch: the leader's own mark and whatever queued before
// it took the batch. Marks that queue during the round trip are the next
// leader's, so that no submission waits for more than two batches.
func (u *unmarker) flush(ctx context.Context) {
	u.mu.Lock()
	batch, waiters := u.pending, u.waiters
	u.pending, u.waiters = make(map[shard][]string, len(batch)), nil
	u.mu.Unlock()
	pipe := u.l.rdb.Pipeline()
	for s, ids := range batch {
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		pipe.ZRem(context.WithoutCancel(ctx), s.unenqueuedKey(), members...)
	}
	_, err := pipe.Exec(context.WithoutCancel(ctx))
	for _, w := range waiters {
		w <- err
	}
	u.mu.Lock()
	if len(u.waiters) == 0 {
		u.flushing = false
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	go u.flush(context.WithoutCancel(ctx))
}
