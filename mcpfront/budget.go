package mcpfront

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

// budget keeps the per-caller counters that several MCP instances must
// share, in Redis: the submissions-per-minute quota and the amounts posted
// per day. Every key of one caller carries the hash tag {policy:<hash>}, so
// that they live in one cluster slot and one script may touch them all:
//
//	sapq:{policy:<h>}:day:<yyyymmdd>   hash currency -> minor units counted that UTC day
//	sapq:{policy:<h>}:counted:<k>      the day an idempotency key was counted
//	rate:sapq:{policy:<h>}:submissions redis_rate's GCRA state (its "rate:" prefix is fixed)
type budget struct {
	rdb       redis.UniversalClient
	limiter   *redis_rate.Limiter
	retention time.Duration
	now       func() time.Time
}

func callerTag(caller string) string {
	sum := sha256.Sum256([]byte(caller))
	return "sapq:{policy:" + hex.EncodeToString(sum[:16]) + "}:"
}

// allowSubmission spends one of the caller's submissions for this minute.
// It returns how long to wait when none is left.
func (b *budget) allowSubmission(ctx context.Context, caller string, perMinute int) (time.Duration, error) {
	res, err := b.limiter.Allow(ctx, callerTag(caller)+"submissions", redis_rate.PerMinute(perMinute))
	if err != nil {
		return 0, fmt.Errorf("mcpfront: submissions quota: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return res.RetryAfter, nil
}

// countDay adds a posting's amount to the caller's sum for the day, unless
// that would exceed the limit. It counts each idempotency key once: a
// replay of a submission (the agent lost the answer, today or days later)
// is allowed without counting it again, so that a retry of an accepted
// posting is never refused by its own earlier count. A key counted for a
// submission that then failed to be recorded stays counted: the agent's
// retry with the same key finds it, and an abandoned one errs on the safe
// side.
var countDayScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {1, redis.call('HGET', KEYS[1], ARGV[1]) or '0'}
end
local sum = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if sum + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return {0, tostring(sum)}
end
local now = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[6], 'EX', ARGV[5])
return {1, tostring(now)}
`)

// minorUnits converts an amount of at most MaxFractionDigits decimals to an
// integer count of hundredths, exactly.
func minorUnits(d decimal.Decimal) int64 {
	return d.Shift(tasks.MaxFractionDigits).IntPart()
}

func fromMinorUnits(n int64) decimal.Decimal { return decimal.New(n, -tasks.MaxFractionDigits) }

// countDay returns whether the amount fits and the day's sum (with it, if
// it fits; without it, if not).
func (b *budget) countDay(ctx context.Context, caller, key, cur string, amount, limit decimal.Decimal) (bool, decimal.Decimal, error) {
	now := b.now().UTC()
	day := now.Format("20060102")
	tag := callerTag(caller)
	kh := sha256.Sum256([]byte(key))
	keys := []string{tag + "day:" + day, tag + "counted:" + hex.EncodeToString(kh[:16])}
	// The day's hash outlives the day a little, so that a sum read at
	// 23:59:59 is not lost to clock skew between instances.
	dayTTL := int64(48 * time.Hour / time.Second)
	res, err := countDayScript.Run(ctx, b.rdb, keys, cur, minorUnits(amount), minorUnits(limit),
		dayTTL, int64(b.retention/time.Second)+dayTTL, day).Slice()
	if err != nil {
		return false, decimal.Zero, fmt.Errorf("mcpfront: daily amount: %w", err)
	}
	ok, _ := res[0].(int64)
	sumStr, _ := res[1].(string)
	sum, err := decimal.NewFromString(sumStr)
	if err != nil {
		return false, decimal.Zero, fmt.Errorf("mcpfront: daily amount %q: %w", sumStr, err)
	}
	return ok == 1, fromMinorUnits(sum.IntPart()), nil
}

// peekDay is countDay that counts nothing: whether the amount would fit,
// and the day's sum so far. A key counted already fits, as in countDay.
func (b *budget) peekDay(ctx context.Context, caller, key, cur string, amount, limit decimal.Decimal) (bool, decimal.Decimal, error) {
	day := b.now().UTC().Format("20060102")
	tag := callerTag(caller)
	kh := sha256.Sum256([]byte(key))
	pipe := b.rdb.Pipeline()
	sumCmd := pipe.HGet(ctx, tag+"day:"+day, cur)
	counted := pipe.Exists(ctx, tag+"counted:"+hex.EncodeToString(kh[:16]))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, decimal.Zero, fmt.Errorf("mcpfront: daily amount: %w", err)
	}
	n, _ := sumCmd.Int64()
	sum := fromMinorUnits(n)
	return counted.Val() == 1 || minorUnits(sum)+minorUnits(amount) <= minorUnits(limit), sum, nil
}
