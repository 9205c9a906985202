package mcpfront_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

type dryRunResult struct {
	JobID  string `json:"job_id"`
	Kind   string `json:"kind"`
	DryRun *struct {
		Verdict        string `json:"verdict"`
		Destination    string `json:"destination"`
		Reference      string `json:"reference"`
		ApprovalReason string `json:"approval_reason"`
		ExistingJobID  string `json:"existing_job_id"`
		SAPCheck       struct {
			Checked  bool            `json:"checked"`
			Passed   bool            `json:"passed"`
			Messages []tasks.Message `json:"messages"`
			Note     string          `json:"note"`
		} `json:"sap_check"`
	} `json:"dry_run"`
}

// today's dates: the simulator checks the posting period.
func dated(m map[string]any) map[string]any {
	m["document_date"], m["posting_date"] = taskstest.Today(), taskstest.Today()
	return m
}

func withDryRun(m map[string]any) map[string]any { m["dry_run"] = true; return m }

// A dry run goes through every check a submission does, and SAP's own
// check where SAP has one, and records and sends nothing.
func TestDryRun(t *testing.T) {
	s := sim.New(sim.Options{User: "SAPQ_COMM", Password: "secret"})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	client, err := sap.New(sap.Config{BaseURL: hs.URL, User: "SAPQ_COMM", Password: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	destinations, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		t.Fatal(err)
	}
	callers, err := mcpfront.ParseCallers([]byte(callersJSON()), "callers.json")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Callers: callers, SAP: destinations})
	open := dialSDK(t, e.url, openToken, "")
	ap := dialMCPGo(t, e.url, apToken, "")

	var r dryRunResult
	call(t, open, "submit_journal_entry", withDryRun(dated(journalEntry("dry-1")))).decode(t, &r)
	if r.JobID != "" || r.DryRun == nil || r.DryRun.Verdict != "would_post" || !r.DryRun.SAPCheck.Checked || !r.DryRun.SAPCheck.Passed ||
		len(r.DryRun.SAPCheck.Messages) == 0 || r.DryRun.SAPCheck.Messages[0].Code != "RW/614" || !strings.HasPrefix(r.DryRun.Reference, "SQ") {
		t.Fatalf("dry run of a sound journal entry = %+v", r.DryRun)
	}
	if l := list(t, open, nil); len(l.Postings) != 0 {
		t.Fatalf("a dry run recorded %+v", l.Postings)
	}
	if docs := s.Ledger(); len(docs) != 0 {
		t.Fatalf("a dry run posted %+v", docs)
	}

	bad := dated(journalEntry("dry-2"))
	item(bad, 0)["gl_account"] = "99999999"
	call(t, open, "submit_journal_entry", withDryRun(bad)).decode(t, &r)
	if r.DryRun.Verdict != "sap_refuses" || r.DryRun.SAPCheck.Passed || !strings.Contains(messagesText(r.DryRun.SAPCheck.Messages), "99999999") {
		t.Fatalf("dry run of an entry on an unknown account = %+v", r.DryRun)
	}

	call(t, open, "submit_supplier_invoice", withDryRun(dated(invoice("dry-3")))).decode(t, &r)
	if r.DryRun.Verdict != "would_post" || r.DryRun.SAPCheck.Checked || !strings.Contains(r.DryRun.SAPCheck.Note, "SAP offers no check without posting for supplier_invoice") {
		t.Fatalf("dry run of a supplier invoice = %+v", r.DryRun)
	}

	// A key already used: the dry run says the call would replay it.
	sub := submit(t, open, "submit_journal_entry", dated(journalEntry("dry-4")))
	call(t, open, "submit_journal_entry", withDryRun(dated(journalEntry("dry-4")))).decode(t, &r)
	if r.DryRun.Verdict != "would_replay" || r.DryRun.ExistingJobID != sub.JobID {
		t.Fatalf("dry run of a submitted key = %+v", r.DryRun)
	}
	changed := dated(journalEntry("dry-4"))
	changed["header_text"] = "other"
	wantError(t, call(t, open, "submit_journal_entry", withDryRun(changed)), "idempotency_conflict", "dry run")

	// Above the approval threshold: it would wait; the day's amount is not counted.
	call(t, ap, "submit_supplier_invoice", withDryRun(dated(withAmount(invoice("dry-5"), "1600.00", "1500.00", "100.00")))).decode(t, &r)
	if r.DryRun.Verdict != "would_await_approval" || !strings.Contains(r.DryRun.ApprovalReason, "rule approval_threshold") {
		t.Fatalf("dry run above the approval threshold = %+v", r.DryRun)
	}
	if keys, _ := e.rdb.Keys(context.Background(), "sapq:{policy:*}:day:*").Result(); len(keys) != 0 {
		t.Fatalf("a dry run counted towards the daily amount: %v", keys)
	}
	// Policy and validation refuse as they do without dry_run.
	over := dated(withAmount(invoice("dry-6"), "2100.00", "2000.00", "100.00"))
	wantError(t, call(t, ap, "submit_supplier_invoice", withDryRun(over)), "policy_violation", "max_amount_per_posting")
	wrong := withDryRun(dated(journalEntry("dry-7")))
	wrong["dry_run"] = "yes"
	wantError(t, call(t, open, "submit_journal_entry", wrong), "invalid_argument", "dry_run: must be")
	if l := list(t, open, nil); len(l.Postings) != 1 {
		t.Fatalf("dry runs recorded postings: %+v", l.Postings)
	}
}

func messagesText(msgs []tasks.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Code + " " + m.Text + "\n")
	}
	return b.String()
}
