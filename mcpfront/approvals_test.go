package mcpfront_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/tasks/ledger"
)

type approvalView struct {
	Reason      string    `json:"reason"`
	PayloadHash string    `json:"payload_hash"`
	ExpiresAt   time.Time `json:"expires_at"`
	Decision    string    `json:"decision"`
	DecidedBy   string    `json:"decided_by"`
	Comment     string    `json:"comment"`
}

type postingWithApproval struct {
	JobID      string        `json:"job_id"`
	Status     string        `json:"status"`
	Approval   *approvalView `json:"approval"`
	WaitingFor string        `json:"waiting_for"`
}

type approvalList struct {
	Approvals []struct {
		Posting     postingWithApproval `json:"posting"`
		SubmittedBy string              `json:"submitted_by"`
		Document    map[string]any      `json:"document"`
	} `json:"approvals"`
	Waiting int `json:"waiting"`
}

// Four-eyes through real MCP clients: a document above the agent's
// approval threshold waits, unsent, until an operator other than its
// submitter approves exactly that payload; a rejected one is never sent.
func TestFourEyesApproval(t *testing.T) {
	e := policyEnv(t)
	agent := dialMCPGo(t, e.url, apToken, "")
	controller := dialSDK(t, e.url, opToken, "")
	auditor := dialMCPGo(t, e.url, op2Token, "")

	// Above the agent's threshold of 1500.00 EUR: recorded, awaiting approval.
	var sub struct {
		JobID      string        `json:"job_id"`
		Status     string        `json:"status"`
		Approval   *approvalView `json:"approval"`
		WaitingFor string        `json:"waiting_for"`
	}
	call(t, agent, "submit_supplier_invoice", withAmount(invoice("appr-big"), "1600.00", "1500.00", "100.00")).decode(t, &sub)
	if sub.Status != "awaiting_approval" || sub.Approval == nil ||
		!strings.Contains(sub.Approval.Reason, "the amount 1600.00 EUR is above the submitter's approval threshold of 1500.00 EUR (rule approval_threshold)") ||
		!strings.Contains(sub.WaitingFor, "an operator other than ap-agent must approve or reject it before") {
		t.Fatalf("submission above the threshold = %+v %+v", sub, sub.Approval)
	}
	if _, err := e.ledger.Inspector().GetTaskInfo(e.ledger.Queue(), ledger.TaskID(sub.JobID)); err == nil {
		t.Fatal("a posting awaiting approval was enqueued")
	}
	// An agent neither sees nor may call the operators' tools.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := agent.callErr(ctx, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("an agent's call of approve_posting = %v, want tool not found", err)
	}

	var waiting approvalList
	call(t, controller, "list_approvals", map[string]any{}).decode(t, &waiting)
	if waiting.Waiting != 1 || len(waiting.Approvals) != 1 {
		t.Fatalf("list_approvals = %+v", waiting)
	}
	item := waiting.Approvals[0]
	if item.SubmittedBy != "ap-agent" || item.Posting.JobID != sub.JobID || item.Document["gross_amount"] != "1600.00" ||
		item.Posting.Approval.PayloadHash != sub.Approval.PayloadHash {
		t.Fatalf("the approval shows %+v", item)
	}

	wantError(t, call(t, controller, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": "NOTTHEHASH"}), "payload_mismatch")
	wantError(t, call(t, controller, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash, "comment": "ok\u0007"}), "invalid_argument", "comment")
	var approved postingWithApproval
	call(t, controller, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash, "comment": "matches PO 4500000123"}).decode(t, &approved)
	if approved.Status != "queued" || approved.Approval.Decision != "approved" || approved.Approval.DecidedBy != "controller" || approved.WaitingFor != "" {
		t.Fatalf("approve_posting = %+v %+v", approved, approved.Approval)
	}
	if info, err := e.ledger.Inspector().GetTaskInfo(e.ledger.Queue(), ledger.TaskID(sub.JobID)); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the approved posting's task: %+v, %v", info, err)
	}
	var seen postingWithApproval
	call(t, agent, "get_posting", map[string]any{"job_id": sub.JobID}).decode(t, &seen)
	if seen.Status != "queued" || seen.Approval.DecidedBy != "controller" || seen.Approval.Comment != "matches PO 4500000123" {
		t.Fatalf("the submitter sees %+v %+v", seen, seen.Approval)
	}

	// Rejected: final, with the reason, never sent.
	call(t, auditor, "submit_supplier_invoice", invoice("appr-rejected")).decode(t, &sub)
	wantError(t, call(t, auditor, "reject_posting", map[string]any{"job_id": sub.JobID, "reason": "mine"}), "forbidden", "four_eyes")
	wantError(t, call(t, controller, "reject_posting", map[string]any{"job_id": sub.JobID}), "invalid_argument", "reason: is required")
	var rejected postingWithApproval
	call(t, controller, "reject_posting", map[string]any{"job_id": sub.JobID, "reason": "duplicate of invoice 5105600001"}).decode(t, &rejected)
	if rejected.Status != "rejected" || rejected.Approval.Decision != "rejected" {
		t.Fatalf("reject_posting = %+v", rejected)
	}
	wantError(t, call(t, auditor, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash}), "not_awaiting_approval", "rejected by controller")
	call(t, auditor, "get_posting", map[string]any{"job_id": sub.JobID}).decode(t, &seen)
	if seen.Status != "rejected" || seen.Approval.Comment != "duplicate of invoice 5105600001" {
		t.Fatalf("the submitter sees %+v", seen)
	}

	// Four eyes are two people: an operator's own posting needs another.
	call(t, auditor, "submit_journal_entry", journalEntry("appr-own")).decode(t, &sub)
	if sub.Status != "awaiting_approval" {
		t.Fatalf("the auditor's own posting = %+v", sub)
	}
	wantError(t, call(t, auditor, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash}), "forbidden", "four_eyes")
	call(t, controller, "approve_posting", map[string]any{"job_id": sub.JobID, "payload_hash": sub.Approval.PayloadHash}).decode(t, &approved)
	if approved.Status != "queued" {
		t.Fatalf("the controller's approval of the auditor's posting = %+v", approved)
	}

	// Every decision is in the audit log, with the rule that asked for it.
	decisions := map[string]string{}
	for _, r := range auditRecords(t, e) {
		if r.Decision == "awaiting_approval" || r.Decision == "approved" || r.Decision == "rejected" {
			decisions[r.Tool+"/"+r.Decision] = r.Rule
		}
	}
	for _, want := range []string{"submit_supplier_invoice/awaiting_approval", "approve_posting/approved", "reject_posting/rejected"} {
		if _, ok := decisions[want]; !ok {
			t.Errorf("audit log lacks %s: %v", want, decisions)
		}
	}
	if decisions["submit_supplier_invoice/awaiting_approval"] != "approval_threshold" {
		t.Errorf("the audit record of the submission names rule %q", decisions["submit_supplier_invoice/awaiting_approval"])
	}
}
