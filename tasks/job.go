package tasks

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"time"
)

// Status is where a posting job stands, as agents and operators see it.
type Status string

const (
	// StatusAwaitingApproval: recorded, and held until an operator other
	// than the submitter approves it (four-eyes); nothing is sent before.
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusQueued           Status = "queued"    // recorded and waiting for a worker
	StatusRunning          Status = "running"   // a worker is on it
	StatusRetrying         Status = "retrying"  // an attempt failed; another follows after a backoff
	StatusSucceeded        Status = "succeeded" // SAP posted it; Result holds the document
	StatusFailed           Status = "failed"    // gave up; Error says why; operators can reprocess
	StatusCancelled        Status = "cancelled" // withdrawn while SAP held no document for it
	// StatusRejected: an operator rejected it, or its approval expired;
	// it was never sent, and never will be.
	StatusRejected Status = "rejected"
)

// Statuses lists every job status.
var Statuses = []Status{StatusAwaitingApproval, StatusQueued, StatusRunning, StatusRetrying, StatusSucceeded, StatusFailed, StatusCancelled, StatusRejected}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, known := range Statuses {
		if s == known {
			return true
		}
	}
	return false
}

// Terminal reports whether no worker will touch the job again on its own.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled || s == StatusRejected
}

// InQueue reports whether the queue holds (or is about to hold) a task
// that runs the job: a job awaiting approval has none until it is
// approved, and an ended job none any more.
func (s Status) InQueue() bool {
	return s == StatusQueued || s == StatusRunning || s == StatusRetrying
}

// Phase is the exactly-once protocol's view of a job, modelled on tRFC
// (check, execute, commit, confirm). Only PhasePending jobs can be cancelled:
// once a job is PhaseSending, SAP may hold a document for it until a look-up
// proves otherwise.
type Phase string

const (
	PhasePending Phase = "pending" // SAP holds no document for this job
	PhaseSending Phase = "sending" // a call went out and its outcome is not known
	PhasePosted  Phase = "posted"  // SAP posted it and the result is recorded
)

// ErrorCategory classifies why an attempt failed.
type ErrorCategory string

const (
	CategoryPermanent ErrorCategory = "permanent"       // fix the data, then reprocess
	CategoryTransient ErrorCategory = "transient"       // nothing posted; retried automatically
	CategoryUnknown   ErrorCategory = "outcome_unknown" // SAP may have posted; reconciled before any resend
	// CategoryReversed: SAP holds the posting's document, reversed; sapq
	// does not post it again.
	CategoryReversed ErrorCategory = "reversed"
)

// ErrorCategories lists every error category.
var ErrorCategories = []ErrorCategory{CategoryPermanent, CategoryTransient, CategoryUnknown, CategoryReversed}

// Severities are the severities of SAP messages.
var Severities = []string{"success", "info", "warning", "error"}

// Message is a message from SAP, such as "F5/201 Posting period 011 2024 is not open".
type Message struct {
	Code     string `json:"code,omitempty" jsonschema:"SAP message class/number, for example F5/201"`
	Text     string `json:"text" jsonschema:"Message text"`
	Severity string `json:"severity,omitempty" jsonschema:"success, info, warning or error"`
}

// Result is what SAP returned for a posted document.
type Result struct {
	Document    string    `json:"document" jsonschema:"SAP document number"`
	FiscalYear  string    `json:"fiscal_year" jsonschema:"Fiscal year of the document"`
	CompanyCode string    `json:"company_code" jsonschema:"Company code of the document"`
	Messages    []Message `json:"messages,omitempty" jsonschema:"Messages SAP returned with the document"`
	// Reconciled is true when the document was found by look-up, rather
	// than returned by the post.
	Reconciled bool `json:"reconciled,omitempty" jsonschema:"True when sapq found the document in SAP after a lost response"`
	// ReversedBy is the document that reversed this one in SAP.
	ReversedBy string `json:"reversed_by,omitempty" jsonschema:"The SAP document that reversed this one, if it was reversed"`
}

// JobError is the last failure of a job.
type JobError struct {
	Code     string        `json:"code,omitempty" jsonschema:"SAP message class/number or a sapq code"`
	Message  string        `json:"message" jsonschema:"What went wrong"`
	Category ErrorCategory `json:"category" jsonschema:"permanent (fix the data and reprocess), transient (retried automatically) or outcome_unknown (reconciled with SAP before any resend)"`
}

// Decision is an operator's answer to a posting awaiting approval.
type Decision string

const (
	DecisionApproved Decision = "approved"
	DecisionRejected Decision = "rejected"
	// DecisionExpired: nobody decided within the approval's time; the
	// posting was rejected on its own.
	DecisionExpired Decision = "expired"
)

// Decisions lists every decision.
var Decisions = []Decision{DecisionApproved, DecisionRejected, DecisionExpired}

// Approval is the four-eyes record of a posting that needed an operator's
// approval: why, until when, and who decided what. The approval is bound to
// PayloadHash, the fingerprint of the exact payload the operator was shown;
// the worker sends nothing whose payload does not hash to it.
type Approval struct {
	Reason      string    `json:"reason" jsonschema:"Why the posting needs an operator's approval, naming the policy rule"`
	PayloadHash string    `json:"payload_hash" jsonschema:"Fingerprint of the exact payload to approve; approve_posting must quote it"`
	RequestedAt time.Time `json:"requested_at" jsonschema:"When approval was requested (RFC 3339)"`
	ExpiresAt   time.Time `json:"expires_at" jsonschema:"When the posting is rejected on its own if nobody decides (RFC 3339)"`
	Decision    Decision  `json:"decision,omitempty" jsonschema:"approved, rejected or expired; empty while waiting"`
	DecidedBy   string    `json:"decided_by,omitempty" jsonschema:"The operator who approved or rejected it"`
	DecidedAt   time.Time `json:"decided_at,omitzero" jsonschema:"When it was decided (RFC 3339)"`
	Comment     string    `json:"comment,omitempty" jsonschema:"The operator's comment or reason"`
}

// Job is one posting as recorded in the ledger: the source of truth for its
// status and result, independent of the queue's own retention.
type Job struct {
	ID             string          `json:"id"`
	Caller         string          `json:"caller"`
	Kind           Kind            `json:"kind"`
	IdempotencyKey string          `json:"idempotency_key"`
	Fingerprint    string          `json:"fingerprint"`
	Payload        json.RawMessage `json:"payload"`
	Status         Status          `json:"status"`
	Phase          Phase           `json:"phase"`
	// Attempts counts the calls to SAP begun for the job.
	Attempts int `json:"attempts"`
	// Generation numbers the SOAP message UUID the next call carries (see
	// Identity.MessageUUID): kept after an unknown outcome, advanced after
	// a definite refusal.
	Generation int `json:"generation"`
	// Run counts reprocessings: a delivery of a task from an earlier run is
	// stale and does nothing.
	Run int `json:"run"`
	// Destination is the SAP system the job is posted to and Reference the
	// reference sapq writes into SAP with the document; both are fixed by
	// the job's first call.
	Destination   string    `json:"destination,omitempty"`
	Reference     string    `json:"reference,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	SendStartedAt time.Time `json:"send_started_at,omitzero"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Result        *Result   `json:"result,omitempty"`
	Error         *JobError `json:"error,omitempty"`
	// Approval is set for a posting that needed an operator's approval.
	Approval *Approval `json:"approval,omitempty"`
	// WrittenAt is when the ledger last wrote the job's state, by Redis's
	// clock: a state written before a Redis loss may be older than what
	// SAP holds.
	WrittenAt time.Time `json:"-"`
	// SendToken is the ledger's fence of the call in flight: the outcome of
	// a call is recorded only by the delivery that began it.
	SendToken string `json:"-"`
	// LossSeen is the shard's last Redis loss as the delivery that claimed
	// the job saw it: a delivery that claimed before a later loss records
	// no failure.
	LossSeen time.Time `json:"-"`
	// TraceParent is the W3C traceparent of the submission that recorded
	// the job: its attempts and SAP calls continue that trace. Metadata,
	// outside the payload and its fingerprint, so replays are unaffected.
	TraceParent string `json:"-"`
}

// CheckApproval reports whether the job may be sent as far as four-eyes
// approval goes: it needed none, or an operator approved exactly this
// payload. It recomputes the payload's fingerprint rather than trusting the
// stored one, so that a payload changed after the approval (by hand in
// Redis, or by a bug) cannot ride on it.
func (j *Job) CheckApproval() error {
	if j.Approval == nil {
		return nil
	}
	if j.Approval.Decision != DecisionApproved {
		return fmt.Errorf("the posting needs an operator's approval and has none (%s)", cmp.Or(string(j.Approval.Decision), "waiting"))
	}
	fp, err := j.PayloadFingerprint()
	if err != nil {
		return err
	}
	if fp != j.Approval.PayloadHash {
		return fmt.Errorf("the payload is not the one %s approved (fingerprint %s, approved %s); it is not sent", j.Approval.DecidedBy, fp, j.Approval.PayloadHash)
	}
	return nil
}

// PayloadFingerprint computes the fingerprint of the stored payload, as
// opposed to the stored Fingerprint, which a changed payload would not
// change.
func (j *Job) PayloadFingerprint() (string, error) {
	p, err := j.Posting()
	if err != nil {
		return "", err
	}
	fp, _, err := Fingerprint(p)
	return fp, err
}

// Posting decodes the job's stored payload. It was validated when it was
// accepted and is not validated again:
// an accepted posting is sent as accepted, and a rule tightened since (a new
// release, a currency table update) must not fail a job, let alone one whose
// earlier call may already have posted it.
func (j *Job) Posting() (Posting, error) { return decode(j.Kind, j.Payload) }

// identityJSONer is a posting whose fingerprint is of identityJSON rather
// than of its whole JSON.
type identityJSONer interface{ identityJSON() ([]byte, error) }

// Fingerprint identifies a posting's content, so that the same idempotency
// key with a different payload is detected. It is the SHA-256 of the
// posting's canonical JSON (struct field order, no insignificant whitespace).
//
// A posting that names what it acts on by a handle that may change while
// the thing does not (a reversal names its original by job_id, and a job
// the ledger forgot comes back under a new ID) is fingerprinted by what it
// acts on instead: its identityJSON. The payload stays the whole posting.
func Fingerprint(p Posting) (string, []byte, error) {
	canonical, err := json.Marshal(p)
	if err != nil {
		return "", nil, err
	}
	hashed := canonical
	if ij, ok := p.(identityJSONer); ok {
		if hashed, err = ij.identityJSON(); err != nil {
			return "", nil, err
		}
	}
	sum := sha256.Sum256(append([]byte(p.Kind()+"\x00"), hashed...))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]), canonical, nil
}
