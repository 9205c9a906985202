// Package ledger is sapq's durable record of every posting: the idempotency
// index, each job's state in the exactly-once protocol, and its SAP result.
//
// The ledger lives in Redis beside asynq but independent of asynq's own task
// retention: asynq forgets a finished task at once and trims its archive
// silently, while a caller must be able to replay a key and read a result for
// the whole retention window. asynq only carries the job ID to a worker; the
// ledger is the source of truth for what the job is and where it stands.
//
// Keys (all under "sapq:", spread over 16 shards whose keys share a Redis
// Cluster hash tag {sqN}; see keys.go):
//
//	sapq:{sqN}:job:<id>             hash: the job
//	sapq:{sqN}:idem:<sha256(caller,key)> string: job ID for an idempotency key
//	sapq:{sqN}:caller:<sha256(caller)> sorted set (lex): the caller's job IDs in the shard
//	sapq:{sqN}:jobs                 sorted set (lex): the shard's job IDs, for operators
//	sapq:{sqN}:unenqueued           sorted set (by time): recorded, not yet confirmed enqueued
//	sapq:{sqN}:expiry               sorted set (by expiry time): ended jobs, for trimming the indexes
//	sapq:{sqN}:approvals            sorted set (by approval expiry): jobs awaiting an operator's approval
//	sapq:{sqN}:failed               sorted set (by time of failure): failed jobs, for operators' bulk actions
//	sapq:{sqN}:meta                 hash: run_id of the Redis serving the shard, time of its last loss
//
// Job IDs are UUIDv7 whose last hex digit names the shard, so lexical order
// is creation order. Every script touches one shard only and builds no key
// of its own, so the ledger runs on a single Redis, Sentinel or Redis Cluster.
//
// The scripts that decide whether a call to SAP may go out (Claim,
// BeginSend) also check that the Redis answering is the one that wrote the
// shard's records: a restart, a failover or an emptied database shows as
// another run_id, and starts a loss window in which nothing is sent (see
// loss.go).
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Defaults for Options.
const (
	DefaultQueue           = "postings"
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultFailedRetention = 90 * 24 * time.Hour
	DefaultMaxRetry        = 25
	DefaultSettle          = 90 * time.Second
)

var (
	// ErrNotFound is returned for unknown jobs and for other callers' jobs,
	// so that a caller cannot probe for IDs it does not own.
	ErrNotFound = errors.New("posting not found")
	// ErrConflict is the class of *ConflictError.
	ErrConflict = errors.New("idempotency key already used with a different payload")
	// ErrNotCancellable is returned when SAP may already hold the document.
	ErrNotCancellable = errors.New("posting can no longer be cancelled")
)

// ConflictError reports an idempotency key reused with another payload.
type ConflictError struct {
	JobID string
	Key   string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q was already used for job %s with a different payload; use a new key for a different document, or resend exactly the original payload", e.Key, e.JobID)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Options configures a Ledger.
type Options struct {
	Redis           redis.UniversalClient // required; owned by the caller
	Queue           string                // asynq queue for postings
	Retention       time.Duration         // keys and finished jobs are kept at least this long
	FailedRetention time.Duration         // failed jobs stay reprocessable this long
	MaxRetry        int                   // attempts budget handed to asynq
	// Settle is how long after a call to SAP began (BeginSend) SAP may
	// still be processing it: the request may reach SAP up to the SAP
	// timeout after that, and SAP finishes what it received even when the
	// client gave up. A job whose last call's outcome is unknown is looked
	// up only after it; after a Redis loss no call is sent until it has
	// passed since the loss was detected. Default DefaultSettle (the
	// default SAP timeout, 30 s, and SAP's ICM processing timeout, 60 s).
	Settle time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Ledger records postings and their progress.
type Ledger struct {
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	opts      Options
	log       *slog.Logger
	seq       seqWatch
	notify    *notifier
	unmarks   *unmarker
}

// New returns a Ledger over the given Redis client.
func New(opts Options) (*Ledger, error) {
	if opts.Redis == nil {
		return nil, errors.New("ledger: Options.Redis is required")
	}
	if opts.Queue == "" {
		opts.Queue = DefaultQueue
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.FailedRetention <= 0 {
		opts.FailedRetention = DefaultFailedRetention
	}
	if opts.FailedRetention < opts.Retention {
		opts.FailedRetention = opts.Retention
	}
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = DefaultMaxRetry
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Ledger{
		rdb:       opts.Redis,
		client:    asynq.NewClientFromRedisClient(opts.Redis),
		inspector: asynq.NewInspectorFromRedisClient(opts.Redis),
		opts:      opts,
		log:       opts.Logger.With("component", "ledger"),
		notify:    newNotifier(opts.Redis),
	}
	l.unmarks = newUnmarker(l)
	return l, nil
}

// Close ends the ledger's subscription to job notifications (see Wait),
// if it has one. The Redis client stays open: it is the caller's.
func (l *Ledger) Close() error {
	l.notify.close()
	return nil
}

// Queue is the asynq queue postings are enqueued on.
func (l *Ledger) Queue() string { return l.opts.Queue }

// Inspector exposes asynq's inspector on the ledger's Redis, for operators.
func (l *Ledger) Inspector() *asynq.Inspector { return l.inspector }

// Settle is how long a call to SAP may still be in flight (Options.Settle).
func (l *Ledger) Settle() time.Duration { return l.opts.Settle }

func ms(t time.Time) int64 { return t.UnixMilli() }

// TaskPayload is what asynq carries: enough for an operator to see what the
// job is in the UI, while the worker reads the job itself from the ledger.
// Run is the job's reprocessing count when the task was enqueued: a
// delivery of an older run's task is stale.
type TaskPayload struct {
	JobID   string          `json:"job_id"`
	Caller  string          `json:"caller"`
	Run     int             `json:"run"`
	Posting json.RawMessage `json:"posting"`
}

// buildTaskPayload encodes an asynq task's payload.
func buildTaskPayload(p TaskPayload) ([]byte, error) { return json.Marshal(p) }

// ParseTaskPayload decodes an asynq task's payload.
func ParseTaskPayload(b []byte) (TaskPayload, error) {
	var p TaskPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("ledger: task payload: %w", err)
	}
	if p.JobID == "" {
		return p, errors.New("ledger: task payload has no job_id")
	}
	return p, nil
}

func (l *Ledger) ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
