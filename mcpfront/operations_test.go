package mcpfront_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger/ledgertest"
	"github.com/sapq/sapq/tasks/taskstest"
)

type bulkOutcome struct {
	Action       string    `json:"action"`
	DryRun       bool      `json:"dry_run"`
	Matching     int       `json:"matching"`
	Done         int       `json:"done"`
	Remaining    int       `json:"remaining"`
	FailedBefore time.Time `json:"failed_before"`
	Skipped      []struct {
		JobID, Reason string
	} `json:"skipped"`
	Sample []struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	} `json:"sample"`
	Note string `json:"note"`
}

// The operators' tools over failed postings through real MCP clients:
// failure groups, a dry run that changes nothing, reprocessing bounded per
// call and resumed with the answered cutoff, discarding; agents neither
// see nor may call them.
func TestOperatorsReprocessAndDiscardFailures(t *testing.T) {
	e := policyEnv(t)
	ctx := context.Background()
	const closed, account = "Posting period 011 2026 is not open", "Account 61003000 is not defined"
	var closedIDs, accountIDs []string
	for i := range 7 {
		j, _, err := e.ledger.Submit(ctx, "ap-agent", taskstest.JournalEntry(fmt.Sprintf("je-closed-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ledgertest.Refuse(t, e.ledger, j.ID, "F5/201", closed)
		closedIDs = append(closedIDs, j.ID)
	}
	for i := range 2 {
		j, _, _ := e.ledger.Submit(ctx, "ap-agent", taskstest.SupplierInvoice(fmt.Sprintf("INV-ACCT-%d", i)))
		ledgertest.Refuse(t, e.ledger, j.ID, "F5/507", account)
		accountIDs = append(accountIDs, j.ID)
	}
	agent := dialMCPGo(t, e.url, apToken, "")
	controller := dialSDK(t, e.url, opToken, "")

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, tool := range []string{"list_failures", "reprocess_postings", "discard_postings"} {
		if _, err := agent.callErr(cctx, tool, map[string]any{"sap_code": "F5/201"}); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("an agent's call of %s = %v, want tool not found", tool, err)
		}
	}

	var groups struct {
		Groups []struct {
			SAPCode      string   `json:"sap_code"`
			Message      string   `json:"message"`
			Count        int      `json:"count"`
			CompanyCodes []string `json:"company_codes"`
			SampleJobID  string   `json:"sample_job_id"`
		} `json:"groups"`
		Failed int `json:"failed"`
	}
	call(t, controller, "list_failures", map[string]any{}).decode(t, &groups)
	if groups.Failed != 9 || len(groups.Groups) != 2 || groups.Groups[0].SAPCode != "F5/201" || groups.Groups[0].Count != 7 ||
		groups.Groups[0].Message != closed || fmt.Sprint(groups.Groups[0].CompanyCodes) != "[1010]" || groups.Groups[0].SampleJobID != closedIDs[0] {
		t.Fatalf("list_failures = %+v", groups)
	}

	wantError(t, call(t, controller, "reprocess_postings", map[string]any{}), "invalid_argument", "no 'everything' by accident")
	wantError(t, call(t, controller, "reprocess_postings", map[string]any{"sap_code": "F5/201", "max": 0}), "invalid_argument", "max")
	wantError(t, call(t, controller, "reprocess_postings", map[string]any{"sap_code": "F5/201", "submitted_after": "yesterday"}), "invalid_argument", "submitted_after")
	// The filter's field rules hold in the bulk tools, which embed it.
	wantError(t, call(t, controller, "discard_postings", map[string]any{"company_code": "10100"}), "invalid_argument", "company_code")

	var out bulkOutcome
	call(t, controller, "reprocess_postings", map[string]any{"sap_code": "F5/201", "dry_run": true}).decode(t, &out)
	if !out.DryRun || out.Matching != 7 || out.Done != 0 || len(out.Sample) != 5 || out.Sample[0].Status != "failed" {
		t.Fatalf("dry run = %+v", out)
	}
	if j, _ := e.ledger.Get(ctx, "", closedIDs[0]); j.Status != tasks.StatusFailed {
		t.Fatalf("a dry run changed a posting to %s", j.Status)
	}

	// At most max per call; the next call with the cutoff does the rest.
	call(t, controller, "reprocess_postings", map[string]any{"sap_code": "F5/201", "max": 4}).decode(t, &out)
	if out.Matching != 7 || out.Done != 4 || out.Remaining != 3 || out.FailedBefore.IsZero() || !strings.Contains(out.Note, "call again") {
		t.Fatalf("first call = %+v", out)
	}
	call(t, controller, "reprocess_postings", map[string]any{"sap_code": "F5/201", "max": 4, "failed_before": out.FailedBefore.Format(time.RFC3339Nano)}).decode(t, &out)
	if out.Matching != 3 || out.Done != 3 || out.Remaining != 0 {
		t.Fatalf("second call = %+v", out)
	}
	for _, id := range closedIDs {
		if j, _ := e.ledger.Get(ctx, "", id); j.Status != tasks.StatusQueued || j.Run != 1 {
			t.Fatalf("reprocessed posting %s is %s run %d, want queued run 1", id, j.Status, j.Run)
		}
	}
	// Once: a reprocessed posting is not failed, and not selected again.
	call(t, controller, "reprocess_postings", map[string]any{"job_ids": closedIDs}).decode(t, &out)
	if out.Matching != 0 || out.Done != 0 || !strings.Contains(out.Note, "no failed posting matches") {
		t.Fatalf("a third call = %+v", out)
	}
	if j, _ := e.ledger.Get(ctx, "", closedIDs[0]); j.Run != 1 {
		t.Fatalf("a third call started run %d", j.Run)
	}

	call(t, controller, "discard_postings", map[string]any{"kind": "supplier_invoice"}).decode(t, &out)
	if out.Action != "discard" || out.Done != 2 {
		t.Fatalf("discard_postings = %+v", out)
	}
	for _, id := range accountIDs {
		if j, _ := e.ledger.Get(ctx, "", id); j.Status != tasks.StatusCancelled {
			t.Fatalf("a discarded posting is %s", j.Status)
		}
	}
}
