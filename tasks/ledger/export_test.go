package ledger

import (
	"context"
	"testing"
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

// TrustRedis records the Redis serving every shard as the one that wrote
// the ledger, as if it had served it all along: tests that are not about a
// Redis loss start without the loss window a fresh database opens.
func TrustRedis(t testing.TB, l *Ledger) {
	t.Helper()
	for _, s := range allShards() {
		if err := checkShardScript.Run(context.Background(), l.rdb, []string{s.metaKey()}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.rdb.HDel(context.Background(), s.metaKey(), "loss_ms").Err(); err != nil {
			t.Fatal(err)
		}
	}
}
