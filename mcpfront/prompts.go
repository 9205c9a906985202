package mcpfront

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/shopspring/decimal"
)

// PromptPostingGuide is the prompt that explains sapq to a model.
const PromptPostingGuide = "posting_guide"

func (s *Server) registerPrompts() {
	s.mcp.AddPrompt(
		mcp.NewPrompt(PromptPostingGuide,
			mcp.WithPromptTitle("How to post documents into SAP with sapq"),
			mcp.WithPromptDescription("Explains sapq's tools, the states of a posting and the exactly-once contract, with the limits of your own policy."),
		),
		s.postingGuide,
	)
}

func (s *Server) postingGuide(ctx context.Context, _ mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	c, ok := CallerFromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("%s", unauthenticatedMessage)
	}
	var tools []string
	for _, name := range toolNames() {
		if ok, _ := mayUse(c, name); ok {
			tools = append(tools, name)
		}
	}
	text := fmt.Sprintf(postingGuide, c.Name, strings.Join(tools, ", "), policySummary(c))
	return mcp.NewGetPromptResult("How to post documents into SAP with sapq",
		[]mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))}), nil
}

// policySummary states a caller's limits in words, for the guide.
func policySummary(c *Caller) string {
	p := c.Policy
	var lines []string
	if p.Kinds != nil {
		lines = append(lines, "- kinds you may submit: "+strings.Join(enumOf(p.Kinds), ", "))
	}
	if p.CompanyCodes != nil {
		lines = append(lines, "- company codes you may post in: "+strings.Join(p.CompanyCodes, ", "))
	}
	for _, r := range []struct {
		name   string
		limits map[string]string
	}{
		{"most per posting", amountsText(p.MaxPerPosting)},
		{"most per UTC day, all postings together", amountsText(p.MaxPerDay)},
		{"above this, a posting waits for an operator's approval before it is sent", amountsText(p.ApprovalThreshold)},
	} {
		if r.limits != nil {
			var parts []string
			for cur, v := range r.limits {
				parts = append(parts, v+" "+cur)
			}
			sort.Strings(parts)
			lines = append(lines, fmt.Sprintf("- %s: %s (other currencies are refused)", r.name, strings.Join(parts, ", ")))
		}
	}
	if len(lines) == 0 {
		return "Your policy sets no limits on kinds, company codes or amounts."
	}
	return "Your policy:\n" + strings.Join(lines, "\n")
}

const postingGuide = `You are connected to sapq as the caller %q. sapq posts business documents into SAP exactly once: you submit a typed document, sapq validates it, records it under your idempotency key and queues it; a deterministic worker then posts it to SAP. You never call SAP yourself, and nothing you write is executed: every field is checked against SAP's rules before anything is recorded.

Your tools: %s.

How to post one document:
1. Choose an idempotency_key that identifies the business document, for example "inv-" followed by the supplier's invoice number. One key per document, forever.
2. Call the submit tool. It answers at once with a job_id and status "queued"; SAP is called later.
3. Wait poll_after_seconds, then call get_posting with the job_id. Repeat until the status is final.

States of a posting:
- awaiting_approval: above your approval threshold; recorded, and nothing is sent to SAP until an operator other than you approves it (waiting_for says who must act and until when). Tell the person you work for; do not resubmit it.
- queued: recorded, waiting for a worker.
- running: a worker is posting it now.
- retrying: an attempt failed; another follows at next_attempt_at. Keep polling.
- succeeded (final): result.document, result.fiscal_year and result.company_code identify the SAP document.
- failed (final): error.message says why. error.category permanent: SAP refused it and nothing was posted; if the data was wrong, cancel the job and submit the corrected document under a NEW key. transient: nothing posted, retried automatically. outcome_unknown: SAP may have posted; sapq checks SAP before any resend and never posts twice.
- cancelled (final): withdrawn; SAP holds no document for it.
- rejected (final): an operator rejected it, or nobody approved it in time (approval.comment says why); it was never sent.

The exactly-once contract:
- If a submit call fails, times out, or you are unsure whether it went through, send it again UNCHANGED with the SAME idempotency_key. You get the original job back (replayed=true); SAP never receives the document twice.
- Never invent a new key to retry. A new key means a new document, and SAP would post it again.
- The same key with different content is refused (idempotency_conflict): nothing is overwritten.
- A job_id that is not yours reads as not_found.

Errors you may see: invalid_argument lists every wrong field at once ("path: problem"); correct them all and call again with the same key. policy_violation names the rule of your policy that refuses the document; do not retry it unchanged, tell the person you work for. rate_limited: wait retry_after_seconds and call again unchanged. internal: call again unchanged in a moment.

Values: amounts are decimal strings with at most 2 decimals ("1190.00"), never numbers; dates are YYYY-MM-DD; codes and references are upper-case ASCII (look-alike letters from other alphabets are refused).

%s`

// amountsText renders limits as decimal strings, or nil when the rule is off.
func amountsText(m map[string]decimal.Decimal) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for cur, d := range m {
		out[cur] = d.StringFixed(2)
	}
	return out
}
