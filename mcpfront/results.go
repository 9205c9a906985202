package mcpfront

import (
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/tasks"
)

// SubmitResult is what the submit tools return: the job, or for a dry run
// what a submission would do.
type SubmitResult struct {
	JobID            string          `json:"job_id,omitempty" jsonschema:"The job's ID: pass it to get_posting to follow the posting (absent for a dry run)"`
	Kind             tasks.Kind      `json:"kind" jsonschema:"Posting kind"`
	Status           tasks.Status    `json:"status,omitempty" jsonschema:"The job's status now; usually queued (absent for a dry run)"`
	Replayed         bool            `json:"replayed" jsonschema:"True when this idempotency key was already submitted with the same content: this is the original job and nothing new was recorded"`
	PollAfterSeconds int             `json:"poll_after_seconds,omitempty" jsonschema:"Seconds to wait before calling get_posting"`
	DryRun           *DryRun         `json:"dry_run,omitempty" jsonschema:"Set for a call with dry_run true: what the call would do, and SAP's check; nothing was recorded or sent"`
	Approval         *tasks.Approval `json:"approval,omitempty" jsonschema:"Set when the posting needs an operator's approval: why, and until when"`
	WaitingFor       string          `json:"waiting_for,omitempty" jsonschema:"Who must act before the posting goes on, when it is not sapq"`
}

// Posting is a job as agents see it: get_posting returns one, list_postings
// a page of them.
type Posting struct {
	JobID          string          `json:"job_id" jsonschema:"The job's ID"`
	Kind           tasks.Kind      `json:"kind" jsonschema:"Posting kind: supplier_invoice or journal_entry"`
	IdempotencyKey string          `json:"idempotency_key" jsonschema:"The idempotency key the job was submitted with"`
	Status         tasks.Status    `json:"status" jsonschema:"awaiting_approval (an operator must approve it first), queued, running, retrying, succeeded (result holds the SAP document), failed (error says why), cancelled or rejected (by an operator, or unapproved in time)"`
	Attempts       int             `json:"attempts" jsonschema:"How many times a worker has tried to post the job"`
	NextAttemptAt  *time.Time      `json:"next_attempt_at,omitempty" jsonschema:"When the next attempt is due (status retrying)"`
	CreatedAt      time.Time       `json:"created_at" jsonschema:"When the job was submitted (RFC 3339)"`
	UpdatedAt      time.Time       `json:"updated_at" jsonschema:"When the job last changed (RFC 3339)"`
	Result         *tasks.Result   `json:"result,omitempty" jsonschema:"The SAP document (status succeeded)"`
	Error          *tasks.JobError `json:"error,omitempty" jsonschema:"The last failure (status failed or retrying)"`
	Approval       *tasks.Approval `json:"approval,omitempty" jsonschema:"The four-eyes record of a posting that needed an operator's approval"`
	WaitingFor     string          `json:"waiting_for,omitempty" jsonschema:"Who must act before the posting goes on (status awaiting_approval)"`
}

// PostingList is what list_postings returns.
type PostingList struct {
	Postings   []Posting `json:"postings" jsonschema:"Your postings, newest first"`
	NextCursor string    `json:"next_cursor" jsonschema:"Pass as cursor to get the next page; empty when this is the last page"`
}

func postingOf(j tasks.Job) Posting {
	p := Posting{
		JobID:          j.ID,
		Kind:           j.Kind,
		IdempotencyKey: j.IdempotencyKey,
		Status:         j.Status,
		Attempts:       j.Attempts,
		CreatedAt:      j.CreatedAt.UTC(),
		UpdatedAt:      j.UpdatedAt.UTC(),
		Result:         j.Result,
		Error:          j.Error,
		Approval:       j.Approval,
		WaitingFor:     waitingFor(j),
	}
	if !j.NextAttemptAt.IsZero() {
		t := j.NextAttemptAt.UTC()
		p.NextAttemptAt = &t
	}
	return p
}

// waitingFor says who must act on a job awaiting approval.
func waitingFor(j tasks.Job) string {
	if j.Status != tasks.StatusAwaitingApproval || j.Approval == nil {
		return ""
	}
	return fmt.Sprintf("an operator other than %s must approve or reject it before %s (approve_posting or reject_posting, or sapq jobs approve|reject); nothing is sent to SAP before that, and unapproved it is rejected at that time",
		j.Caller, j.Approval.ExpiresAt.UTC().Format(time.RFC3339))
}

// Error codes of failed tool calls, also the metrics' outcomes.
const (
	codeInvalidArgument    = "invalid_argument"
	codeConflict           = "idempotency_conflict"
	codeNotFound           = "not_found"
	codeNotCancellable     = "not_cancellable"
	codeUnauthenticated    = "unauthenticated"
	codeForbidden          = "forbidden"
	codePolicy             = "policy_violation"
	codeRateLimited        = "rate_limited"
	codeInternal           = "internal"
	errorMetaKey           = "sapq/error"
	internalErrorMessage   = "sapq could not complete the request because of an internal error. Nothing was lost: call again with exactly the same arguments in a moment (for a submission, with the same idempotency_key)."
	unauthenticatedMessage = "this call carries no caller identity; sapq refuses to act on postings for an unknown caller"
)

// ToolError is the machine-readable form of a failed tool call, sent in the
// result's _meta under "sapq/error". It is deliberately not sent as
// structuredContent: clients such as the TypeScript SDK validate any
// structuredContent against the tool's output schema, even on error results,
// and would turn a clear error into a schema violation.
type ToolError struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Fields  []tasks.FieldError `json:"fields,omitempty"`
	// Rule is the policy rule that refused (policy_violation, rate_limited).
	Rule string `json:"rule,omitempty"`
	// RetryAfterSeconds says when to call again (rate_limited).
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
	// TraceID identifies the call in sapq's logs (internal).
	TraceID string `json:"trace_id,omitempty"`
}

// errorResult builds an IsError tool result whose text states the code, the
// message and every field violation on its own line, for a model to act on.
func errorResult(code, message string, fields []tasks.FieldError) *mcp.CallToolResult {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", code, message)
	for _, f := range fields {
		b.WriteString("\n- ")
		b.WriteString(f.String())
	}
	res := mcp.NewToolResultError(b.String())
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{
		errorMetaKey: ToolError{Code: code, Message: message, Fields: fields},
	}}
	return res
}

func invalidArgument(verr *tasks.ValidationError, what string) *mcp.CallToolResult {
	return errorResult(codeInvalidArgument, what, verr.Fields)
}

// errorCodeOf returns the code of a result built by errorResult.
func errorCodeOf(res *mcp.CallToolResult) string {
	if res == nil || res.Meta == nil {
		return ""
	}
	if te, ok := res.Meta.AdditionalFields[errorMetaKey].(ToolError); ok {
		return te.Code
	}
	return ""
}
