// Package ledger is sapq's durable record of every posting: the idempotency
// index, each job's state in the exactly-once protocol, and its SAP result.
//
// The ledger lives in Redis beside asynq but independent of asynq's own task
// retention: asynq forgets a finished task at once and trims its archive
// silently, while a caller must be able to replay a key and read a result for
// the whole retention window. asynq only carries the job ID to a worker; the
// ledger is the source of truth for what the job is and where it stands.
//
// Keys (all under "sapq:"):
//
//	sapq:job:<id>                 hash: the job
//	sapq:idem:<sha256(caller,key)> string: job ID for an idempotency key
//	sapq:caller:<sha256(caller)>  sorted set (lex): the caller's job IDs
//	sapq:jobs                     sorted set (lex): every job ID, for operators
//	sapq:unenqueued               sorted set (by time): recorded, not yet confirmed enqueued
//
// Job IDs are UUIDv7, so lexical order is creation order. Multi-key scripts
// assume one Redis node (or Sentinel); Redis Cluster is not supported.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Defaults for Options.
const (
	DefaultQueue           = "postings"
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultFailedRetention = 90 * 24 * time.Hour
	DefaultMaxRetry        = 25
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
	Now             func() time.Time
	Logger          *slog.Logger
}

// Ledger records postings and their progress.
type Ledger struct {
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	opts      Options
	log       *slog.Logger
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Ledger{
		rdb:       opts.Redis,
		client:    asynq.NewClientFromRedisClient(opts.Redis),
		inspector: asynq.NewInspectorFromRedisClient(opts.Redis),
		opts:      opts,
		log:       opts.Logger.With("component", "ledger"),
	}, nil
}

// Queue is the asynq queue postings are enqueued on.
func (l *Ledger) Queue() string { return l.opts.Queue }

// Inspector exposes asynq's inspector on the ledger's Redis, for operators.
func (l *Ledger) Inspector() *asynq.Inspector { return l.inspector }

const prefix = "sapq:"

func jobKey(id string) string { return prefix + "job:" + id }

func idemKey(caller, key string) string {
	h := sha256.New()
	h.Write([]byte(caller))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return prefix + "idem:" + hex.EncodeToString(h.Sum(nil))
}

func callerKey(caller string) string {
	sum := sha256.Sum256([]byte(caller))
	return prefix + "caller:" + hex.EncodeToString(sum[:16])
}

const (
	allJobsKey    = prefix + "jobs"
	unenqueuedKey = prefix + "unenqueued"
)

func newJobID() string { return uuid.Must(uuid.NewV7()).String() }

func ms(t time.Time) int64 { return t.UnixMilli() }

// TaskPayload is what asynq carries: enough for an operator to see what the
// job is in the UI, while the worker reads the job itself from the ledger.
type TaskPayload struct {
	JobID   string          `json:"job_id"`
	Caller  string          `json:"caller"`
	Posting json.RawMessage `json:"posting"`
}

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
