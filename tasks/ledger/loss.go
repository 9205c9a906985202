package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
// server's clock in ms), loss and lossus (when this shard last met a Redis
// that did not write its records, in ms and us, 0 if never) and seq (the shard's write sequence,
// which every gating script advances; see seqWatch). KEYS[1] is the shard's
// meta hash.
const checkServer = serverNow + `local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local runid = ''
local info = redis.pcall('INFO', 'server')
if type(info) == 'string' then
  -- A plain find, then the hex digits: a third of a pattern search's cost.
  local at = string.find(info, 'run_id:', 1, true)
  if at then runid = string.match(info, '^%x+', at + 7) or '' end
end
local shardm = redis.call('HMGET', KEYS[1], 'loss_ms', 'loss_us', 'run_id')
local loss = tonumber(shardm[1] or '0')
local lossus = tonumber(shardm[2] or '0')
if runid ~= '' and shardm[3] ~= runid then
  loss, lossus = now, nowus
  redis.call('HSET', KEYS[1], 'run_id', runid, 'loss_ms', now, 'loss_us', nowus)
end
`

// checkServerAt is checkServer for a script whose meta hash is KEYS[n].
func checkServerAt(n int) string {
	return strings.ReplaceAll(checkServer, "KEYS[1]", "KEYS["+strconv.Itoa(n)+"]")
}

// serverNow defines now, the Redis server's clock in ms. Send times and
// write times are taken from it and compared with it, so that workers on
// machines with skewed clocks agree on how long ago something happened.
//
// nowus is the same clock in microseconds: what a write records as its time
// (written_us) and a loss as its (loss_us), so that a write just after a
// loss is told from one just before (a script takes longer than 1 us).
const serverNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// checkShardScript runs the check alone, for the sweeper: a shard whose
// tasks were all lost would otherwise see no Claim to notice it.
// KEYS: meta. Returns {server now_ms, loss_ms}.
var checkShardScript = redis.NewScript(checkServer + `return {now, loss}`)

// lossStateScript runs the check and answers with the shard's loss and
// write sequence, for a cancel that looks SAP up (Cancel).
// KEYS: meta. Returns {server now_ms, loss_ms, loss_us, seq}.
var lossStateScript = redis.NewScript(checkServer + `return {now, loss, lossus, seq}`)

// lossNowScript records a loss that a process noticed itself (seqWatch).
// KEYS: meta. Returns the loss time, the server's now in ms.
var lossNowScript = redis.NewScript(serverNow + `
redis.call('HSET', KEYS[1], 'loss_ms', now, 'loss_us', nowus)
return now
`)

// seqWatch notices a rollback that kept the server's run_id (a reload of an
// older file into the running server, a restore of old keys): each shard's
// write sequence only grows, so a gating script that started after another
// had completed must see a higher one. A lower one means Redis lost writes.
// Each process remembers, per shard, the highest sequence of a completed
// call; calls in flight at once may complete in any order.
type seqWatch struct {
	mu  sync.Mutex
	max [shardCount]int64
}

// floor is the highest sequence a call that starts now must exceed.
func (w *seqWatch) floor(s shard) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max[s]
}

// observe records a completed call's sequence and reports whether it went
// back below what the call had to exceed. After a rollback the lower
// sequence becomes the new baseline.
func (w *seqWatch) observe(s shard, floor, seq int64) (rolledBack bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= floor {
		w.max[s] = seq
		return true
	}
	w.max[s] = max(w.max[s], seq)
	return false
}

// noticeRollback records in the shard that this process saw its sequence go
// back, so that every process keeps the loss window, and returns the
// window's length from now.
func (l *Ledger) noticeRollback(ctx context.Context, s shard) time.Duration {
	l.log.Warn("Redis lost writes in a ledger shard (its write sequence went back); no call to SAP goes out for the settle time", "shard", s)
	if err := lossNowScript.Run(ctx, l.rdb, []string{s.metaKey()}).Err(); err != nil {
		l.log.Error("recording the Redis loss failed; this process keeps the loss window", "shard", s, "err", err)
	}
	return l.opts.Settle
}

// TrustRedis records the Redis now serving every shard as the one that wrote
// the ledger and ends any loss window. It is for a database known never to
// have held postings (a test's, a new installation that cannot wait Settle
// before its first posting): after a real loss it would switch off the
// protection described above.
func (l *Ledger) TrustRedis(ctx context.Context) error {
	metas := []string{queueMetaKey(l.opts.Queue)}
	for _, s := range allShards() {
		metas = append(metas, s.metaKey())
	}
	for _, meta := range metas {
		if err := checkShardScript.Run(ctx, l.rdb, []string{meta}).Err(); err != nil {
			return fmt.Errorf("ledger: trust redis: %w", err)
		}
		if err := l.rdb.HDel(ctx, meta, "loss_ms", "loss_us").Err(); err != nil {
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
