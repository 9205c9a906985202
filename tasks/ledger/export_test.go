package ledger

import (
	"context"
	"testing"
	"time"
)

// OverlayQueueState lets tests drive the race between a reader and a
// finishing handler step by step.
var OverlayQueueState = (*Ledger).overlayQueueState

// Keys of a job, for tests that play a crash or a damaged record.
func JobKey(id string) string           { k, _ := keysOf(id); return k.job() }
func UnenqueuedKey(id string) string    { k, _ := keysOf(id); return k.unenqueued() }
func MetaKey(id string) string          { k, _ := keysOf(id); return k.meta() }
func IdemKey(caller, key string) string { return idemKeyOf(caller, key) }

// Shards is the number of shards, for tests that cover them all.
const Shards = shardCount

// ShardOfJob is the shard a job ID names.
func ShardOfJob(id string) int { s, _ := shardOfJob(id); return int(s) }

// TrustRedis starts a test without the loss window a fresh database opens.
func TrustRedis(t testing.TB, l *Ledger) {
	t.Helper()
	if err := l.TrustRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// NoWaitRecheck leaves Wait to notifications alone for the test.
func NoWaitRecheck(t testing.TB) {
	old := waitRecheck
	waitRecheck = time.Hour
	t.Cleanup(func() { waitRecheck = old })
}

// BuildTaskPayload encodes a task's payload as Submit does.
var BuildTaskPayload = buildTaskPayload
