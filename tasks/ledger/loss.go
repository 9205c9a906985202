package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis can lose its last writes: a crash with appendfsync everysec loses up
// to a second, a failover to a lagging replica loses the replica's lag, and
// an operator can restore an old copy or empty the database. The ledger may
// then have forgotten that a call to SAP went out (the "sending" record),
// or a whole job, while SAP holds the document or is still processing the
// call.
//
// Two things keep the exactly-once promise through that:
//
//  1. Nothing is sent without a look-up in SAP first (see the worker), and
//     the reference looked up is derived from the submission, so a forgotten
//     job that the agent submits again finds the document SAP holds.
//  2. A look-up proves nothing while a call that the ledger forgot may still
//     be in flight. So the ledger notices when the Redis answering is not the
//     one that wrote its records, and for Settle after that moment no call is
//     sent: every call sent before the loss has ended by then.
//
// The notice is atomic with the decision to send: the scripts that gate a
// call (Claim, BeginSend) read the server's run_id (INFO server), which
// changes whenever Redis restarts and differs between a master and the
// replica that replaces it, and compare it with the run_id stored in the
// shard's meta hash. A rollback restores the old stored run_id; an emptied
// database has none; either way the two differ, the script records the loss
// time in the shard, and every process of every kind sees it there. A clean
// restart is treated the same way: it cannot be told from a crash.
//
// The window is Settle (the SAP timeout plus a margin) and assumes that SAP
// finishes processing any request within it. A brand-new database also
// starts with a window, for it cannot be told from an emptied one.
//
// Where scripts may not call INFO (an embedded Redis such as miniredis, some
// managed services), run_id is unknown and no loss is detected; CheckRedis
// says so at start.

// checkServer is the prelude of the gating scripts. It defines now (the
// server's clock in ms) and loss (when this shard last met a Redis that did
// not write its records, 0 if never). KEYS[1] is the shard's meta hash.
const checkServer = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local runid = ''
local info = redis.pcall('INFO', 'server')
if type(info) == 'string' then runid = string.match(info, 'run_id:(%x+)') or '' end
local loss = tonumber(redis.call('HGET', KEYS[1], 'loss_ms') or '0')
if runid ~= '' and redis.call('HGET', KEYS[1], 'run_id') ~= runid then
  loss = now
  redis.call('HSET', KEYS[1], 'run_id', runid, 'loss_ms', now)
end
`

// checkShardScript runs the check alone, for the sweeper: a shard whose
// tasks were all lost would otherwise see no Claim to notice it.
// KEYS: meta. Returns {server now_ms, loss_ms}.
var checkShardScript = redis.NewScript(checkServer + `return {now, loss}`)

// TrustRedis records the Redis now serving every shard as the one that wrote
// the ledger and ends any loss window. It is for a database known never to
// have held postings (a test's, a new installation that cannot wait Settle
// before its first posting): after a real loss it would switch off the
// protection described above.
func (l *Ledger) TrustRedis(ctx context.Context) error {
	for _, s := range allShards() {
		if err := checkShardScript.Run(ctx, l.rdb, []string{s.metaKey()}).Err(); err != nil {
			return fmt.Errorf("ledger: trust redis: %w", err)
		}
		if err := l.rdb.HDel(ctx, s.metaKey(), "loss_ms").Err(); err != nil {
			return fmt.Errorf("ledger: trust redis: %w", err)
		}
	}
	return nil
}

// lossWait is how much longer a loss window that began at lossMS lasts at
// server time nowMS.
func lossWait(nowMS, lossMS int64, settle time.Duration) time.Duration {
	if lossMS <= 0 {
		return 0
	}
	return max(0, time.Duration(lossMS+settle.Milliseconds()-nowMS)*time.Millisecond)
}
