package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Hash fields of a job.
const (
	fID, fCaller, fKind, fKey, fFingerprint, fPayload = "id", "caller", "kind", "key", "fingerprint", "payload"
	fStatus, fPhase, fAttempts, fGen, fRun            = "status", "phase", "attempts", "gen", "run"
	fDestination, fReference                          = "destination", "reference"
	fCreated, fUpdated, fSendStarted, fWritten        = "created_ms", "updated_ms", "send_started_ms", "written_us"
	fSendToken                                        = "send_token"
	fResult, fError                                   = "result", "error"
	fApproval                                         = "approval"
	fTraceParent                                      = "traceparent"
)

func (l *Ledger) load(ctx context.Context, id string) (tasks.Job, error) {
	k, ok := keysOf(id)
	if !ok {
		return tasks.Job{}, ErrNotFound
	}
	m, err := l.rdb.HGetAll(ctx, k.job()).Result()
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
		Destination:    m[fDestination],
		Reference:      m[fReference],
		CreatedAt:      fromMS(m[fCreated]),
		UpdatedAt:      fromMS(m[fUpdated]),
		SendStartedAt:  fromMS(m[fSendStarted]),
		WrittenAt:      fromUS(m[fWritten]),
		SendToken:      m[fSendToken],
		TraceParent:    m[fTraceParent],
	}
	j.Attempts, _ = strconv.Atoi(m[fAttempts])
	j.Generation, _ = strconv.Atoi(m[fGen])
	j.Run, _ = strconv.Atoi(m[fRun])
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
	if s := m[fApproval]; s != "" {
		j.Approval = new(tasks.Approval)
		if err := json.Unmarshal([]byte(s), j.Approval); err != nil {
			return j, fmt.Errorf("ledger: job %s: approval: %w", j.ID, err)
		}
	}
	return j, nil
}

func fromUS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func marshalJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// callToken identifies one call of a state-changing script. go-redis sends a
// script again after a read timeout or a dropped connection, so a script may
// run twice for one call: a script that stores its call's token recognises
// its own second run and answers as the first did.
func callToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Limits on what one job stores of SAP's answers, so that a runaway answer
// (thousands of messages, megabytes of text) cannot fill Redis.
const (
	maxMessageBytes = 1 << 10
	maxMessages     = 20
	cutMark         = " …[cut]"
)

// cutText shortens s to at most maxMessageBytes, on a rune boundary, marked.
func cutText(s string) string {
	if len(s) <= maxMessageBytes {
		return s
	}
	n := maxMessageBytes - len(cutMark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cutMark
}

// capResult bounds the messages of a result before it is stored.
func capResult(r tasks.Result) tasks.Result {
	r.Messages = capMessages(r.Messages)
	return r
}

func capMessages(msgs []tasks.Message) []tasks.Message {
	if len(msgs) == 0 {
		return msgs
	}
	out := make([]tasks.Message, 0, min(len(msgs), maxMessages))
	for i, m := range msgs {
		if i == maxMessages-1 && len(msgs) > maxMessages {
			out = append(out, tasks.Message{Text: fmt.Sprintf("%d more messages from SAP were cut", len(msgs)-i), Severity: "info"})
			break
		}
		m.Code, m.Text = cutText(m.Code), cutText(m.Text)
		out = append(out, m)
	}
	return out
}

func capError(e tasks.JobError) tasks.JobError {
	e.Code, e.Message = cutText(e.Code), cutText(e.Message)
	return e
}

// Scripts. Each state change is one script so that two workers, a worker and
// a cancel, or a worker and a sweep can never interleave half-way. Every key
// a script touches is in KEYS, and all of them are in one shard.

// submitScript records a new job under an idempotency key, unless the key
// names another job already. A second run of the same call finds its own
// job ID under the key and answers as the first run did. A job that needs
// an operator's approval (ARGV[8], the approval JSON) is recorded awaiting
// it, entered in the shard's approvals index by its expiry, and not marked
// for enqueueing: nothing takes it to the queue before the approval.
// KEYS: idem, job, shard jobs, caller index, unenqueued, approvals.
// ARGV: id, caller, kind, key, fingerprint, payload, now_ms, approval json
// (” for none), approval expiry ms, traceparent (” for none).
// Returns {1, job hash, unenqueued (1|0)} for the call's own job, or
// {0, id} when the key names another job.
var submitScript = redis.NewScript(serverNow + `
local id = redis.call('GET', KEYS[1])
if id and id ~= ARGV[1] then return {0, id} end
if not id then
  redis.call('SET', KEYS[1], ARGV[1])
  local status = 'queued'
  if ARGV[8] ~= '' then status = 'awaiting_approval' end
  -- One HSET of every field the job starts with.
  local fields = {'id', ARGV[1], 'caller', ARGV[2], 'kind', ARGV[3], 'key', ARGV[4],
    'fingerprint', ARGV[5], 'payload', ARGV[6], 'status', status, 'phase', 'pending',
    'attempts', 0, 'gen', 0, 'run', 0, 'created_ms', ARGV[7], 'updated_ms', ARGV[7], 'written_us', nowus}
  if ARGV[10] ~= '' then
    table.insert(fields, 'traceparent')
    table.insert(fields, ARGV[10])
  end
  if ARGV[8] ~= '' then
    table.insert(fields, 'approval')
    table.insert(fields, ARGV[8])
    table.insert(fields, 'approval_expires_ms')
    table.insert(fields, ARGV[9])
  end
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('ZADD', KEYS[4], 0, ARGV[1])
  if ARGV[8] ~= '' then
    redis.call('ZADD', KEYS[6], ARGV[9], ARGV[1])
  else
    -- Just marked: no need to ask.
    redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
    return {1, redis.call('HGETALL', KEYS[2]), 1}
  end
end
local unenqueued = 0
if redis.call('ZSCORE', KEYS[5], ARGV[1]) then unenqueued = 1 end
return {1, redis.call('HGETALL', KEYS[2]), unenqueued}
`)

// readJobScript reads a job and whether it awaits enqueueing, in one step.
// KEYS: job, unenqueued. ARGV: id. Returns {job hash, unenqueued (1|0)}.
var readJobScript = redis.NewScript(`
local unenqueued = 0
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then unenqueued = 1 end
return {redis.call('HGETALL', KEYS[1]), unenqueued}
`)

// forgetKeyScript drops an idempotency key that names a job which no longer
// exists (deleted by hand, or a database only partly restored), so that the
// key can be submitted again. KEYS: idem, and the job's key unless the key
// names no job ID at all. ARGV: id.
var forgetKeyScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] and (not KEYS[2] or redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('DEL', KEYS[1])
end
return 'ok'
`)

// claimScript starts a delivery's attempt. It checks the shard's Redis
// (see checkServer) and answers with the whole job, read in the same atomic
// step, and with the server's clock. A delivery does nothing unless the
// job is live and its run is the delivery's: a cancelled, posted or failed
// job is final for deliveries (only a reprocess reopens a failed job), and
// a task of an earlier run is stale; a job awaiting approval or rejected is
// not the queue's to run at all. Only the current run's delivery
// clears the job's unenqueued mark: a stale one proves nothing about the
// current run's task.
// KEYS: meta, job, unenqueued. ARGV: now_ms, run.
// Returns {verdict, job hash, server now_ms, loss_ms, seq, loss_us} or
// {'missing'}.
var claimScript = redis.NewScript(checkServer + publish + `
local f = redis.call('HMGET', KEYS[2], 'status', 'phase', 'run', 'id')
-- Every job hash has an id; only a hash without one needs asking.
if not f[4] and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
local st, ph = f[1], f[2]
local run = tonumber(f[3] or '0')
local verdict = 'ok'
if st == 'cancelled' then verdict = 'cancelled'
elseif ph == 'posted' then verdict = 'posted'
elseif st == 'failed' then verdict = 'failed'
elseif st == 'awaiting_approval' or st == 'rejected' then verdict = 'unapproved'
elseif run ~= tonumber(ARGV[2]) then verdict = 'stale'
else
  redis.call('ZREM', KEYS[3], f[4])
  redis.call('HSET', KEYS[2], 'status', 'running', 'updated_ms', ARGV[1])
  if st ~= 'running' then publish(f[4]) end
end
return {verdict, redis.call('HGETALL', KEYS[2]), now, loss, seq, lossus}
`)

// beginSendScript records "sending" before the SAP call (tRFC's execute).
// It is a compare-and-set on the attempt counter read at claim time, so of
// two deliveries of one task that run at once, only one may send. The
// message generation advances when the previous call was definitely
// refused (phase pending after a call), and stays after an unknown outcome.
// Inside a loss window nothing is recorded and the caller must wait.
// KEYS: meta, job. ARGV: now_ms, expected attempts, run, call token,
// destination, reference, settle_ms.
// Returns {verdict, attempts, gen, server now_ms, loss_ms, seq}.
var beginSendScript = redis.NewScript(checkServer + `
local f = redis.call('HMGET', KEYS[2], 'status', 'phase', 'attempts', 'gen', 'run', 'send_token', 'destination', 'id')
-- Every job hash has an id; only a hash without one needs asking.
if not f[8] and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
if f[6] == ARGV[4] then return {'ok', tonumber(f[3]), tonumber(f[4]), now, loss, seq} end
if f[1] == 'cancelled' then return {'cancelled'} end
if f[2] == 'posted' then return {'posted'} end
if f[1] == 'failed' then return {'failed'} end
if f[1] == 'awaiting_approval' or f[1] == 'rejected' then return {'unapproved'} end
if tonumber(f[5] or '0') ~= tonumber(ARGV[3]) then return {'stale'} end
if f[3] ~= ARGV[2] then return {'concurrent'} end
if loss > 0 and now < loss + tonumber(ARGV[7]) then return {'loss_window', 0, 0, now, loss, seq} end
local attempts = tonumber(f[3]) + 1
local gen = tonumber(f[4] or '0')
if attempts > 1 and f[2] == 'pending' then gen = gen + 1 end
local fields = {'status', 'running', 'phase', 'sending', 'send_started_ms', now,
  'updated_ms', ARGV[1], 'written_us', nowus, 'attempts', attempts, 'gen', gen, 'send_token', ARGV[4]}
if not f[7] then
  table.insert(fields, 'destination')
  table.insert(fields, ARGV[5])
  table.insert(fields, 'reference')
  table.insert(fields, ARGV[6])
end
redis.call('HSET', KEYS[2], unpack(fields))
return {'ok', attempts, gen, now, loss, seq}
`)

// finishScript records an attempt's outcome and, once the job is terminal,
// sets the retention of the job and its idempotency key and enters the job
// in the expiry index. A document is always recorded, for SAP holds it
// whoever sent it. A failure is recorded only by the delivery that owns the
// job's present state: the one whose call is in flight (its send token),
// or, before any call of its own, the one that saw the job's present
// attempt count and run; never over a cancelled job, nor over a failed one
// (failed is final for deliveries: only a reprocess reopens it, in a new
// run); and never by a delivery that claimed before the shard's last Redis
// loss ("loss": after a rollback its fence can match again, and what it
// learnt before the loss may be older than what another delivery has sent
// since). Run twice, it writes the same and answers the same.
// KEYS: job, idem, expiry, failed, meta. ARGV: status, phase, result json,
// error json, now_ms, ttl_ms (0 = keep), expected attempts, expiry member,
// send token (” before a call), run, the shard's loss_us when the delivery
// claimed.
var finishScript = redis.NewScript(checkServerAt(5) + publish + `
local f = redis.call('HMGET', KEYS[1], 'status', 'phase', 'attempts', 'send_token', 'run', 'error', 'id')
-- Every job hash has an id; only a hash without one needs asking.
if not f[7] and redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if ARGV[2] ~= 'posted' then
  if f[2] == 'posted' then return 'posted' end
  if f[1] == 'cancelled' or f[1] == 'rejected' then return 'cancelled' end
  if f[1] == 'failed' then
    if ARGV[1] == 'failed' and f[6] == ARGV[4] then return 'ok' end
    return 'stale'
  end
  if lossus > tonumber(ARGV[11]) then return 'loss' end
  if ARGV[9] ~= '' then
    if f[4] ~= ARGV[9] then return 'stale' end
  elseif f[3] ~= ARGV[7] or tonumber(f[5] or '0') ~= tonumber(ARGV[10]) then
    return 'stale'
  end
end
local fields = {'status', ARGV[1], 'phase', ARGV[2], 'updated_ms', ARGV[5], 'written_us', nowus}
if ARGV[3] ~= '' then
  table.insert(fields, 'result')
  table.insert(fields, ARGV[3])
end
if ARGV[4] ~= '' then
  table.insert(fields, 'error')
  table.insert(fields, ARGV[4])
elseif f[6] then
  redis.call('HDEL', KEYS[1], 'error')
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[1] == 'failed' then
  redis.call('ZADD', KEYS[4], ARGV[5], f[7])
else
  redis.call('ZREM', KEYS[4], f[7])
end
publish(f[7])
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]) + ttl, ARGV[8])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[8])
end
return 'ok'
`)

// cancelScript cancels a job that SAP holds no document for and that no
// worker is calling SAP for right now: queued, waiting to retry, or failed,
// always in PhasePending, or awaiting approval. What the ledger says is trusted only if it was
// written after the shard's last Redis loss: a "pending" that a rollback
// restored may hide a call SAP committed. A job never sent (attempts 0) is
// unverified (worker/model FIX 4, 5): it is cancelled only after a look-up
// in SAP found nothing (ARGV[5] = 1), whatever its phase, and only if no
// attempt began and Redis lost nothing since the look-up began: the shard's
// loss_us is still ARGV[6] and its write sequence has grown past ARGV[7] (a
// rollback that kept the run_id shows as a lower one; it is recorded as a
// loss). Cancelling a cancelled job
// changes nothing and answers "ok", so a second run of one call answers as
// the first.
// KEYS: meta, job, idem, expiry, approvals, failed. ARGV: caller, now_ms, ttl_ms,
// expiry member, looked up (0|1), loss_us and seq before the look-up.
// Returns "ok", "missing", "suspect", "unverified", "changed" or the status
// and phase that forbid it.
var cancelScript = redis.NewScript(checkServer + publish + `
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[2], 'caller') ~= ARGV[1] then return 'missing' end
local st = redis.call('HGET', KEYS[2], 'status')
local ph = redis.call('HGET', KEYS[2], 'phase')
if st == 'cancelled' then return 'ok' end
local unsent = tonumber(redis.call('HGET', KEYS[2], 'attempts') or '0') == 0
if st ~= 'queued' and st ~= 'retrying' and st ~= 'failed' and st ~= 'awaiting_approval' then return st .. '/' .. ph end
if ARGV[5] == '1' then
  if not unsent or ph == 'posted' then return st .. '/' .. ph end
  if seq <= tonumber(ARGV[7]) then
    redis.call('HSET', KEYS[1], 'loss_ms', now, 'loss_us', nowus)
    return 'changed'
  end
  if lossus ~= tonumber(ARGV[6]) then return 'changed' end
else
  if ph ~= 'pending' then return st .. '/' .. ph end
  if unsent then return 'unverified' end
  if lossus > 0 and lossus >= tonumber(redis.call('HGET', KEYS[2], 'written_us') or '0') then return 'suspect' end
end
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'phase', 'pending', 'updated_ms', ARGV[2], 'written_us', nowus)
redis.call('HDEL', KEYS[2], 'error')
redis.call('ZREM', KEYS[5], redis.call('HGET', KEYS[2], 'id'))
redis.call('ZREM', KEYS[6], redis.call('HGET', KEYS[2], 'id'))
publish(redis.call('HGET', KEYS[2], 'id'))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4])
return 'ok'
`)

// reprocessScript puts a failed job back in the queue's hands, in a new run.
// The phase is kept: a job whose last outcome was unknown is still
// reconciled first. A job whose task the queue gave up on without the
// worker recording it (a crash on the last attempt: ARGV[2] = 1) counts as
// failed too. A second run of the same call answers as the first.
// KEYS: job, idem, unenqueued, expiry, failed. ARGV: now_ms, task gone (0|1), call
// token, expiry member. Returns {"ok", run}, {"missing"} or {status}.
var reprocessScript = redis.NewScript(serverNow + publish + `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'reprocess_token') == ARGV[3] then
  return {'ok', tonumber(redis.call('HGET', KEYS[1], 'run'))}
end
local st = redis.call('HGET', KEYS[1], 'status')
local stranded = ARGV[2] == '1' and (st == 'queued' or st == 'running' or st == 'retrying')
if st ~= 'failed' and not stranded then return {st} end
if redis.call('HGET', KEYS[1], 'phase') == 'posted' then return {'posted'} end
local run = redis.call('HINCRBY', KEYS[1], 'run', 1)
-- A new run starts from what SAP holds, not from the last run's error.
redis.call('HDEL', KEYS[1], 'error')
-- written_us stays: a reprocess learns nothing of what SAP holds, and a
-- job written before a loss (its "failed, nothing posted" possibly older
-- than a call the lost writes held) stays suspect until a look-up.
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_ms', ARGV[1], 'reprocess_token', ARGV[3])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('ZREM', KEYS[5], redis.call('HGET', KEYS[1], 'id'))
redis.call('ZADD', KEYS[3], ARGV[1], redis.call('HGET', KEYS[1], 'id'))
publish(redis.call('HGET', KEYS[1], 'id'))
return {'ok', run}
`)
