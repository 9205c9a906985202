package ledger

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Waiting for a job to change. Every script that changes a job's status
// publishes the job's ID on eventsChannel, in the same atomic step, so that
// a waiter (get_posting with wait_seconds) learns of it at once instead of
// polling Redis. Pub/sub delivers at most once: a message published while a
// subscriber reconnects is lost, and a status only the queue's state shows
// (retrying, overlaid by Get) has no message of its own. So a waiter also
// reads the job again every waitRecheck; that is the bound of a lost
// notification, not the way waiting works.
const (
	eventsChannel = prefix + "events"
	// MaxWait bounds one Wait.
	MaxWait = time.Minute
)

var waitRecheck = 2 * time.Second

// publish is the Lua function that tells waiters that the job whose ID
// it is given changed; the scripts that change a job's status call it.
const publish = `local function publish(id) redis.call('PUBLISH', '` + eventsChannel + `', id) end
`

// notifier holds one subscription per Ledger and hands its messages to the
// waiters of each job.
type notifier struct {
	rdb       redis.UniversalClient
	once      sync.Once
	closeOnce sync.Once
	ps        *redis.PubSub
	ready     chan struct{} // closed once subscribed (or failed)
	err       error
	mu        sync.Mutex
	waiters   map[string]map[chan struct{}]struct{}
	done      chan struct{}
}

func newNotifier(rdb redis.UniversalClient) *notifier {
	return &notifier{rdb: rdb, ready: make(chan struct{}), waiters: map[string]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// start subscribes, once, and returns when the subscription is confirmed.
func (n *notifier) start(ctx context.Context) error {
	n.once.Do(func() {
		n.ps = n.rdb.Subscribe(context.Background(), eventsChannel)
		go func() {
			defer close(n.ready)
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := n.ps.Receive(sctx); err != nil {
				n.err = err
				return
			}
			go n.dispatch(n.ps.Channel())
		}()
	})
	select {
	case <-n.ready:
		return n.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *notifier) dispatch(ch <-chan *redis.Message) {
	for {
		select {
		case <-n.done:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			n.mu.Lock()
			for w := range n.waiters[m.Payload] {
				select {
				case w <- struct{}{}:
				default: // a notification is pending already
				}
			}
			n.mu.Unlock()
		}
	}
}

func (n *notifier) watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan struct{}]struct{}{}
	}
	n.waiters[id][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.waiters[id], ch)
		if len(n.waiters[id]) == 0 {
			delete(n.waiters, id)
		}
		n.mu.Unlock()
	}
}

func (n *notifier) close() {
	n.closeOnce.Do(func() {
		close(n.done)
		// A notifier never started is marked started, with nothing to close.
		n.once.Do(func() { close(n.ready) })
		if n.ps != nil {
			n.ps.Close()
		}
	})
}

// Wait returns one of the caller's jobs (as Get does) once its status
// differs from what it was when Wait was called, once it is final, or when
// d has passed, whichever comes first; d is at most MaxWait. A job awaiting
// approval waits too: an operator's decision changes it.
func (l *Ledger) Wait(ctx context.Context, caller, id string, d time.Duration) (tasks.Job, error) {
	d = min(d, MaxWait)
	if d <= 0 {
		return l.Get(ctx, caller, id)
	}
	// Subscribed before the first read, so that no change between the
	// read and the wait goes unnoticed.
	var notified <-chan struct{}
	if err := l.notify.start(ctx); err == nil {
		ch, stop := l.notify.watch(id)
		defer stop()
		notified = ch
	} else if ctx.Err() != nil {
		return tasks.Job{}, ctx.Err()
	} else {
		l.log.Warn("job notifications unavailable; waiting by reading the job again", "err", err)
	}
	job, err := l.Get(ctx, caller, id)
	if err != nil || job.Status.Terminal() {
		return job, err
	}
	initial := job.Status
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	recheck := time.NewTicker(waitRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return job, nil
		case <-deadline.C:
			return job, nil
		case <-notified:
		case <-recheck.C:
		}
		now, err := l.Get(ctx, caller, id)
		if err != nil {
			if ctx.Err() != nil {
				return job, nil
			}
			return now, err
		}
		job = now
		if job.Status != initial || job.Status.Terminal() {
			return job, nil
		}
	}
}
