package mcpfront

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// Names of the tools that are not a posting kind's submit tool (those are
// named by the kinds' specs, tasks.Spec.Tool).
const (
	ToolGetPosting    = "get_posting"
	ToolListPostings  = "list_postings"
	ToolCancelPosting = "cancel_posting"
)

// toolScopes is the scope each tool needs. A caller without it is not shown
// the tool and cannot call it.
var toolScopes = func() map[string]Scope {
	m := map[string]Scope{
		ToolCancelPosting:     ScopeWrite,
		ToolGetPosting:        ScopeRead,
		ToolListPostings:      ScopeRead,
		ToolListApprovals:     ScopeOperate,
		ToolApprovePosting:    ScopeOperate,
		ToolRejectPosting:     ScopeOperate,
		ToolListFailures:      ScopeOperate,
		ToolReprocessPostings: ScopeOperate,
		ToolDiscardPostings:   ScopeOperate,
	}
	for _, spec := range tasks.Specs() {
		m[spec.Tool] = ScopeWrite
	}
	return m
}()

// submitKinds is the posting kind each submit tool takes; a caller whose
// policy does not allow the kind is not shown the tool.
var submitKinds = func() map[string]tasks.Kind {
	m := map[string]tasks.Kind{}
	for _, spec := range tasks.Specs() {
		m[spec.Tool] = spec.Kind
	}
	return m
}()

// toolNames lists every tool, submit tools first, in registry order.
func toolNames() []string {
	var out []string
	for _, spec := range tasks.Specs() {
		out = append(out, spec.Tool)
	}
	return append(out, ToolGetPosting, ToolListPostings, ToolCancelPosting, ToolListApprovals, ToolApprovePosting, ToolRejectPosting,
		ToolListFailures, ToolReprocessPostings, ToolDiscardPostings)
}

// mayUse reports whether a caller may use a tool, and if not, which rule
// says no.
func mayUse(c *Caller, tool string) (bool, Rule) {
	need, ok := toolScopes[tool]
	if !ok || !c.Has(need) {
		return false, RuleScope
	}
	if k, isSubmit := submitKinds[tool]; isSubmit && !c.Policy.AllowsKind(k) {
		return false, RuleAllowedKinds
	}
	return true, ""
}

// filterTools lists only the tools the calling caller may use; mcp-go
// applies it to tools/list and to tools/call.
func (s *Server) filterTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	c, ok := CallerFromContext(ctx)
	if !ok {
		return nil
	}
	out := tools[:0:0]
	for _, t := range tools {
		if ok, _ := mayUse(c, t.Name); ok {
			out = append(out, t)
		}
	}
	return out
}

const (
	defaultListLimit = 20
	maxListLimit     = 100
	maxJobIDLen      = 64
)

// jobRef is the input of get_posting and cancel_posting.
type jobRef struct {
	JobID string `json:"job_id" jsonschema:"The job_id returned by the submit call"`
}

// getArgs is the input of get_posting.
type getArgs struct {
	JobID       string `json:"job_id" jsonschema:"The job_id returned by the submit call"`
	WaitSeconds *int   `json:"wait_seconds,omitempty" jsonschema:"Wait up to this many seconds (0 to 25) for the status to change before answering; 0 answers at once"`
}

// maxWaitSeconds bounds get_posting's wait_seconds: below the 30 s that
// many HTTP clients and proxies allow a response.
const maxWaitSeconds = 25

// listArgs is the input of list_postings.
type listArgs struct {
	Status tasks.Status `json:"status,omitempty" jsonschema:"Only postings in this status"`
	Kind   tasks.Kind   `json:"kind,omitempty" jsonschema:"Only postings of this kind"`
	Limit  *int         `json:"limit,omitempty" jsonschema:"Page size, 1 to 100 (default 20)"`
	Cursor string       `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page, to continue listing"`
}

const (
	submitCommon = `Posting is asynchronous: this call validates the document, records it under your idempotency_key and queues it, then returns at once with a job_id (status "queued"); it does not wait for SAP. Wait poll_after_seconds, then call get_posting with the job_id, repeating until status is succeeded (result.document is the SAP document number), failed (error says why), cancelled or rejected.

Approval: a document above your policy's approval threshold is recorded with status "awaiting_approval" and nothing is sent to SAP until an operator other than you approves it (approval.reason says why; waiting_for says who must act, and until when). Tell the person you work for that it awaits approval; do not resubmit it. If it is rejected (status rejected, approval.comment says why), it is never posted.

Idempotency: use one idempotency_key per business document, for example derived from the source document's ID. If this call fails, times out, or you are unsure whether it went through, call again with the SAME idempotency_key and the same content: you get the original job back with replayed=true and SAP never receives the document twice. The same key with different content is refused (idempotency_conflict); use a new key only for a different document.

Dry run: with dry_run true, nothing is recorded or sent. The document goes through every check a submission does (validation, your policy, approval) and SAP's own check where SAP offers one without posting (journal entries: a test run); the answer's dry_run.verdict says what the call without dry_run would do, and dry_run.sap_check holds SAP's messages. Use it to check a document before you submit it; then submit it unchanged, without dry_run, under the same idempotency_key.

Amounts are decimal strings with at most 2 decimals ("1190.00", "-50.5"), never numbers; dates are YYYY-MM-DD; codes are upper case.

Errors: invalid_argument lists every wrong field as "path: problem" (nothing was recorded; fix the fields and call again with the same key); policy_violation names the rule of your policy that refuses the document (nothing was recorded; do not retry it unchanged, ask a person); rate_limited means too many submissions this minute (nothing was processed; call again unchanged after retry_after_seconds); idempotency_conflict (see above); internal (call again unchanged).`

	descGetPosting = `Get the current state of one of your postings by job_id. Read-only. Pass wait_seconds (up to 25) to have the call wait until the status changes (or the job is final) and answer then: one call instead of many polls; call again with wait_seconds until the status is final. Without it, the call answers at once; wait poll_after_seconds between such calls.

Statuses: awaiting_approval (waiting for an operator other than you to approve it; nothing is sent to SAP before that; waiting_for says who must act and until when), queued (waiting for a worker), running (being posted now), retrying (an attempt failed and another follows at next_attempt_at), succeeded (final: result.document, result.fiscal_year and result.company_code identify the SAP document), failed (final: error says why), cancelled (final: withdrawn; SAP holds no document for it), rejected (final: an operator rejected it or nobody approved it in time, approval.comment says why; it was never sent).

error.category: permanent (SAP rejected the document and nothing was posted; error.message is SAP's reason. If the data is wrong, cancel this job with cancel_posting and submit the corrected document under a NEW idempotency_key. If the cause is on SAP's side, such as a closed posting period, leave the job: operators reprocess failed jobs once the cause is fixed, and never a cancelled one), transient (nothing was posted; sapq retries automatically), outcome_unknown (SAP may have posted; sapq checks SAP before any resend, never posts twice — keep polling).

A job_id that is not yours, or unknown, gives not_found.`

	descListPostings = `List your postings, newest first, optionally filtered by status and kind. Returns up to limit postings (default 20, at most 100) and next_cursor: pass it as cursor to get the next page; it is empty on the last page. Use it to find a job_id you lost, or to check which documents are still in progress. Each posting has the same shape as get_posting's result.`

	descCancelPosting = `Cancel one of your postings while SAP holds no document for it: status awaiting_approval, queued, or retrying or failed after attempts that certainly posted nothing. A posting never sent is cancelled only after sapq has checked that SAP holds no document under its reference (an earlier job of the same idempotency_key may have posted one); if SAP cannot be checked now you get not_cancellable saying so: try again later. The job becomes cancelled and will never be posted or reprocessed; cancel a rejected job this way before submitting a corrected document under a new idempotency_key. Once a worker is calling SAP, or the outcome of a call is unknown, or the job is finished, it cannot be cancelled and you get not_cancellable with the reason: a posted document must then be reversed in SAP. Cancelling an already cancelled job succeeds again. Returns the posting. Unknown or foreign job_id: not_found.`
)

func (s *Server) registerTools() {
	submitAnnotations := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false), // creates jobs, never overwrites
		mcp.WithIdempotentHintAnnotation(true),   // same key and payload: same job
		mcp.WithOpenWorldHintAnnotation(true),    // the job is posted to SAP
	}
	readAnnotations := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false), // answers from sapq's ledger only
	}
	cancelAnnotations := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true), // withdraws the posting for good
		mcp.WithIdempotentHintAnnotation(true),  // cancelling twice changes nothing more
		mcp.WithOpenWorldHintAnnotation(false),  // SAP is never called
	}
	tool := func(name, title, desc string, in, out mcp.ToolOption, ann []mcp.ToolOption) mcp.Tool {
		opts := []mcp.ToolOption{mcp.WithToolTitle(title), mcp.WithDescription(desc), mcp.WithTitleAnnotation(title), in, out}
		return mcp.NewTool(name, append(opts, ann...)...)
	}

	for _, spec := range tasks.Specs() {
		s.mcp.AddTool(tool(spec.Tool, spec.Title, spec.Description+"\n\n"+submitCommon,
			postingSchema(spec, s.routes.Destinations), outputSchema[SubmitResult](fixSubmitResult), submitAnnotations),
			asCaller(s.submit(spec.Kind)))
	}
	s.mcp.AddTools(
		server.ServerTool{
			Tool: tool(ToolGetPosting, "Get posting", descGetPosting,
				inputSchema[getArgs](fixGetArgs), outputSchema[Posting](fixPosting), readAnnotations),
			Handler: asCaller(s.getPosting),
		},
		server.ServerTool{
			Tool: tool(ToolListPostings, "List postings", descListPostings,
				inputSchema[listArgs](fixListArgs), outputSchema[PostingList](fixPostingList), readAnnotations),
			Handler: asCaller(s.listPostings),
		},
		server.ServerTool{
			Tool: tool(ToolCancelPosting, "Cancel posting", descCancelPosting,
				inputSchema[jobRef](fixJobRef), outputSchema[Posting](fixPosting), cancelAnnotations),
			Handler: asCaller(s.cancelPosting),
		},
	)
	s.mcp.AddTools(s.approvalTools()...)
	s.mcp.AddTools(s.operationTools()...)
}

func (s *Server) submit(kind tasks.Kind) callerHandler {
	return func(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		note := noteOf(ctx)
		note.kind = string(kind)
		if res := s.spendQuota(ctx, req, caller); res != nil {
			return res, nil
		}
		raw, err := rawArguments(req)
		if err != nil {
			return s.internal(ctx, req, caller, err), nil
		}
		p, opts, err := tasks.DecodeSubmission(kind, raw)
		if err != nil {
			return s.rejected(ctx, req, caller, err), nil
		}
		note.key = p.IdempotencyKey()
		if res := s.resolve(ctx, req, caller, p); res != nil {
			return res, nil
		}
		// Routed here as the worker will route it, so that a posting no
		// SAP system takes is refused now rather than failed later.
		destination, err := s.routes.Route(p)
		if err != nil {
			return s.rejected(ctx, req, caller, err), nil
		}
		facts := factsOf(p)
		note.companyCode, note.currency = facts.CompanyCode(), facts.Currency
		if facts.Currency != "" {
			note.amount = facts.Amount.StringFixed(tasks.MaxFractionDigits)
		}
		approval, res := s.applyPolicy(ctx, req, caller, p, facts, opts.DryRun)
		if res != nil {
			return res, nil
		}
		if opts.DryRun {
			return s.dryRun(ctx, req, caller, p, destination, approval), nil
		}
		var job tasks.Job
		var replayed bool
		if approval != nil {
			job, replayed, err = s.ledger.SubmitForApproval(ctx, caller.Name, p, ledger.ApprovalRequest{
				Reason: fmt.Sprintf("%s (rule %s)", approval.Message, approval.Rule), TTL: s.approvalTTL})
		} else {
			job, replayed, err = s.ledger.Submit(ctx, caller.Name, p)
		}
		var conflict *ledger.ConflictError
		switch {
		case errors.As(err, &conflict):
			note.jobID = conflict.JobID
			return errorResult(codeConflict, "nothing was recorded. "+conflict.Error()+".", []tasks.FieldError{{
				Field:   "idempotency_key",
				Message: fmt.Sprintf("already used for job %s with different content", conflict.JobID),
			}}), nil
		case err != nil:
			return s.rejected(ctx, req, caller, err), nil
		}
		note.jobID, note.decision = job.ID, decisionAccepted
		switch {
		case replayed:
			note.decision = decisionReplayed
		case job.Status == tasks.StatusAwaitingApproval:
			note.decision, note.rule = decisionAwaitingApproval, string(approval.Rule)
		}
		s.log.InfoContext(ctx, "posting submitted", "caller", caller.Name, "job_id", job.ID, "kind", kind, "replayed", replayed, "status", job.Status)
		return mcp.NewToolResultStructuredOnly(SubmitResult{
			JobID:            job.ID,
			Kind:             job.Kind,
			Status:           job.Status,
			Replayed:         replayed,
			PollAfterSeconds: s.pollAfter,
			Approval:         job.Approval,
			WaitingFor:       waitingFor(job),
		}), nil
	}
}

// resolve reads the job a posting names (a reversal's original) from the
// ledger as the caller sees it, so that another caller's job reads as not
// found, as get_posting has it; it returns a result only on a refusal, and
// records nothing.
func (s *Server) resolve(ctx context.Context, req mcp.CallToolRequest, caller *Caller, p tasks.Posting) *mcp.CallToolResult {
	r, ok := p.(tasks.Resolver)
	if !ok {
		return nil
	}
	job, err := s.ledger.Get(ctx, caller.Name, r.NamedJob())
	if errors.Is(err, ledger.ErrNotFound) {
		return s.rejected(ctx, req, caller, fieldError("job_id", fmt.Sprintf("you have no posting with job_id %q; use the job_id returned by the submit call of the posting to reverse", r.NamedJob())))
	}
	if err == nil && job.Destination == "" && tasks.HoldsDocument(job) {
		// A job that adopted its document by look-up, with no call of its
		// own, records no destination: it is where the worker routed it,
		// the way the routes route its posting.
		if orig, perr := job.Posting(); perr == nil {
			if d, rerr := s.routes.Route(orig); rerr == nil {
				job.Destination = d
			}
		}
	}
	if err == nil {
		err = r.Resolve(job)
	}
	if err == nil {
		err = s.notReversedYet(ctx, caller, r)
	}
	if err != nil {
		return s.rejected(ctx, req, caller, err)
	}
	return nil
}

// maxReversalPages bounds how many pages of the caller's jobs a reversal's
// submission reads to find another reversal of the same original.
const maxReversalPages = 20

// notReversedYet refuses a reversal of a document that the ledger shows
// reversed, or being reversed, by another of the caller's reversal jobs
// (another idempotency key; the same key is a replay). Only the caller's
// own jobs can reverse the caller's postings, so their list is where to
// look. It is a courtesy, not the guard: the ledger may have forgotten a
// job, and the worker's look-up in SAP before every call is what keeps a
// document from being reversed twice.
func (s *Server) notReversedYet(ctx context.Context, caller *Caller, r tasks.Resolver) error {
	rp, ok := r.(*tasks.ReversePosting)
	if !ok || rp.Original == nil {
		return nil
	}
	cursor := ""
	for pages := 0; pages < maxReversalPages; pages++ {
		page, err := s.ledger.List(ctx, caller.Name, ledger.ListFilter{Kind: tasks.KindReversePosting, Limit: 100, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, job := range page.Jobs {
			if job.IdempotencyKey == rp.Key || job.Status == tasks.StatusFailed || job.Status == tasks.StatusCancelled || job.Status == tasks.StatusRejected {
				continue
			}
			p, err := job.Posting()
			other, ok := p.(*tasks.ReversePosting)
			if err != nil || !ok || other.Original == nil || !other.Original.Same(*rp.Original) {
				continue
			}
			o := rp.Original
			if job.Status == tasks.StatusSucceeded && job.Result != nil {
				return fieldError("job_id", fmt.Sprintf("the document %s %s of job %s is already reversed through sapq: job %s (idempotency_key %q) posted reversal %s",
					o.Document, o.FiscalYear, rp.JobID, job.ID, job.IdempotencyKey, job.Result.Document))
			}
			return fieldError("job_id", fmt.Sprintf("the document %s %s of job %s is being reversed through sapq by job %s (idempotency_key %q, %s); await it with get_posting",
				o.Document, o.FiscalYear, rp.JobID, job.ID, job.IdempotencyKey, job.Status))
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
	return nil
}

// spendQuota takes one of the caller's submissions for this minute; it
// returns a result only when none is left.
func (s *Server) spendQuota(ctx context.Context, req mcp.CallToolRequest, caller *Caller) *mcp.CallToolResult {
	perMinute := s.quota
	if n := caller.Policy.SubmissionsPerMinute; n != nil {
		perMinute = *n
	}
	if perMinute <= 0 {
		return nil
	}
	wait, err := s.budget.allowSubmission(ctx, caller.Name, perMinute)
	if err != nil {
		return s.internal(ctx, req, caller, err)
	}
	if wait <= 0 {
		return nil
	}
	secs := max(1, int((wait+time.Second-1)/time.Second))
	note := noteOf(ctx)
	note.decision, note.rule = decisionRefused, string(RuleSubmissionsPerMinute)
	res := errorResult(codeRateLimited, fmt.Sprintf("you may submit %d postings per minute (rule %s). This call was not processed; call again unchanged, with the same idempotency_key, in %d seconds.", perMinute, RuleSubmissionsPerMinute, secs), nil)
	te := res.Meta.AdditionalFields[errorMetaKey].(ToolError)
	te.Rule, te.RetryAfterSeconds = string(RuleSubmissionsPerMinute), secs
	res.Meta.AdditionalFields[errorMetaKey] = te
	return res
}

// applyPolicy checks the caller's policy, the stateless rules at once and
// then the daily amount in Redis; it returns a result only on a refusal,
// and otherwise the rule that makes the posting wait for approval, if one
// does.
// A dry run checks the daily amount without counting it.
func (s *Server) applyPolicy(ctx context.Context, req mcp.CallToolRequest, caller *Caller, p tasks.Posting, f postingFacts, dryRun bool) (*Violation, *mcp.CallToolResult) {
	pol := caller.Policy
	violations, approval := pol.check(f)
	if len(violations) == 0 {
		if limit, ok := pol.MaxPerDay[f.Currency]; ok {
			count := s.budget.countDay
			if dryRun {
				count = s.budget.peekDay
			}
			fits, sum, err := count(ctx, caller.Name, p.IdempotencyKey(), f.Currency, f.Amount, limit)
			if err != nil {
				return nil, s.internal(ctx, req, caller, err)
			}
			if !fits {
				violations = append(violations, Violation{RuleMaxAmountPerDay, f.AmountField, fmt.Sprintf(
					"the amount %s %s would bring today's total (UTC) to %s %s, above your limit of %s %s per day; %s %s are left",
					f.Amount.StringFixed(2), f.Currency, sum.Add(f.Amount).StringFixed(2), f.Currency,
					limit.StringFixed(2), f.Currency, limit.Sub(sum).StringFixed(2), f.Currency)})
			}
		}
	}
	if len(violations) == 0 {
		return approval, nil
	}
	note := noteOf(ctx)
	note.decision, note.rule = decisionRefused, string(violations[0].Rule)
	fields := make([]tasks.FieldError, len(violations))
	rules := make([]string, len(violations))
	for i, v := range violations {
		fields[i] = tasks.FieldError{Field: v.Field, Message: fmt.Sprintf("%s (rule %s)", v.Message, v.Rule)}
		rules[i] = string(v.Rule)
	}
	res := errorResult(codePolicy, fmt.Sprintf("your policy refuses this document (rule %s); nothing was recorded. Do not resend it unchanged: a person must change the document or your policy.", strings.Join(rules, ", ")), fields)
	te := res.Meta.AdditionalFields[errorMetaKey].(ToolError)
	te.Rule = string(violations[0].Rule)
	res.Meta.AdditionalFields[errorMetaKey] = te
	return nil, res
}

// rejected turns a validation error into invalid_argument and anything else
// into an internal error.
func (s *Server) rejected(ctx context.Context, req mcp.CallToolRequest, caller *Caller, err error) *mcp.CallToolResult {
	var verr *tasks.ValidationError
	if errors.As(err, &verr) {
		return invalidArgument(verr, "the submission was rejected and nothing was recorded; correct these fields and call again with the same idempotency_key:")
	}
	return s.internal(ctx, req, caller, err)
}

func (s *Server) getPosting(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args getArgs
	raw, err := rawArguments(req)
	if err != nil {
		return errorResult(codeInvalidArgument, "arguments are not a JSON object", nil), nil
	}
	verr := decodeArgs(raw, &args)
	if verr == nil {
		fields := checkJobID(args.JobID, "the submit call")
		if w := args.WaitSeconds; w != nil && (*w < 0 || *w > maxWaitSeconds) {
			fields = append(fields, tasks.FieldError{Field: "wait_seconds", Message: fmt.Sprintf("must be between 0 and %d, got %d", maxWaitSeconds, *w)})
		}
		if fields != nil {
			verr = &tasks.ValidationError{Fields: fields}
		}
	}
	if verr != nil {
		return invalidArgument(verr, "invalid get_posting arguments:"), nil
	}
	wait := time.Duration(0)
	if args.WaitSeconds != nil {
		wait = time.Duration(*args.WaitSeconds) * time.Second
	}
	// Waiting is a notification from the ledger when the job changes, not
	// a poll of Redis (ledger.Wait).
	job, err := s.ledger.Wait(ctx, caller.Name, args.JobID, wait)
	if err != nil {
		return s.lookupError(ctx, req, caller, args.JobID, err), nil
	}
	return mcp.NewToolResultStructuredOnly(postingOf(job)), nil
}

func (s *Server) listPostings(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args listArgs
	raw, err := rawArguments(req)
	if err != nil {
		return s.internal(ctx, req, caller, err), nil
	}
	verr := decodeArgs(raw, &args)
	if verr == nil {
		verr = args.validate()
	}
	if verr != nil {
		return invalidArgument(verr, "invalid list_postings arguments:"), nil
	}
	f := ledger.ListFilter{Status: args.Status, Kind: args.Kind, Limit: defaultListLimit, Cursor: args.Cursor}
	if args.Limit != nil {
		f.Limit = *args.Limit
	}
	page, err := s.ledger.List(ctx, caller.Name, f)
	if err != nil {
		return s.internal(ctx, req, caller, err), nil
	}
	out := PostingList{Postings: make([]Posting, 0, len(page.Jobs)), NextCursor: page.NextCursor}
	for _, j := range page.Jobs {
		out.Postings = append(out.Postings, postingOf(j))
	}
	return mcp.NewToolResultStructuredOnly(out), nil
}

func (a *listArgs) validate() *tasks.ValidationError {
	var fields []tasks.FieldError
	if a.Status != "" && !a.Status.Valid() {
		fields = append(fields, tasks.FieldError{Field: "status", Message: fmt.Sprintf("unknown status %q; one of %s", a.Status, strings.Join(enumOf(tasks.Statuses), ", "))})
	}
	if a.Kind != "" && !a.Kind.Valid() {
		fields = append(fields, tasks.FieldError{Field: "kind", Message: fmt.Sprintf("unknown kind %q; one of %s", a.Kind, strings.Join(enumOf(tasks.Kinds), ", "))})
	}
	if a.Limit != nil && (*a.Limit < 1 || *a.Limit > maxListLimit) {
		fields = append(fields, tasks.FieldError{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d, got %d", maxListLimit, *a.Limit)})
	}
	if len(a.Cursor) > maxJobIDLen {
		fields = append(fields, tasks.FieldError{Field: "cursor", Message: "is not a cursor returned by list_postings; pass next_cursor unchanged"})
	}
	if fields == nil {
		return nil
	}
	return &tasks.ValidationError{Fields: fields}
}

func (s *Server) cancelPosting(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args jobRef
	if res := s.decodeJobRef(req, &args); res != nil {
		return res, nil
	}
	var lookup ledger.SAPLookup
	if s.checker != nil {
		lookup = s.checker
	}
	job, err := s.ledger.Cancel(ctx, caller.Name, args.JobID, lookup)
	if errors.Is(err, ledger.ErrNotCancellable) {
		return errorResult(codeNotCancellable, fmt.Sprintf("job %s was not cancelled: %v. Follow it with get_posting; a document already posted in SAP must be reversed there.", args.JobID, err), nil), nil
	}
	if err != nil {
		return s.lookupError(ctx, req, caller, args.JobID, err), nil
	}
	s.log.InfoContext(ctx, "posting cancelled", "caller", caller.Name, "job_id", job.ID)
	return mcp.NewToolResultStructuredOnly(postingOf(job)), nil
}

// decodeJobRef decodes and checks a {job_id} argument; it returns a result
// only when the arguments are invalid.
func (s *Server) decodeJobRef(req mcp.CallToolRequest, args *jobRef) *mcp.CallToolResult {
	raw, err := rawArguments(req)
	if err != nil {
		return errorResult(codeInvalidArgument, "arguments are not a JSON object", nil)
	}
	verr := decodeArgs(raw, args)
	switch {
	case verr != nil:
	case args.JobID == "":
		verr = &tasks.ValidationError{Fields: []tasks.FieldError{{Field: "job_id", Message: "is required: the job_id returned by the submit call"}}}
	case len(args.JobID) > maxJobIDLen:
		verr = &tasks.ValidationError{Fields: []tasks.FieldError{{Field: "job_id", Message: fmt.Sprintf("is not a job ID (at most %d characters)", maxJobIDLen)}}}
	}
	if verr != nil {
		return invalidArgument(verr, fmt.Sprintf("invalid %s arguments:", req.Params.Name))
	}
	return nil
}

func (s *Server) lookupError(ctx context.Context, req mcp.CallToolRequest, caller *Caller, id string, err error) *mcp.CallToolResult {
	if errors.Is(err, ledger.ErrNotFound) {
		return errorResult(codeNotFound, fmt.Sprintf("you have no posting with job_id %q; use the job_id returned by the submit call, or find it with list_postings", id), nil)
	}
	return s.internal(ctx, req, caller, err)
}

// internal logs err and returns a generic error: details of the store stay
// in the log, where operators look, and out of the model's context.
func (s *Server) internal(ctx context.Context, req mcp.CallToolRequest, caller *Caller, err error) *mcp.CallToolResult {
	trace := traceIDFrom(ctx)
	if ctx.Err() != nil {
		s.log.InfoContext(ctx, "tool call abandoned by the client", "tool", req.Params.Name, "caller", caller.Name, "err", err, "trace_id", trace)
	} else {
		s.log.ErrorContext(ctx, "tool call failed", "tool", req.Params.Name, "caller", caller.Name, "err", err, "trace_id", trace)
	}
	res := errorResult(codeInternal, internalErrorMessage+" (trace "+trace+")", nil)
	te := res.Meta.AdditionalFields[errorMetaKey].(ToolError)
	te.TraceID = trace
	res.Meta.AdditionalFields[errorMetaKey] = te
	return res
}

// rawArguments returns the call's arguments as the JSON the client sent.
// mcp-go keeps the original bytes for wire requests; in-process calls carry
// a Go value, which is marshalled. Absent arguments are an empty object, so
// that validation names every required field.
func rawArguments(req mcp.CallToolRequest) ([]byte, error) {
	if raw := bytes.TrimSpace(req.Params.RawArguments); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		return raw, nil
	}
	switch a := req.Params.Arguments.(type) {
	case nil:
		return []byte("{}"), nil
	case json.RawMessage:
		return a, nil
	default:
		return json.Marshal(a)
	}
}

// decodeArgs decodes the small argument objects of the read and cancel tools
// as strictly as tasks.Decode does postings.
func decodeArgs(raw []byte, v any) *tasks.ValidationError {
	err := tasks.DecodeStrict(raw, v)
	if err == nil {
		return nil
	}
	var verr *tasks.ValidationError
	if errors.As(err, &verr) {
		return verr
	}
	return fieldError("", err.Error())
}

func fieldError(field, msg string) *tasks.ValidationError {
	return &tasks.ValidationError{Fields: []tasks.FieldError{{Field: field, Message: msg}}}
}

// callerHandler is a tool handler that runs on behalf of an authenticated
// caller.
type callerHandler func(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error)

// asCaller refuses calls without a caller identity (the ledger reads the
// empty caller as the operator, who sees every job) and calls of tools the
// caller may not use: the tool filter already hides them, and this check
// does not depend on it.
func asCaller(h callerHandler) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		caller, ok := CallerFromContext(ctx)
		if !ok {
			return errorResult(codeUnauthenticated, unauthenticatedMessage, nil), nil
		}
		if ok, rule := mayUse(caller, req.Params.Name); !ok {
			note := noteOf(ctx)
			note.decision, note.rule = decisionRefused, string(rule)
			return errorResult(codeForbidden, fmt.Sprintf("you may not use %s (rule %s)", req.Params.Name, rule), nil), nil
		}
		return h(ctx, caller, req)
	}
}
