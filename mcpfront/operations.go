package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// The operators' tools over failed postings, the MCP face of `sapq jobs
// failures|reprocess|discard`. Like the approval tools, only callers with
// the postings:operate scope see them. They work from the ledger's own
// records (ledger.Each, ledger.Bulk: one job per Redis script), and a call
// handles at most max postings, so that no call runs for long; a call that
// leaves some says so, with the cutoff to pass to the next.
const (
	ToolListFailures      = "list_failures"
	ToolReprocessPostings = "reprocess_postings"
	ToolDiscardPostings   = "discard_postings"
)

const (
	descListFailures = `List failed postings grouped by the SAP message that failed them (code and text, e.g. F5/201 Posting period 011 2026 is not open), largest group first, with how many, their company codes and kinds, the oldest failure and a sample job_id. Read-only. Fix the cause in SAP (open the period, create the account), then reprocess_postings with the group's sap_code.`

	descReprocessPostings = `Queue failed postings again with a fresh retry budget, once their cause is fixed in SAP. Select by job_ids or by filter (sap_code, kind, company_code, caller, destination, submitted_after/submitted_before); at least one is needed. Call with dry_run true first: it answers how many match and a sample, and changes nothing. A call reprocesses at most max postings (default 100); when remaining is above 0, call again with the same filter and the failed_before it answered, which leaves out postings that failed again since. Exactly once: a posting whose last outcome was unknown is looked up in SAP before anything is sent, and a posting reprocessed already is no longer failed and is not selected again.`

	descDiscardPostings = `End failed postings for good: they are never posted or reprocessed (status cancelled). Select and page as with reprocess_postings; call with dry_run true first. Only failed postings for which SAP holds no document can be discarded.`
)

const (
	defaultBulkMax = 100
	maxBulkMax     = 1000
	bulkSampleSize = 5
)

// failureFilterArgs is the input of list_failures.
type failureFilterArgs struct {
	Kind            string `json:"kind,omitempty" jsonschema:"Only postings of this kind"`
	SAPCode         string `json:"sap_code,omitempty" sapq:"text,40" jsonschema:"Only postings whose last error has this code, e.g. F5/201"`
	CompanyCode     string `json:"company_code,omitempty" sapq:"text,4" jsonschema:"Only postings in this company code"`
	Caller          string `json:"caller,omitempty" sapq:"text,100" jsonschema:"Only this caller's postings"`
	Destination     string `json:"destination,omitempty" sapq:"text,100" jsonschema:"Only postings routed to this SAP destination"`
	SubmittedAfter  string `json:"submitted_after,omitempty" jsonschema:"Only postings submitted at or after this time (RFC 3339)"`
	SubmittedBefore string `json:"submitted_before,omitempty" jsonschema:"Only postings submitted before this time (RFC 3339)"`
}

// bulkArgs is the input of reprocess_postings and discard_postings: the
// list_failures filter, narrowed further.
type bulkArgs struct {
	failureFilterArgs
	JobIDs       []string `json:"job_ids,omitempty" jsonschema:"Only these postings"`
	FailedBefore string   `json:"failed_before,omitempty" jsonschema:"Only postings whose failure was recorded before this time (RFC 3339): the failed_before a previous call answered"`
	DryRun       bool     `json:"dry_run,omitempty" jsonschema:"Answer how many match and a sample; change nothing"`
	Max          *int     `json:"max,omitempty" jsonschema:"Handle at most this many postings in this call, 1 to 1000 (default 100)"`
}

// FailureGroup is one group of list_failures.
type FailureGroup struct {
	SAPCode       string              `json:"sap_code" jsonschema:"SAP's message class/number, or a sapq code"`
	Message       string              `json:"message" jsonschema:"The message text"`
	Category      tasks.ErrorCategory `json:"category" jsonschema:"permanent, transient or unknown_outcome, of the sample"`
	Count         int                 `json:"count" jsonschema:"How many failed postings share the message"`
	CompanyCodes  []string            `json:"company_codes" jsonschema:"Their company codes"`
	Kinds         []tasks.Kind        `json:"kinds" jsonschema:"Their kinds"`
	OldestFailure time.Time           `json:"oldest_failure" jsonschema:"When the group's oldest failure was recorded"`
	SampleJobID   string              `json:"sample_job_id" jsonschema:"The job_id of the group's oldest failure"`
}

// FailureList is what list_failures returns.
type FailureList struct {
	Groups []FailureGroup `json:"groups" jsonschema:"Largest group first"`
	Failed int            `json:"failed" jsonschema:"How many failed postings match in all"`
}

// BulkSkip is a selected posting a bulk call left as it was.
type BulkSkip struct {
	JobID  string `json:"job_id" jsonschema:"The posting"`
	Reason string `json:"reason" jsonschema:"Why it was left"`
}

// BulkOutcome is what reprocess_postings and discard_postings return.
type BulkOutcome struct {
	Action       ledger.BulkAction `json:"action" jsonschema:"reprocess or discard"`
	DryRun       bool              `json:"dry_run" jsonschema:"True when nothing was changed"`
	Matching     int               `json:"matching" jsonschema:"How many failed postings matched when the call began"`
	Done         int               `json:"done" jsonschema:"How many were reprocessed or discarded by this call (0 for a dry run)"`
	Skipped      []BulkSkip        `json:"skipped" jsonschema:"Selected postings left as they were, and why"`
	Remaining    int               `json:"remaining" jsonschema:"How many matching postings this call did not reach: call again with the same filter and failed_before"`
	FailedBefore time.Time         `json:"failed_before" jsonschema:"Pass as failed_before to the next call, so that postings that failed since are left out"`
	Sample       []Posting         `json:"sample" jsonschema:"A few of the matching postings"`
	Note         string            `json:"note,omitempty" jsonschema:"What to do next, or why nothing matched"`
}

func (s *Server) operationTools() []server.ServerTool {
	read := []mcp.ToolOption{
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	}
	act := func(reachesSAP bool) []mcp.ToolOption {
		return []mcp.ToolOption{
			mcp.WithReadOnlyHintAnnotation(false),
			mcp.WithDestructiveHintAnnotation(true),
			mcp.WithIdempotentHintAnnotation(true), // a posting handled once is no longer selected
			mcp.WithOpenWorldHintAnnotation(reachesSAP),
		}
	}
	tool := func(name, title, desc string, in, out mcp.ToolOption, ann []mcp.ToolOption) mcp.Tool {
		opts := []mcp.ToolOption{mcp.WithToolTitle(title), mcp.WithDescription(desc), mcp.WithTitleAnnotation(title), in, out}
		return mcp.NewTool(name, append(opts, ann...)...)
	}
	return []server.ServerTool{
		{
			Tool: tool(ToolListFailures, "List failure groups", descListFailures,
				inputSchema[failureFilterArgs](nil), outputSchema[FailureList](nil), read),
			Handler: asCaller(s.listFailures),
		},
		{
			Tool: tool(ToolReprocessPostings, "Reprocess failed postings", descReprocessPostings,
				inputSchema[bulkArgs](fixBulkArgs), outputSchema[BulkOutcome](fixBulkOutcome), act(true)),
			Handler: asCaller(s.bulk(ledger.BulkReprocess)),
		},
		{
			Tool: tool(ToolDiscardPostings, "Discard failed postings", descDiscardPostings,
				inputSchema[bulkArgs](fixBulkArgs), outputSchema[BulkOutcome](fixBulkOutcome), act(false)),
			Handler: asCaller(s.bulk(ledger.BulkDiscard)),
		},
	}
}

// filter checks the filter arguments and returns the ledger's filter.
func (a failureFilterArgs) filter() (ledger.Filter, []tasks.FieldError) {
	kind, code, companyCode, caller, destination, after, before := a.Kind, a.SAPCode, a.CompanyCode, a.Caller, a.Destination, a.SubmittedAfter, a.SubmittedBefore
	var fields []tasks.FieldError
	f := ledger.Filter{Status: tasks.StatusFailed, Kind: tasks.Kind(kind), Code: code, CompanyCode: companyCode, Caller: caller, Destination: destination}
	if kind != "" && !slices.Contains(tasks.Kinds, f.Kind) {
		fields = append(fields, tasks.FieldError{Field: "kind", Message: fmt.Sprintf("unknown kind %q; one of %v", kind, tasks.Kinds)})
	}
	for _, t := range []struct {
		field, value string
		into         *time.Time
	}{{"submitted_after", after, &f.From}, {"submitted_before", before, &f.To}} {
		if t.value == "" {
			continue
		}
		parsed, err := time.Parse(time.RFC3339Nano, t.value)
		if err != nil {
			fields = append(fields, tasks.FieldError{Field: t.field, Message: "is not an RFC 3339 time such as 2026-11-30T08:00:00Z"})
			continue
		}
		*t.into = parsed
	}
	return f, fields
}

func (s *Server) listFailures(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args failureFilterArgs
	if res := s.decodeOperatorArgs(req, &args); res != nil {
		return res, nil
	}
	f, fields := args.filter()
	if fields != nil {
		return invalidArgument(&tasks.ValidationError{Fields: fields}, "invalid list_failures arguments:"), nil
	}
	groups, err := s.ledger.FailureGroups(ctx, f)
	if err != nil {
		return s.internal(ctx, req, caller, err), nil
	}
	out := FailureList{Groups: make([]FailureGroup, 0, len(groups))}
	for _, g := range groups {
		out.Failed += g.Count
		out.Groups = append(out.Groups, FailureGroup{
			SAPCode: g.Code, Message: g.Message, Category: g.Category, Count: g.Count,
			CompanyCodes: append([]string{}, g.CompanyCodes...), Kinds: append([]tasks.Kind{}, g.Kinds...),
			OldestFailure: g.Oldest.UTC(), SampleJobID: g.Sample.ID,
		})
	}
	return mcp.NewToolResultStructuredOnly(out), nil
}

func (s *Server) bulk(action ledger.BulkAction) callerHandler {
	return func(ctx context.Context, caller *Caller, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args bulkArgs
		if res := s.decodeOperatorArgs(req, &args); res != nil {
			return res, nil
		}
		f, fields := args.filter()
		f.IDs = args.JobIDs
		max := defaultBulkMax
		switch {
		case args.Max != nil && (*args.Max < 1 || *args.Max > maxBulkMax):
			fields = append(fields, tasks.FieldError{Field: "max", Message: fmt.Sprintf("must be between 1 and %d, got %d", maxBulkMax, *args.Max)})
		case args.Max != nil:
			max = *args.Max
		}
		if len(args.JobIDs) > maxBulkMax {
			fields = append(fields, tasks.FieldError{Field: "job_ids", Message: fmt.Sprintf("at most %d per call", maxBulkMax)})
		}
		if args.FailedBefore != "" {
			t, err := time.Parse(time.RFC3339Nano, args.FailedBefore)
			if err != nil {
				fields = append(fields, tasks.FieldError{Field: "failed_before", Message: "is not an RFC 3339 time; pass failed_before as a previous call answered it"})
			}
			f.FailedBefore = t
		}
		if len(args.JobIDs) == 0 && f.Kind == "" && f.Code == "" && f.CompanyCode == "" && f.Caller == "" && f.Destination == "" && f.From.IsZero() && f.To.IsZero() {
			fields = append(fields, tasks.FieldError{Field: "", Message: "select postings with job_ids or a filter (sap_code, kind, company_code, caller, destination, submitted_after, submitted_before): there is no 'everything' by accident"})
		}
		if fields != nil {
			return invalidArgument(&tasks.ValidationError{Fields: fields}, fmt.Sprintf("invalid %s arguments:", req.Params.Name)), nil
		}
		// The cutoff is fixed before the selection, in the ledger's
		// millisecond resolution, and answered for the next call.
		if now := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond); f.FailedBefore.IsZero() || f.FailedBefore.After(now) {
			f.FailedBefore = now
		}
		out := BulkOutcome{Action: action, DryRun: args.DryRun, FailedBefore: f.FailedBefore.UTC(), Skipped: []BulkSkip{}, Sample: []Posting{}}
		var ids []string
		err := s.ledger.Each(ctx, f, func(j tasks.Job) error {
			out.Matching++
			if len(ids) < max {
				ids = append(ids, j.ID)
			}
			if len(out.Sample) < bulkSampleSize {
				out.Sample = append(out.Sample, postingOf(j))
			}
			return nil
		})
		if err != nil {
			return s.internal(ctx, req, caller, err), nil
		}
		switch {
		case out.Matching == 0:
			out.Note = "no failed posting matches (reprocessed, discarded or expired already, or the filter is off); list_failures shows what failed"
			return mcp.NewToolResultStructuredOnly(out), nil
		case args.DryRun:
			out.Remaining = out.Matching
			out.Note = fmt.Sprintf("nothing was changed; a call without dry_run handles up to %d of them", max)
			return mcp.NewToolResultStructuredOnly(out), nil
		}
		res, err := s.ledger.Bulk(ctx, action, ledger.Filter{IDs: ids, FailedBefore: f.FailedBefore}, ledger.BulkOptions{})
		out.Done = res.Done
		for _, sk := range res.Skipped {
			out.Skipped = append(out.Skipped, BulkSkip{JobID: sk.ID, Reason: sk.Reason})
		}
		out.Remaining = out.Matching - res.Done - len(res.Skipped)
		s.log.InfoContext(ctx, "bulk action", "operator", caller.Name, "action", action, "matching", out.Matching, "done", out.Done, "skipped", len(out.Skipped), "remaining", out.Remaining)
		if err != nil && !errors.Is(err, context.Canceled) {
			return s.internal(ctx, req, caller, err), nil
		}
		if out.Remaining > 0 {
			out.Note = "call again with the same filter and this failed_before to go on with the rest"
		}
		return mcp.NewToolResultStructuredOnly(out), nil
	}
}

func fixBulkArgs(s map[string]any) {
	max := prop(s, "max")
	max["type"] = "integer"
	max["minimum"], max["maximum"], max["default"] = 1, maxBulkMax, defaultBulkMax
	prop(s, "job_ids")["maxItems"] = maxBulkMax
}

func fixBulkOutcome(s map[string]any) {
	fixPosting(prop(s, "sample", "[]"))
}
