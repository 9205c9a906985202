package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// The ledger's keys are spread over shards. Every key a script touches
// belongs to one shard, and a shard's keys share one Redis Cluster hash tag,
// so that each script runs in one slot; and since a shard is a sixteenth of
// the traffic, no index is one hot key.
//
// A job lives in the shard of its idempotency key, so that the key and the
// job are recorded in one step. The shard is also written into the job ID
// (its last hex digit), so that a job can be found from its ID alone.
const shardCount = 16

// shard is one of the ledger's shards.
type shard uint8

// shardOfKey is the shard of a caller's idempotency key.
func shardOfKey(caller, key string) shard {
	return shard(idemHash(caller, key)[0] & (shardCount - 1))
}

// shardOfJob returns the shard a job ID names, or false when id is not a
// job ID at all (an agent's typo, a probe).
func shardOfJob(id string) (shard, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u.Version() != 7 {
		return 0, false
	}
	return shard(u[15] & (shardCount - 1)), true
}

// newJobID returns a UUIDv7 (time-ordered, so lexical order is creation
// order) whose last hex digit is the shard.
func newJobID(s shard) string {
	u := uuid.Must(uuid.NewV7())
	u[15] = u[15]&^(shardCount-1) | byte(s)
	return u.String()
}

// TaskID is the ID of a job's task in asynq: the job ID's last group (its
// random part, ending in the shard) in front of the whole job ID, as in
// "3f9c0e51a2b7-0195f3c2-7d41-7a3e-9c55-3f9c0e51a2b7". The Asynq UI lists a
// task by the part of its ID before the first "-", and job IDs are
// time-ordered: as the job ID itself, every task submitted within about a
// minute would show the same eight characters. The ID is one per job, as
// the job ID is, so asynq's refusal of a second task with the same ID
// (ErrTaskIDConflict) still guards each job; every use of the queue derives
// it here.
func TaskID(jobID string) string {
	if len(jobID) < 12 {
		return jobID
	}
	return jobID[len(jobID)-12:] + "-" + jobID
}

// prefix is the start of every key the ledger writes.
const prefix = "sapq:"

// key names a key of the shard: "sapq:{sq7}:job:<id>".
func (s shard) key(name string) string {
	return prefix + "{sq" + strconv.FormatUint(uint64(s), 16) + "}:" + name
}

func (s shard) jobKey(id string) string { return s.key("job:" + id) }

// Per-shard keys.
func (s shard) metaKey() string       { return s.key("meta") }       // hash: run_id of the Redis serving the shard, loss_ms
func (s shard) jobsKey() string       { return s.key("jobs") }       // sorted set (lex): the shard's job IDs, for operators
func (s shard) unenqueuedKey() string { return s.key("unenqueued") } // sorted set (by time): recorded, not yet confirmed enqueued
func (s shard) expiryKey() string     { return s.key("expiry") }     // sorted set (by expiry time): "<id>|<caller hash>" of ended jobs
func (s shard) approvalsKey() string  { return s.key("approvals") }  // sorted set (by approval expiry): jobs awaiting approval
func (s shard) failedKey() string     { return s.key("failed") }     // sorted set (by time of failure): failed jobs, for operators' bulk actions

// queueMetaKey is a meta hash in the hash slot of asynq's keys of a queue
// ("asynq:{postings}:..."): the ledger watches that Redis node too.
func queueMetaKey(queue string) string { return prefix + "{" + queue + "}:meta" }

// idemKey is the key of a caller's idempotency key: the job ID it names.
func idemKeyOf(caller, key string) string {
	return shardOfKey(caller, key).key("idem:" + hex.EncodeToString(idemHash(caller, key)))
}

func idemHash(caller, key string) []byte {
	h := sha256.New()
	h.Write([]byte(caller))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum(nil)
}

// callerHash names a caller in keys without spelling it out.
func callerHash(caller string) string {
	sum := sha256.Sum256([]byte(caller))
	return hex.EncodeToString(sum[:16])
}

// callerKey is the shard's index of one caller's jobs (sorted set, lex).
func (s shard) callerKey(hash string) string { return s.key("caller:" + hash) }

// expiryMember is a job's entry in the expiry index: enough to remove it
// from the other indexes once the job itself has expired.
func expiryMember(id, caller string) string { return id + "|" + callerHash(caller) }

func parseExpiryMember(m string) (id, hash string, err error) {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i] == '|' {
			return m[:i], m[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("ledger: malformed expiry entry %q", m)
}

// jobKeys are the keys of one job, all in its shard.
type jobKeys struct {
	shard shard
	id    string
}

func keysOf(id string) (jobKeys, bool) {
	s, ok := shardOfJob(id)
	return jobKeys{shard: s, id: id}, ok
}

func (k jobKeys) job() string        { return k.shard.jobKey(k.id) }
func (k jobKeys) meta() string       { return k.shard.metaKey() }
func (k jobKeys) unenqueued() string { return k.shard.unenqueuedKey() }
func (k jobKeys) expiry() string     { return k.shard.expiryKey() }
func (k jobKeys) approvals() string  { return k.shard.approvalsKey() }
func (k jobKeys) failed() string     { return k.shard.failedKey() }

// allShards lists every shard, for operators' views over all jobs.
func allShards() []shard {
	out := make([]shard, shardCount)
	for i := range out {
		out[i] = shard(i)
	}
	return out
}
