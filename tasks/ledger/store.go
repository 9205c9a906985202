package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Hash fields of sapq:job:<id>.
const (
	fID, fCaller, fKind, fKey, fFingerprint, fPayload = "id", "caller", "kind", "key", "fingerprint", "payload"
	fStatus, fPhase, fAttempts                        = "status", "phase", "attempts"
	fCreated, fUpdated, fSendStarted                  = "created_ms", "updated_ms", "send_started_ms"
	fResult, fError                                   = "result", "error"
)

func (l *Ledger) load(ctx context.Context, id string) (tasks.Job, error) {
	m, err := l.rdb.HGetAll(ctx, jobKey(id)).Result()
	if err != nil {
		return tasks.Job{}, l.ctxErr(ctx, fmt.Errorf("ledger: load %s: %w", id, err))
	}
	if len(m) == 0 {
		return tasks.Job{}, ErrNotFound
	}
	return decodeJob(m)
}

// decodeFlat decodes a job from HGETALL's reply inside a script.
func decodeFlat(v any) (tasks.Job, error) {
	flat, ok := v.([]any)
	if !ok || len(flat) == 0 || len(flat)%2 != 0 {
		return tasks.Job{}, ErrNotFound
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return decodeJob(m)
}

func decodeJob(m map[string]string) (tasks.Job, error) {
	j := tasks.Job{
		ID:             m[fID],
		Caller:         m[fCaller],
		Kind:           tasks.Kind(m[fKind]),
		IdempotencyKey: m[fKey],
		Fingerprint:    m[fFingerprint],
		Payload:        json.RawMessage(m[fPayload]),
		Status:         tasks.Status(m[fStatus]),
		Phase:          tasks.Phase(m[fPhase]),
		CreatedAt:      fromMS(m[fCreated]),
		UpdatedAt:      fromMS(m[fUpdated]),
		SendStartedAt:  fromMS(m[fSendStarted]),
	}
	j.Attempts, _ = strconv.Atoi(m[fAttempts])
	if s := m[fResult]; s != "" {
		j.Result = new(tasks.Result)
		if err := json.Unmarshal([]byte(s), j.Result); err != nil {
			return j, fmt.Errorf("ledger: job %s: result: %w", j.ID, err)
		}
	}
	if s := m[fError]; s != "" {
		j.Error = new(tasks.JobError)
		if err := json.Unmarshal([]byte(s), j.Error); err != nil {
			return j, fmt.Errorf("ledger: job %s: error: %w", j.ID, err)
		}
	}
	return j, nil
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Scripts. Each state change is one script so that two workers, a worker and
// a cancel, or a worker and a sweep can never interleave half-way.

// submitScript records a new job unless the idempotency key is taken, and
// answers with the job either way, so that a submission or a replay costs
// one round trip before the enqueue.
// KEYS: idem, job, caller index, all jobs, unenqueued.
// ARGV: id, caller, kind, key, fingerprint, payload, now_ms, job key prefix.
// Returns {created (1|0), unenqueued (1|0), job hash as a flat list}.
var submitScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
local created = 0
if not id then
  id = ARGV[1]
  created = 1
  redis.call('SET', KEYS[1], id)
  redis.call('HSET', KEYS[2], 'id', id, 'caller', ARGV[2], 'kind', ARGV[3], 'key', ARGV[4],
    'fingerprint', ARGV[5], 'payload', ARGV[6], 'status', 'queued', 'phase', 'pending', 'attempts', 0,
    'created_ms', ARGV[7], 'updated_ms', ARGV[7])
  redis.call('ZADD', KEYS[3], 0, id)
  redis.call('ZADD', KEYS[4], 0, id)
  redis.call('ZADD', KEYS[5], ARGV[7], id)
end
local unenqueued = 0
if redis.call('ZSCORE', KEYS[5], id) then unenqueued = 1 end
return {created, unenqueued, redis.call('HGETALL', ARGV[8] .. id)}
`)

// redisNowMS is the Redis server's clock in milliseconds. Send times are
// taken from it and compared with it, so that workers on machines with
// skewed clocks agree on how long ago a call was sent.
const redisNowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// claimScript starts an attempt. It answers with the whole job as it stood
// before the claim, read in the same atomic step, and with the server's
// clock; unless the job is cancelled or posted, it marks it running.
// KEYS: job, unenqueued. ARGV: now_ms.
// Returns {job hash as a flat list, server now_ms}, or {} when missing.
var claimScript = redis.NewScript(redisNowMS + `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {} end
local st = redis.call('HGET', KEYS[1], 'status')
local ph = redis.call('HGET', KEYS[1], 'phase')
redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
if st ~= 'cancelled' and ph ~= 'posted' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'updated_ms', ARGV[1])
  redis.call('PERSIST', KEYS[1])
end
return {h, now}
`)

// beginSendScript records "sending" before the SAP call (tRFC's execute).
// It is a compare-and-set on the attempt counter read at claim time, so of
// two deliveries of one task that run at once, only one may send.
// KEYS: job. ARGV: now_ms, expected attempts. Returns "ok", "cancelled",
// "posted", "concurrent" or "missing".
var beginSendScript = redis.NewScript(redisNowMS + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'cancelled' then return 'cancelled' end
if redis.call('HGET', KEYS[1], 'phase') == 'posted' then return 'posted' end
if redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[2] then return 'concurrent' end
redis.call('HSET', KEYS[1], 'status', 'running', 'phase', 'sending', 'send_started_ms', now, 'updated_ms', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 'ok'
`)

// finishScript records an attempt's outcome and sets the retention of the
// job and its idempotency key once the job is terminal. A failure is
// recorded only by the delivery that made the latest attempt (the attempt
// counter fences off a stale one, which would otherwise overwrite "sending"
// while another delivery's call is in flight); a document is always
// recorded, for SAP holds it whoever sent it.
// KEYS: job, idem. ARGV: status, phase, result json, error json, now_ms,
// ttl_ms (0 = keep), expected attempts.
var finishScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HGET', KEYS[1], 'phase') == 'posted' and ARGV[2] ~= 'posted' then return 'posted' end
if ARGV[2] ~= 'posted' and redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[7] then return 'stale' end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'phase', ARGV[2], 'updated_ms', ARGV[5])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) else redis.call('HDEL', KEYS[1], 'error') end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return 'ok'
`)

// cancelScript cancels a job that SAP holds no document for and that no
// worker is calling SAP for right now: queued, waiting to retry, or failed,
// always in PhasePending.
// KEYS: job, idem. ARGV: caller, now_ms, ttl_ms. Returns "ok", "missing" or
// the status and phase that forbid it.
var cancelScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'caller') ~= ARGV[1] then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
local ph = redis.call('HGET', KEYS[1], 'phase')
if ph ~= 'pending' or (st ~= 'queued' and st ~= 'retrying' and st ~= 'failed') then return st .. '/' .. ph end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_ms', ARGV[2])
redis.call('HDEL', KEYS[1], 'error')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'ok'
`)

func marshalJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// reprocessScript puts a failed job back in the queue's hands. The phase is
// kept: a job whose last outcome was unknown is still reconciled first. A job
// whose task the queue gave up on without the worker recording it (a crash on
// the last attempt: ARGV[2] = 1) counts as failed too.
// KEYS: job, idem, unenqueued. ARGV: now_ms, task gone (0|1). Returns "ok",
// "missing" or the status that forbids it.
var reprocessScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
local stranded = ARGV[2] == '1' and (st == 'queued' or st == 'running' or st == 'retrying')
if st ~= 'failed' and not stranded then return st end
if redis.call('HGET', KEYS[1], 'phase') == 'posted' then return 'posted' end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_ms', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[1], redis.call('HGET', KEYS[1], 'id'))
return 'ok'
`)
