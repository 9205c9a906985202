package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
)

// Serialisation and limits toward SAP, in the manner of qRFC queues: jobs
// that change the same SAP object (a supplier's account, a material in a
// plant, a sales order; tasks.Facts.Objects) never run at the same time on
// any worker, and at most Options.MaxInFlight attempts talk to one SAP
// destination at once. SAP locks an object while it posts, and a second
// posting of it meanwhile is refused ("locked by user"): sapq would only be
// fighting itself, spending retries on its own locks. A gate sits around
// the part of an attempt that talks to SAP, from the look-up to the
// recorded outcome:
//
//   - An object is a Redis key "sapq:lock:{<object>}" holding the holder's
//     token; its hash tag puts each object in its own cluster slot, so the
//     keys spread over a Redis Cluster and every command touches one slot.
//     A job's objects are taken all at once, without waiting (SET NX in one
//     pipeline); if one is busy, those taken are given back and the job
//     comes back later. Nobody waits while holding, so there is no deadlock.
//   - A destination's calls in flight are a sorted set
//     "sapq:inflight:{<destination>}" of holders' tokens scored by lease
//     expiry on Redis's clock; the script that takes a slot first drops the
//     expired ones, so a dead worker's slots come back by themselves.
//   - A busy job returns a waitError: asynq puts it back in the queue after
//     a short jittered delay, its worker slot free, its retry budget
//     untouched (asynq's Config.IsFailure; see isFailure). Only on the task's
//     last attempt, where asynq would archive on any error, does the handler
//     wait itself (ProcessTask).
//   - Leases last the ledger's settle time and are renewed while held. The
//     holder's token fences them: an owner whose lease expired cannot
//     renew, release or shorten someone else's.
//   - Right before the post (after BeginSend) the attempt renews every
//     lease and sends nothing unless all are still its own. A lease then
//     outlasts the call's end in SAP (the settle time counts from BeginSend)
//     even if the worker dies at once: the next holder cannot reach SAP
//     while SAP still works on this call.
//   - A call whose outcome is unknown (a timeout) may still be running in
//     SAP: its leases are not given back but left to run out when the call
//     must have ended. Otherwise a slow SAP would be sent more work the
//     slower it gets, and the next posting of the object would meet SAP's
//     lock.
//
// Locks serve SAP's locks and SAP's load, not exactly-once. If Redis loses
// a lease (a failover to a lagging replica, a restart without the key), two
// jobs of one object may run at once: one of them may get SAP's lock
// message, a transient failure that is retried. No job can post twice for
// it: the ledger fences each job's calls itself (BeginSend's compare-and-set
// on attempts, the look-up after the settle time, the loss window), whether
// or not the attempt still holds its leases; a lease lost in the middle of a
// call changes nothing for that job's outcome.

// lockKey is the Redis key of an SAP object's lock.
func lockKey(object string) string { return "sapq:lock:{" + object + "}" }

// inFlightKey is the Redis key of a destination's calls in flight.
func inFlightKey(destination string) string { return "sapq:inflight:{" + destination + "}" }

// objectName is an SAP object as SAP compares it: numeric keys under
// SAP's ALPHA conversion ("supplier/1010/0017300001" is supplier 17300001).
// Merging two names that SAP tells apart would only serialise more.
func objectName(object string) string {
	parts := strings.Split(object, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = strings.TrimLeft(p, "0")
			if parts[i] == "" {
				parts[i] = "0"
			}
		}
	}
	return strings.Join(parts, "/")
}

// domainOf is an object's kind ("supplier"), the label of its waits.
func domainOf(object string) string {
	d, _, _ := strings.Cut(object, "/")
	return d
}

var (
	// leaseRenewScript sets a lock's expiry to ARGV[2] ms if ARGV[1] still
	// holds it: a renewal, or the shortening after an unknown outcome.
	leaseRenewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	// leaseReleaseScript deletes a lock if ARGV[1] still holds it.
	leaseReleaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)
	// slotTakeScript takes one of ARGV[2] call slots of a destination for
	// token ARGV[1] for ARGV[3] ms, after dropping the slots whose lease ran
	// out. Run twice (go-redis resends a script after a read timeout), it
	// finds its own slot and renews it.
	slotTakeScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if not redis.call("ZSCORE", KEYS[1], ARGV[1]) and redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call("ZADD", KEYS[1], now + ms, ARGV[1])
if redis.call("PTTL", KEYS[1]) < ms then
  redis.call("PEXPIRE", KEYS[1], ms)
end
return 1`)
	// slotRenewScript sets the expiry of token ARGV[1]'s slot to ARGV[2] ms
	// from now, if it still has one; the set lives as long as its longest
	// lease.
	slotRenewScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
local expiry = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then
  return 0
end
redis.call("ZADD", KEYS[1], "XX", now + ms, ARGV[1])
if redis.call("PTTL", KEYS[1]) < ms then
  redis.call("PEXPIRE", KEYS[1], ms)
end
return 1`)
)

// errLeaseLost is a lease that is no longer the holder's.
var errLeaseLost = errors.New("lease lost")

// gate takes and gives back the leases of attempts.
type gate struct {
	rdb         redis.UniversalClient
	lease       time.Duration // the ledger's settle time
	maxInFlight int           // calls in flight per destination; 0: no cap
	// retry is about when a busy job comes back: a delay shorter than the
	// queue's poll interval is rounded up by asynq's forwarder anyway.
	retry   time.Duration
	metrics *metrics
	log     *slog.Logger
}

// busy is the answer to a job that has to wait: back to the queue after a
// jittered delay, so that the jobs waiting for one object do not all come
// back at once.
func (g *gate) busy(reason string) error {
	return &waitError{reason: reason, after: g.retry/2 + mathrand.N(g.retry)}
}

// enter takes the leases of an attempt that posts to destination and
// changes objects. A busy object or destination is a waitError; a Redis
// failure is an error, and then nothing is held.
func (g *gate) enter(ctx context.Context, jobID string, objects []string, destination string) (*pass, error) {
	p := &pass{g: g, token: jobID + ":" + randomHex(8)}
	names := make([]string, 0, len(objects))
	for _, o := range objects {
		names = append(names, objectName(o))
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	for _, o := range names {
		p.keys = append(p.keys, lockKey(o))
	}
	if busy, err := p.takeObjects(ctx); err != nil || busy >= 0 {
		if err != nil {
			return nil, fmt.Errorf("worker: take the leases of SAP objects %v: %w", names, err)
		}
		g.metrics.lockWait(domainOf(names[busy]))
		return nil, g.busy("SAP object " + names[busy] + " is being posted by another job")
	}
	if g.maxInFlight > 0 {
		key := inFlightKey(destination)
		took, err := slotTakeScript.Run(ctx, g.rdb, []string{key}, p.token, g.maxInFlight, g.lease.Milliseconds()).Int()
		if err != nil || took == 0 {
			p.giveBack()
			if err != nil {
				return nil, fmt.Errorf("worker: take a call slot of SAP destination %s: %w", destination, err)
			}
			g.metrics.destinationWait(destination)
			return nil, g.busy(fmt.Sprintf("%d calls to SAP destination %s are in flight, the most allowed", g.maxInFlight, destination))
		}
		p.slot = key
	}
	if p.holds() {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.renewing()
	}
	return p, nil
}

// pass is the leases one attempt holds.
type pass struct {
	g     *gate
	token string   // fences the leases: the job and a random part
	keys  []string // lock keys of the objects, sorted
	slot  string   // the destination's in-flight key, or ""

	stop, stopped chan struct{} // end the renewals
	stopOnce      sync.Once
	// unknownSince is when the call whose outcome is unknown began: SAP
	// may work on it until the settle time has passed since.
	mu           sync.Mutex
	unknownSince time.Time
}

func (p *pass) holds() bool { return len(p.keys) > 0 || p.slot != "" }

// takeObjects takes every object's lock in one pipeline. It returns the
// index of a busy object (-1 if none), having given back what it took.
func (p *pass) takeObjects(ctx context.Context) (busy int, err error) {
	if len(p.keys) == 0 {
		return -1, nil
	}
	pipe := p.g.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(p.keys))
	for i, k := range p.keys {
		// GET makes a resent command harmless: it answers our own token.
		cmds[i] = pipe.SetArgs(ctx, k, p.token, redis.SetArgs{Mode: "NX", TTL: p.g.lease, Get: true})
	}
	pipe.Exec(ctx) // each command's own error is read below
	taken := p.keys[:0:0]
	busy = -1
	for i, c := range cmds {
		old, cerr := c.Result()
		switch {
		case errors.Is(cerr, redis.Nil) || (cerr == nil && old == p.token):
			taken = append(taken, p.keys[i])
		case cerr != nil:
			if err == nil {
				err = cerr
			}
		case busy < 0:
			busy = i
		}
	}
	if err != nil || busy >= 0 {
		p.keys = taken
		p.giveBack()
		p.keys = nil
	}
	return busy, err
}

// confirm renews every lease right before a call to SAP; an error means
// that the call must not go out. A waitError either way: the job may be
// recorded as sending, and asynq must not archive it for this.
func (p *pass) confirm(ctx context.Context) error {
	if !p.holds() {
		return nil
	}
	err := p.renew(ctx, p.g.lease)
	if err == nil {
		return nil
	}
	if errors.Is(err, errLeaseLost) {
		p.g.metrics.leaseLost()
	}
	p.g.log.Warn("the leases of this attempt could not be confirmed before the call; not sending", "token", p.token, "err", err)
	return p.g.busy("not sending: the SAP object and destination leases could not be confirmed (" + err.Error() + ")")
}

// sent tells the pass how the call that began (BeginSend) at began ended:
// after an unknown outcome SAP may work on it until the settle time has
// passed, and the leases stay until then.
func (p *pass) sent(began time.Time, err error) {
	if err == nil {
		return
	}
	switch sap.CategoryOf(err) {
	case sap.Permanent, sap.Transient, sap.Duplicate:
		return // SAP answered: it is done with the call
	}
	p.mu.Lock()
	p.unknownSince = began
	p.mu.Unlock()
}

// release gives the leases back once the outcome is recorded, or leaves
// them to run out when SAP may still be working on the call.
func (p *pass) release() {
	if !p.holds() {
		return
	}
	p.stopRenewing()
	p.mu.Lock()
	since := p.unknownSince
	p.mu.Unlock()
	if keep := p.g.lease - time.Since(since); !since.IsZero() && keep > time.Millisecond {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.renew(ctx, keep); err != nil && !errors.Is(err, errLeaseLost) {
			p.g.log.Warn("could not shorten the leases of a call with an unknown outcome; they run out in full", "token", p.token, "err", err)
		}
		return
	}
	p.giveBack()
}

// giveBack deletes what the pass holds. If Redis cannot be reached, the
// leases run out by themselves.
func (p *pass) giveBack() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := p.g.rdb.Pipeline()
	cmds := evalEach(ctx, pipe, leaseReleaseScript, p.keys, p.token)
	if p.slot != "" {
		pipe.ZRem(ctx, p.slot, p.token)
	}
	if len(cmds) == 0 && p.slot == "" {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		if err = retryNoScript(ctx, p.g.rdb, leaseReleaseScript, cmds, p.keys, p.token); err != nil {
			p.g.log.Warn("could not give back leases; they run out by themselves", "token", p.token, "err", err)
		}
	}
}

// renew sets every lease to run out after d. errLeaseLost: one is no
// longer the pass's.
func (p *pass) renew(ctx context.Context, d time.Duration) error {
	ms := max(d.Milliseconds(), 1)
	pipe := p.g.rdb.Pipeline()
	cmds := evalEach(ctx, pipe, leaseRenewScript, p.keys, p.token, ms)
	var slot *redis.Cmd
	if p.slot != "" {
		slot = slotRenewScript.EvalSha(ctx, pipe, []string{p.slot}, p.token, ms)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if err := retryNoScript(ctx, p.g.rdb, leaseRenewScript, cmds, p.keys, p.token, ms); err != nil {
			return err
		}
		if slot != nil && isNoScript(slot.Err()) {
			slot = slotRenewScript.Eval(ctx, p.g.rdb, []string{p.slot}, p.token, ms)
		}
	}
	for _, c := range append(cmds, slot) {
		if c == nil {
			continue
		}
		n, err := c.Int()
		if err != nil {
			return err
		}
		if n == 0 {
			return errLeaseLost
		}
	}
	return nil
}

// stopRenewing ends the renewals and waits until none runs.
func (p *pass) stopRenewing() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.stopped
}

// renewing renews the leases every third of their length until release.
func (p *pass) renewing() {
	defer close(p.stopped)
	t := time.NewTicker(p.g.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.g.lease/3)
		err := p.renew(ctx, p.g.lease)
		cancel()
		if errors.Is(err, errLeaseLost) {
			// Another job may now post the same object; SAP's own lock
			// and the ledger's fences keep that safe (see above).
			p.g.metrics.leaseLost()
			p.g.log.Warn("a lease of this attempt was lost while it held it", "token", p.token)
			return
		}
		if err != nil {
			p.g.log.Warn("renewing the leases of this attempt failed; trying again", "token", p.token, "err", err)
		}
	}
}

// evalEach queues script once per key on pipe, as EVALSHA.
func evalEach(ctx context.Context, pipe redis.Pipeliner, s *redis.Script, keys []string, args ...any) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = s.EvalSha(ctx, pipe, []string{k}, args...)
	}
	return cmds
}

// retryNoScript runs again, as EVAL, the commands of evalEach that found
// their node without the script (a node that restarted or took over), and
// returns the first other error.
func retryNoScript(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, cmds []*redis.Cmd, keys []string, args ...any) error {
	var first error
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			cmds[i] = s.Eval(ctx, rdb, []string{keys[i]}, args...)
		}
		if err := cmds[i].Err(); err != nil && !errors.Is(err, redis.Nil) && first == nil {
			first = err
		}
	}
	return first
}

func isNoScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
