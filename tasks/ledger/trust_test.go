package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// untrustedLedger is a ledger on a fresh database, without the tests'
// TrustRedis: as a production process meets it.
func untrustedLedger(t *testing.T) (*ledger.Ledger, redis.UniversalClient) {
	t.Helper()
	rdb, _ := redisSrv.NewDB(t)
	// A settle time far beyond the test's: a loss window shows as a wait.
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return l, rdb
}

// lossWait submits a posting and claims it: the loss window the claim
// reports.
func lossWait(t *testing.T, l *ledger.Ledger, key string) time.Duration {
	t.Helper()
	ctx := context.Background()
	job, _, err := l.Submit(ctx, "alice", taskstest.JournalEntry(key))
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return claimed.LossWait
}

// A new database is trusted: the first claim has no loss window, and the
// next posting's does not either.
func TestTrustNewRedisEndsTheFreshWindow(t *testing.T) {
	l, _ := untrustedLedger(t)
	if err := l.TrustNewRedis(context.Background()); err != nil {
		t.Fatalf("TrustNewRedis on a new database: %v", err)
	}
	for _, key := range []string{"je-1", "je-2"} {
		if w := lossWait(t, l, key); w != 0 {
			t.Fatalf("claim of %s after TrustNewRedis: loss wait %v, want none", key, w)
		}
	}
	// Once is all: the database is no longer new.
	if err := l.TrustNewRedis(context.Background()); !errors.Is(err, ledger.ErrRedisNotNew) {
		t.Fatalf("second TrustNewRedis = %v, want ErrRedisNotNew", err)
	}
}

// Without it, a new database opens the window (the behaviour it exists
// for): the control of the test above.
func TestNewRedisOpensALossWindow(t *testing.T) {
	l, _ := untrustedLedger(t)
	if w := lossWait(t, l, "je-1"); w <= 0 {
		t.Fatalf("claim on a new, untrusted database: loss wait %v, want the settle time", w)
	}
}

// Any sign that the database was used refuses the trust and leaves the
// loss window in place: a job recorded, a loss already noticed in a meta
// hash (an emptied database a sweeper has seen), a task of the queue.
func TestTrustNewRedisRefusesAUsedDatabase(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		use  func(t *testing.T, l *ledger.Ledger, rdb redis.UniversalClient)
	}{
		{"a job recorded", func(t *testing.T, l *ledger.Ledger, rdb redis.UniversalClient) {
			if _, _, err := l.Submit(ctx, "alice", taskstest.JournalEntry("before")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a loss noticed", func(t *testing.T, l *ledger.Ledger, rdb redis.UniversalClient) {
			if _, err := ledger.NewSweeper(l, time.Hour, time.Hour).Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"a task of the queue", func(t *testing.T, l *ledger.Ledger, rdb redis.UniversalClient) {
			c := asynq.NewClientFromRedisClient(rdb)
			if _, err := c.Enqueue(asynq.NewTask("posting:journal_entry", []byte("{}")), asynq.Queue(l.Queue())); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, rdb := untrustedLedger(t)
			tc.use(t, l, rdb)
			if err := l.TrustNewRedis(ctx); !errors.Is(err, ledger.ErrRedisNotNew) {
				t.Fatalf("TrustNewRedis after %s = %v, want ErrRedisNotNew", tc.name, err)
			}
			if w := lossWait(t, l, "after"); w <= 0 {
				t.Fatalf("claim after a refused trust: loss wait %v, want the window kept", w)
			}
		})
	}
}
