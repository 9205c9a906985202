package mcpfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// The operators' tools of four-eyes approval. Only callers with the
// postings:operate scope (role operator) see them; the ledger refuses a
// decision on one's own posting, so four eyes are two people whatever the
// callers file says.
const (
	ToolListApprovals  = "list_approvals"
	ToolApprovePosting = "approve_posting"
	ToolRejectPosting  = "reject_posting"
)

const (
	descListApprovals = `List the postings that wait for an operator's approval, those whose approval expires first first, with the document each would send to SAP, who submitted it, why it needs approval and its payload_hash. Read-only. You may approve or reject only postings you did not submit yourself.`

	descApprovePosting = `Approve a posting that waits for approval (status awaiting_approval), so that sapq posts it to SAP exactly once. Read the document first with list_approvals, and quote its approval.payload_hash: the approval applies to exactly that payload, and is refused (payload_mismatch) if the posting is not the one you read. You cannot approve a posting you submitted yourself (four-eyes), nor one whose approval has expired. Approving again what you approved answers with the posting. Returns the posting, now queued.`

	descRejectPosting = `Reject a posting that waits for approval (status awaiting_approval): it is never sent to SAP, and its submitter sees status rejected with your reason. You cannot reject a posting you submitted yourself; withdraw it with cancel_posting instead. Returns the posting.`
)

// approveArgs is the input of approve_posting.
type approveArgs struct {
	JobID       string `json:"job_id" jsonschema:"The job_id of the posting, from list_approvals"`
	PayloadHash string `json:"payload_hash" jsonschema:"approval.payload_hash of the posting as list_approvals showed it"`
	Comment     string `json:"comment,omitempty" sapq:"text,255" jsonschema:"Why you approve it, for the record"`
}

// rejectArgs is the input of reject_posting.
type rejectArgs struct {
	JobID  string `json:"job_id" jsonschema:"The job_id of the posting, from list_approvals"`
	Reason string `json:"reason" sapq:"text,255" jsonschema:"Why you reject it; the submitter reads it"`
}

// approvalListArgs is the input of list_approvals.
type approvalListArgs struct {
	Limit *int `json:"limit,omitempty" jsonschema:"At most this many postings, 1 to 100 (default 20)"`
}

// ApprovalItem is one posting awaiting approval as an operator sees it.
type ApprovalItem struct {
	Posting     Posting        `json:"posting" jsonschema:"The posting; posting.approval says why it needs approval and its payload_hash"`
	SubmittedBy string         `json:"submitted_by" jsonschema:"The caller who submitted it"`
	Document    map[string]any `json:"document" jsonschema:"The document exactly as it would be sent, in the submit tool's arguments"`
}

// ApprovalList is what list_approvals returns.
type ApprovalList struct {
	Approvals []ApprovalItem `json:"approvals" jsonschema:"Postings awaiting approval, soonest to expire first"`
	Waiting   int            `json:"waiting" jsonschema:"How many postings wait for approval in all"`
}

func (s *Server) approvalTools() []server.ServerTool {
	read := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	}
	decide := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true), // a decision stands
		mcp.WithIdempotentHintAnnotation(true),  // deciding the same again changes nothing
		mcp.WithOpenWorldHintAnnotation(true),   // an approval sends the posting to SAP
	}
	tool := func(name, title, desc string, in, out mcp.ToolOption, ann []mcp.ToolOption) mcp.Tool {
		opts := []mcp.ToolOption{mcp.WithToolTitle(title), mcp.WithDescription(desc), mcp.WithTitleAnnotation(title), in, out}
		return mcp.NewTool(name, append(opts, ann...)...)
	}
	return []server.ServerTool{
		{
			Tool: tool(ToolListApprovals, "List postings awaiting approval", descListApprovals,
				inputSchema[approvalListArgs](fixApprovalListArgs), outputSchema[ApprovalList](fixApprovalList), read),
			Handler: asCaller(s.listApprovals),
		},
		{
			Tool: tool(ToolApprovePosting, "Approve posting", descApprovePosting,
				inputSchema[approveArgs](fixDecisionArgs), outputSchema[Posting](fixPosting), decide),
			Handler: asCaller(s.approvePosting),
		},
		{
			Tool: tool(ToolRejectPosting, "Reject posting", descRejectPosting,
				inputSchema[rejectArgs](fixDecisionArgs), outputSchema[Posting](fixPosting), decide),
			Handler: asCaller(s.rejectPosting),
		},
	}
}

func (s *Server) listApprovals(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args approvalListArgs
	if res := s.decodeOperatorArgs(req, &args); res != nil {
		return res, nil
	}
	limit := defaultListLimit
	if args.Limit != nil {
		if *args.Limit < 1 || *args.Limit > maxListLimit {
			return invalidArgument(fieldError("limit", fmt.Sprintf("must be between 1 and %d, got %d", maxListLimit, *args.Limit)), "invalid list_approvals arguments:"), nil
		}
		limit = *args.Limit
	}
	jobs, waiting, err := s.ledger.Approvals(ctx, limit)
	if err != nil {
		return s.internal(ctx, req, caller, err), nil
	}
	out := ApprovalList{Approvals: make([]ApprovalItem, 0, len(jobs)), Waiting: waiting}
	for _, j := range jobs {
		var doc map[string]any
		if err := json.Unmarshal(j.Payload, &doc); err != nil {
			return s.internal(ctx, req, caller, fmt.Errorf("job %s: payload: %w", j.ID, err)), nil
		}
		out.Approvals = append(out.Approvals, ApprovalItem{Posting: postingOf(j), SubmittedBy: j.Caller, Document: doc})
	}
	return mcp.NewToolResultStructuredOnly(out), nil
}

func (s *Server) approvePosting(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args approveArgs
	if res := s.decodeOperatorArgs(req, &args); res != nil {
		return res, nil
	}
	note := noteOf(ctx)
	note.jobID = args.JobID
	job, err := s.ledger.Approve(ctx, args.JobID, caller.Name, args.PayloadHash, args.Comment)
	if err != nil {
		return s.decisionError(ctx, req, caller, args.JobID, err), nil
	}
	note.decision, note.kind = decisionApproved, string(job.Kind)
	s.log.InfoContext(ctx, "posting approved", "operator", caller.Name, "job_id", job.ID, "submitter", job.Caller)
	return mcp.NewToolResultStructuredOnly(postingOf(job)), nil
}

func (s *Server) rejectPosting(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args rejectArgs
	if res := s.decodeOperatorArgs(req, &args); res != nil {
		return res, nil
	}
	note := noteOf(ctx)
	note.jobID = args.JobID
	job, err := s.ledger.Reject(ctx, args.JobID, caller.Name, args.Reason)
	if err != nil {
		return s.decisionError(ctx, req, caller, args.JobID, err), nil
	}
	note.decision, note.kind = decisionRejected, string(job.Kind)
	s.log.InfoContext(ctx, "posting rejected", "operator", caller.Name, "job_id", job.ID, "submitter", job.Caller)
	return mcp.NewToolResultStructuredOnly(postingOf(job)), nil
}

// decodeOperatorArgs decodes an operator tool's arguments strictly and
// applies their field rules; it returns a result only when they are
// invalid.
func (s *Server) decodeOperatorArgs(req mcp.CallToolRequest, v any) *mcp.CallToolResult {
	raw, err := rawArguments(req)
	if err != nil {
		return errorResult(codeInvalidArgument, "arguments are not a JSON object", nil)
	}
	verr := decodeArgs(raw, v)
	if verr == nil {
		var fields []tasks.FieldError
		if err := tasks.CheckFields(v); err != nil {
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) {
				return errorResult(codeInvalidArgument, err.Error(), nil)
			}
			fields = ve.Fields
		}
		switch a := v.(type) {
		case *approveArgs:
			fields = append(fields, checkJobID(a.JobID, "list_approvals")...)
			if a.PayloadHash == "" {
				fields = append(fields, tasks.FieldError{Field: "payload_hash", Message: "is required: the approval.payload_hash list_approvals showed for this posting"})
			} else if len(a.PayloadHash) > maxJobIDLen {
				fields = append(fields, tasks.FieldError{Field: "payload_hash", Message: "is not a payload hash; quote approval.payload_hash unchanged"})
			}
		case *rejectArgs:
			fields = append(fields, checkJobID(a.JobID, "list_approvals")...)
			if a.Reason == "" {
				fields = append(fields, tasks.FieldError{Field: "reason", Message: "is required: say why, the submitter reads it"})
			}
		}
		if fields != nil {
			verr = &tasks.ValidationError{Fields: fields}
		}
	}
	if verr != nil {
		return invalidArgument(verr, fmt.Sprintf("invalid %s arguments:", req.Params.Name))
	}
	return nil
}

// checkJobID checks a job_id argument; from names where it comes from.
func checkJobID(id, from string) []tasks.FieldError {
	switch {
	case id == "":
		return []tasks.FieldError{{Field: "job_id", Message: "is required: the job_id from " + from}}
	case len(id) > maxJobIDLen:
		return []tasks.FieldError{{Field: "job_id", Message: fmt.Sprintf("is not a job ID (at most %d characters)", maxJobIDLen)}}
	}
	return nil
}

// Error codes of decisions.
const (
	codeNotAwaitingApproval = "not_awaiting_approval"
	codePayloadMismatch     = "payload_mismatch"
	codeApprovalExpired     = "approval_expired"
)

func (s *Server) decisionError(ctx context.Context, req mcp.CallToolRequest, caller *Caller, id string, err error) *mcp.CallToolResult {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return errorResult(codeNotFound, fmt.Sprintf("there is no posting with job_id %q; take the job_id from list_approvals", id), nil)
	case errors.Is(err, ledger.ErrOwnPosting):
		note := noteOf(ctx)
		note.rule = "four_eyes"
		return errorResult(codeForbidden, "you submitted this posting yourself; another operator must approve or reject it (rule four_eyes). Withdraw it with cancel_posting if it should not be posted.", nil)
	case errors.Is(err, ledger.ErrPayloadMismatch):
		return errorResult(codePayloadMismatch, "payload_hash is not this posting's: nothing was approved. Read the posting again with list_approvals and approve the document it shows, quoting its approval.payload_hash.", nil)
	case errors.Is(err, ledger.ErrApprovalExpired):
		return errorResult(codeApprovalExpired, fmt.Sprintf("nothing was approved: %v", err), nil)
	case errors.Is(err, ledger.ErrNotAwaitingApproval), errors.Is(err, ledger.ErrMayBePosted):
		return errorResult(codeNotAwaitingApproval, fmt.Sprintf("nothing changed: %v", err), nil)
	}
	return s.internal(ctx, req, caller, err)
}

func fixApprovalListArgs(s map[string]any) {
	limit := prop(s, "limit")
	limit["type"] = "integer"
	limit["minimum"], limit["maximum"], limit["default"] = 1, maxListLimit, defaultListLimit
}

func fixApprovalList(s map[string]any) { fixPosting(prop(s, "approvals", "[]", "posting")) }

func fixDecisionArgs(s map[string]any) {
	fixJobRef(s)
	props := s["properties"].(map[string]any)
	for f, max := range map[string]int{"payload_hash": maxJobIDLen, "comment": 255, "reason": 255} {
		if p, ok := props[f].(map[string]any); ok {
			p["maxLength"] = max
		}
	}
}
