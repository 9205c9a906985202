package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Four-eyes approval. A posting above its submitter's approval threshold is
// recorded awaiting approval (SubmitForApproval) and reaches the queue only
// when an operator other than the submitter approves it, quoting the
// fingerprint of the payload they were shown. Rejection, or no decision
// before the approval expires, ends it unsent.
//
// The decision is a compare-and-set in one script, like every state change
// of the ledger: on the job's status (still awaiting), its submitter (not
// the approver) and the exact payload the approver was shown (the stored
// payload must equal the one whose fingerprint they quoted), so that a
// payload changed between reading and approving cannot ride on the
// approval. The worker checks the binding once more before it sends
// (tasks.Job.CheckApproval).

var (
	// ErrNotAwaitingApproval is returned when deciding on a job that is
	// not waiting for a decision (any more).
	ErrNotAwaitingApproval = errors.New("posting is not awaiting approval")
	// ErrOwnPosting is returned when an operator decides on a posting they
	// submitted: four eyes means two people.
	ErrOwnPosting = errors.New("an operator cannot approve or reject a posting they submitted")
	// ErrPayloadMismatch is returned when the fingerprint quoted is not
	// the posting's: the approver was not shown what would be sent.
	ErrPayloadMismatch = errors.New("payload_hash is not the fingerprint of this posting's payload")
	// ErrApprovalExpired is returned when approving after the approval's
	// expiry.
	ErrApprovalExpired = errors.New("the approval has expired")
	// ErrMayBePosted is returned when rejecting a posting whose record was
	// written before its shard's last Redis loss: it may have been approved
	// and posted since, and ending it unsent could be a lie. Approving it
	// is safe, for the worker looks SAP up before it sends.
	ErrMayBePosted = errors.New("Redis lost writes since this posting was recorded, and it may have been approved and posted since; it cannot be rejected, approve it to have a worker look it up in SAP")
)

// decideScript records an operator's decision on a job awaiting approval.
// A second run of the same call (go-redis resends after a lost reply)
// finds its own decision and answers "ok".
// KEYS: meta, job, idem, expiry, approvals, unenqueued.
// ARGV: decision (approved|rejected|expired), operator, approval json with
// the decision, payload the operator approved (” unless approving),
// now_ms, ttl_ms for an ended job, expiry member.
// Returns "ok", "missing", "own", "payload", "expired", "suspect" or
// "status:<status>".
var decideScript = redis.NewScript(checkServer + publish + `
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
local f = redis.call('HMGET', KEYS[2], 'status', 'caller', 'payload', 'approval_expires_ms', 'approval', 'id')
if f[5] == ARGV[3] then return 'ok' end
if f[1] ~= 'awaiting_approval' then return 'status:' .. f[1] end
if ARGV[1] ~= 'expired' and f[2] == ARGV[2] then return 'own' end
if ARGV[1] == 'approved' then
  if f[3] ~= ARGV[4] then return 'payload' end
  if tonumber(ARGV[5]) >= tonumber(f[4] or '0') then return 'expired' end
else
  -- A job written before the shard's last Redis loss may have been
  -- approved and posted since: ending it unsent could be a lie. Approving
  -- it is safe, for the worker looks SAP up before it sends.
  if lossus > 0 and lossus >= tonumber(redis.call('HGET', KEYS[2], 'written_us') or '0') then return 'suspect' end
end
redis.call('ZREM', KEYS[5], f[6])
-- written_us stays: a decision learns nothing of what SAP holds, and a
-- job written before a loss stays suspect until a look-up.
redis.call('HSET', KEYS[2], 'approval', ARGV[3], 'updated_ms', ARGV[5])
if ARGV[1] == 'approved' then
  redis.call('HSET', KEYS[2], 'status', 'queued')
  redis.call('ZADD', KEYS[6], ARGV[5], f[6])
else
  redis.call('HSET', KEYS[2], 'status', 'rejected')
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
  redis.call('ZADD', KEYS[4], tonumber(ARGV[5]) + tonumber(ARGV[6]), ARGV[7])
end
publish(f[6])
return 'ok'
`)

// Approve lets a posting awaiting approval go to the queue. operator must
// not be its submitter, and payloadHash must be the fingerprint of its
// payload (tasks.Approval.PayloadHash as the operator was shown it).
// Approving an approved posting again answers with it, unchanged, when it
// was the same operator's approval.
func (l *Ledger) Approve(ctx context.Context, id, operator, payloadHash, comment string) (tasks.Job, error) {
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	// The stored payload's own fingerprint, not the stored one: the
	// payload the script checks is this one.
	if fp, err := job.PayloadFingerprint(); err != nil || fp != payloadHash || fp != job.Fingerprint {
		return job, ErrPayloadMismatch
	}
	job, err = l.decide(ctx, job, tasks.DecisionApproved, operator, comment)
	if err != nil {
		return job, err
	}
	if job.Status == tasks.StatusQueued {
		if err := l.enqueue(ctx, job); err != nil {
			l.log.Warn("approve: enqueue failed; the sweeper will retry", "job_id", id, "err", err)
		}
	}
	return l.load(ctx, id)
}

// Reject ends a posting awaiting approval unsent; reason is kept with it.
func (l *Ledger) Reject(ctx context.Context, id, operator, reason string) (tasks.Job, error) {
	job, err := l.load(ctx, id)
	if err != nil {
		return tasks.Job{}, err
	}
	if _, err := l.decide(ctx, job, tasks.DecisionRejected, operator, reason); err != nil {
		return job, err
	}
	return l.load(ctx, id)
}

// expireApproval rejects a posting whose approval expired undecided.
func (l *Ledger) expireApproval(ctx context.Context, id string) error {
	job, err := l.load(ctx, id)
	if err != nil {
		return err
	}
	_, err = l.decide(ctx, job, tasks.DecisionExpired, "", "nobody approved or rejected it before "+job.Approval.ExpiresAt.Format("2006-01-02 15:04 MST"))
	return err
}

func (l *Ledger) decide(ctx context.Context, job tasks.Job, d tasks.Decision, operator, comment string) (tasks.Job, error) {
	if job.Approval == nil {
		return job, fmt.Errorf("%w: it never needed approval (status %s)", ErrNotAwaitingApproval, job.Status)
	}
	if operator == "" && d != tasks.DecisionExpired {
		return job, errors.New("ledger: a decision needs the operator's name")
	}
	if job.Approval.Decision != "" {
		// Decided already: the same decision by the same operator is
		// answered as it was; anything else is refused with what stands.
		if job.Approval.Decision == d && job.Approval.DecidedBy == operator {
			return job, nil
		}
		return job, fmt.Errorf("%w: it was %s by %s at %s", ErrNotAwaitingApproval, job.Approval.Decision,
			cmp.Or(job.Approval.DecidedBy, "sapq"), job.Approval.DecidedAt.Format("2006-01-02 15:04:05 MST"))
	}
	now := l.opts.Now().UTC()
	a := *job.Approval
	a.Decision, a.DecidedBy, a.DecidedAt, a.Comment = d, operator, now, cutText(comment)
	approvalJSON, err := marshalJSON(a)
	if err != nil {
		return job, err
	}
	payload := ""
	if d == tasks.DecisionApproved {
		payload = string(job.Payload)
	}
	k, _ := keysOf(job.ID)
	res, err := decideScript.Run(ctx, l.rdb,
		[]string{k.meta(), k.job(), idemKeyOf(job.Caller, job.IdempotencyKey), k.expiry(), k.approvals(), k.unenqueued()},
		string(d), operator, approvalJSON, payload, ms(now), l.opts.Retention.Milliseconds(), expiryMember(job.ID, job.Caller)).Text()
	if err != nil {
		return job, l.ctxErr(ctx, fmt.Errorf("ledger: %s %s: %w", d, job.ID, err))
	}
	switch {
	case res == "ok":
		job.Approval = &a
		job.Status = tasks.StatusRejected
		if d == tasks.DecisionApproved {
			job.Status = tasks.StatusQueued
		}
		return job, nil
	case res == "missing":
		return job, ErrNotFound
	case res == "own":
		return job, ErrOwnPosting
	case res == "payload":
		return job, ErrPayloadMismatch
	case res == "expired":
		return job, fmt.Errorf("%w at %s; the submitter must submit it again", ErrApprovalExpired, job.Approval.ExpiresAt.Format("2006-01-02 15:04:05 MST"))
	case res == "suspect":
		return job, ErrMayBePosted
	case strings.HasPrefix(res, "status:"):
		return job, fmt.Errorf("%w: it is %s", ErrNotAwaitingApproval, strings.TrimPrefix(res, "status:"))
	}
	return job, fmt.Errorf("ledger: %s %s: unexpected answer %q", d, job.ID, res)
}

// Approvals returns up to limit postings awaiting approval, those that
// expire first first, and how many are waiting in all.
func (l *Ledger) Approvals(ctx context.Context, limit int) ([]tasks.Job, int, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	pipe := l.rdb.Pipeline()
	ranges := make([]*redis.ZSliceCmd, shardCount)
	counts := make([]*redis.IntCmd, shardCount)
	for i, s := range allShards() {
		ranges[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: s.approvalsKey(), Start: 0, Stop: int64(limit - 1)})
		counts[i] = pipe.ZCard(ctx, s.approvalsKey())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, l.ctxErr(ctx, err)
	}
	var entries []redis.Z
	total := 0
	for i := range ranges {
		entries = append(entries, ranges[i].Val()...)
		total += int(counts[i].Val())
	}
	slices.SortFunc(entries, func(a, b redis.Z) int { return cmp.Compare(a.Score, b.Score) })
	ids := make([]string, 0, min(limit, len(entries)))
	for _, e := range entries[:min(limit, len(entries))] {
		ids = append(ids, e.Member.(string))
	}
	jobs, err := l.loadMany(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	out := jobs[:0]
	for _, j := range jobs {
		if j.ID != "" && j.Status == tasks.StatusAwaitingApproval {
			out = append(out, j)
		}
	}
	return out, total, nil
}

// expireApprovals rejects the shard's postings whose approval expired.
func (s *Sweeper) expireApprovals(ctx context.Context, sh shard) (int, error) {
	l := s.ledger
	ids, err := l.rdb.ZRangeByScore(ctx, sh.approvalsKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(l.opts.Now()), 10), Count: sweepBatch,
	}).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, id := range ids {
		err := l.expireApproval(ctx, id)
		switch {
		case err == nil:
			n++
			l.log.Info("approval expired; posting rejected unsent", "job_id", id)
		case errors.Is(err, ErrNotFound):
			l.rdb.ZRem(ctx, sh.approvalsKey(), id)
		case errors.Is(err, ErrMayBePosted):
			// It stays listed until an operator approves it.
			l.log.Warn("sweep: an expired approval is left waiting", "job_id", id, "err", err)
		case errors.Is(err, ErrNotAwaitingApproval):
			l.rdb.ZRem(ctx, sh.approvalsKey(), id) // decided meanwhile
		default:
			firstErr = cmp.Or(firstErr, err)
		}
	}
	return n, firstErr
}
