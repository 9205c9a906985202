package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrRedisNotNew is the class of the error TrustNewRedis returns for a
// database that shows it has held postings.
var ErrRedisNotNew = errors.New("redis holds sapq keys: it is not new, and a loss window it opens must run its course")

// TrustNewRedis starts the ledger on a database that has never held
// postings without the loss window a brand-new database otherwise opens
// (loss.go: an empty database cannot be told from an emptied one, so the
// first gating script records a loss and no call goes out for Settle).
//
// It is for the caller who knows the database is new: a benchmark's private
// redis-server, a new installation whose first posting should not wait. It
// can never switch the protection off after a real loss, because it refuses
// (an error wrapping ErrRedisNotNew) whenever the database shows any sign of
// having been used: a key of the ledger ("sapq:*", which includes the meta
// hashes in which a loss is recorded and the workers' SAP leases) or of its
// asynq queue ("asynq:{<queue>}:*") on any master. Each shard's meta hash is
// then created by one script that refuses if it exists already, so a
// process that noticed a loss in the meantime wins over the trust. What it
// cannot see is a database emptied with nothing written since: that is the
// caller's assertion, which is why the call is explicit and never made by
// the commands that run in production.
//
// It succeeds once per database: afterwards the meta hashes exist and a
// second call refuses.
func (l *Ledger) TrustNewRedis(ctx context.Context) error {
	patterns := []string{prefix + "*", "asynq:{" + l.opts.Queue + "}:*"}
	err := forEachMaster(ctx, l.rdb, func(ctx context.Context, c *redis.Client) error {
		for _, pattern := range patterns {
			var cursor uint64
			for {
				keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
				if err != nil {
					return err
				}
				if len(keys) > 0 {
					return fmt.Errorf("%w (%s holds %s)", ErrRedisNotNew, c.Options().Addr, keys[0])
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: trust new redis: %w", err)
	}
	metas := []string{queueMetaKey(l.opts.Queue)}
	for _, s := range allShards() {
		metas = append(metas, s.metaKey())
	}
	for _, meta := range metas {
		created, err := trustNewScript.Run(ctx, l.rdb, []string{meta}).Int()
		if err != nil {
			return fmt.Errorf("ledger: trust new redis: %w", err)
		}
		if created == 0 {
			return fmt.Errorf("ledger: trust new redis: %w (%s was written meanwhile)", ErrRedisNotNew, meta)
		}
	}
	return nil
}

// trustNewScript records the serving Redis's run_id in a meta hash that
// does not exist yet, so that the gating scripts (checkServer) find the
// Redis that wrote the ledger and record no loss. Where scripts cannot read
// INFO, no loss is ever detected and there is nothing to record.
// KEYS: meta. Returns 1, or 0 if the meta hash exists.
var trustNewScript = redis.NewScript(`if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local info = redis.pcall('INFO', 'server')
local runid = ''
if type(info) == 'string' then runid = string.match(info, 'run_id:(%x+)') or '' end
if runid ~= '' then redis.call('HSET', KEYS[1], 'run_id', runid) end
return 1`)

// forEachMaster runs fn on every master of a Cluster, or on the one server.
func forEachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("ledger: cannot list the masters of a Redis client of type %T", rdb)
	}
}
