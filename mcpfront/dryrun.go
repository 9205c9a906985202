package mcpfront

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// SAPChecker is the MCP front's access to SAP, which never posts: Check has
// SAP check a posting without posting it, for dry runs (journal entries: a
// test run; kinds SAP cannot check answer Checked false); HoldsDocument
// looks a job never sent up by its reference before it is cancelled
// (ledger.Cancel, worker/model FIX 5). *sap.Destinations implements it.
type SAPChecker interface {
	Check(ctx context.Context, destination string, r sap.Request, s sap.Send) (sap.CheckResult, error)
	ledger.SAPLookup
}

// Verdicts of a dry run: what the same call without dry_run would do.
const (
	VerdictWouldPost          = "would_post"           // record and queue it
	VerdictWouldAwaitApproval = "would_await_approval" // record it awaiting an operator's approval
	VerdictWouldReplay        = "would_replay"         // answer with the job the key already names
	VerdictSAPRefuses         = "sap_refuses"          // record it, and SAP would refuse it
)

// Verdicts lists every verdict.
var Verdicts = []string{VerdictWouldPost, VerdictWouldAwaitApproval, VerdictWouldReplay, VerdictSAPRefuses}

// DryRun is what a submit tool called with dry_run found; nothing was
// recorded or sent.
type DryRun struct {
	Verdict string `json:"verdict" jsonschema:"What the same call without dry_run would do: would_post, would_await_approval (an operator must approve it), would_replay (the key names job existing_job_id already), sap_refuses (SAP's check found errors: sap_check.messages)"`
	// Destination and Reference are the SAP system and the reference sapq
	// would write into SAP with the document.
	Destination string `json:"destination" jsonschema:"The SAP system the document would go to"`
	Reference   string `json:"reference" jsonschema:"The reference sapq would write into SAP with the document"`
	// ApprovalReason says why it would wait for approval.
	ApprovalReason string   `json:"approval_reason,omitempty" jsonschema:"Why it would need an operator's approval, naming the rule"`
	ExistingJobID  string   `json:"existing_job_id,omitempty" jsonschema:"The job your idempotency_key names already (verdict would_replay)"`
	SAPCheck       SAPCheck `json:"sap_check" jsonschema:"SAP's own check of the document, where SAP offers one"`
}

// SAPCheck is SAP's verdict on a document it checked without posting it.
type SAPCheck struct {
	Checked  bool            `json:"checked" jsonschema:"True when SAP checked the document"`
	Passed   bool            `json:"passed" jsonschema:"True when SAP found no error (checked only)"`
	Messages []tasks.Message `json:"messages,omitempty" jsonschema:"SAP's messages"`
	Note     string          `json:"note,omitempty" jsonschema:"Why SAP did not check it, when it did not"`
}

// dryRun answers a submission with dry_run: everything a submission checks,
// and SAP's own check where SAP has one, recording and sending nothing.
// Validation, routing and policy have passed when it is called.
func (s *Server) dryRun(ctx context.Context, req mcp.CallToolRequest, caller *Caller, p tasks.Posting, destination string, approval *Violation) *mcp.CallToolResult {
	note := noteOf(ctx)
	note.decision = decisionDryRun
	id, err := tasks.IdentityOfPosting(caller.Name, p, destination)
	if err != nil {
		return s.internal(ctx, req, caller, err)
	}
	out := DryRun{Verdict: VerdictWouldPost, Destination: destination, Reference: id.Reference()}
	if approval != nil {
		out.Verdict, out.ApprovalReason = VerdictWouldAwaitApproval, fmt.Sprintf("%s (rule %s)", approval.Message, approval.Rule)
	}
	existing, err := s.ledger.Lookup(ctx, caller.Name, p.IdempotencyKey())
	switch {
	case err == nil && existing.Fingerprint != id.Fingerprint:
		note.jobID = existing.ID
		return errorResult(codeConflict, fmt.Sprintf("dry run: a submission would be refused: idempotency key %q was already used for job %s with a different payload; use a new key for a different document.", p.IdempotencyKey(), existing.ID), []tasks.FieldError{{
			Field: "idempotency_key", Message: fmt.Sprintf("already used for job %s with different content", existing.ID)}})
	case err == nil:
		note.jobID = existing.ID
		out.Verdict, out.ExistingJobID = VerdictWouldReplay, existing.ID
		out.SAPCheck.Note = "not checked: the job exists already; follow it with get_posting"
		return mcp.NewToolResultStructuredOnly(SubmitResult{Kind: p.Kind(), DryRun: &out})
	case !errors.Is(err, ledger.ErrNotFound):
		return s.internal(ctx, req, caller, err)
	}
	out.SAPCheck = s.checkWithSAP(ctx, p, destination, out.Reference)
	if out.SAPCheck.Checked && !out.SAPCheck.Passed {
		out.Verdict = VerdictSAPRefuses
	}
	s.log.InfoContext(ctx, "dry run", "caller", caller.Name, "kind", p.Kind(), "verdict", out.Verdict)
	return mcp.NewToolResultStructuredOnly(SubmitResult{Kind: p.Kind(), DryRun: &out})
}

func (s *Server) checkWithSAP(ctx context.Context, p tasks.Posting, destination, reference string) SAPCheck {
	if s.checker == nil {
		return SAPCheck{Note: "not checked: this server has no connection to SAP for dry runs; sapq checked the document against SAP's field rules and your policy"}
	}
	r, err := sap.NewRequest(p)
	if err != nil {
		return SAPCheck{Note: "not checked: " + err.Error()}
	}
	res, err := s.checker.Check(ctx, destination, r, sap.Send{Reference: reference})
	if err != nil {
		// The check is advisory: SAP's unavailability is reported, and a
		// submission would still be accepted and retried by the workers.
		return SAPCheck{Note: "not checked: SAP could not be asked (" + firstLine(err.Error(), 200) + ")"}
	}
	if !res.Checked {
		return SAPCheck{Note: fmt.Sprintf("not checked: SAP offers no check without posting for %s postings; sapq checked the document against SAP's field rules and your policy", p.Kind())}
	}
	out := SAPCheck{Checked: true, Passed: res.Passed}
	for _, m := range res.Messages {
		out.Messages = append(out.Messages, tasks.Message{Code: m.Code, Text: m.Text, Severity: m.Severity})
	}
	return out
}

// firstLine cuts s at its first line break and to at most max bytes.
func firstLine(s string, max int) string {
	for i, r := range s {
		if r == '\n' || i >= max {
			return s[:i]
		}
	}
	return s
}
