package mcpfront_test

import (
	"context"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// postJob drives a submitted job to succeeded through the worker's side of
// the ledger (no worker runs in these tests), as SAP's document doc.
func postJob(t *testing.T, l *ledger.Ledger, id, doc string) {
	t.Helper()
	ctx := context.Background()
	if err := l.TrustRedis(ctx); err != nil {
		t.Fatal(err)
	}
	claimed, err := l.Claim(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, tasks.IdentityOf(&claimed.Job, tasks.DefaultDestination).Reference())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RecordPosted(ctx, sending, tasks.Result{Document: doc, FiscalYear: "2024", CompanyCode: "1010"}); err != nil {
		t.Fatal(err)
	}
}

// A reversal names a job: the caller's own, succeeded, of a kind that can
// be reversed, not reversed through sapq already. Every other job_id is
// refused with a job_id error, and nothing is recorded.
func TestReversePostingRefusesJobsItCannotReverse(t *testing.T) {
	e := newEnv(t)
	alice, bob := dialSDK(t, e.url, aliceToken, ""), dialSDK(t, e.url, bobToken, "")

	queued := submit(t, alice, "submit_supplier_invoice", invoice("rev-queued"))
	order := submit(t, alice, "submit_sales_order", map[string]any{
		"idempotency_key": "rev-order", "sales_order_type": "OR", "sales_organization": "1010",
		"distribution_channel": "10", "division": "00", "sold_to_party": "10100001", "customer_reference": "PO-1",
		"items": []any{map[string]any{"material": "TG11", "quantity": "1", "unit": "PC"}},
	})
	postJob(t, e.ledger, order.JobID, "1")
	bobs := submit(t, bob, "submit_journal_entry", journalEntry("rev-bobs"))
	postJob(t, e.ledger, bobs.JobID, "0100000007")
	invoiceJob := submit(t, alice, "submit_supplier_invoice", invoice("rev-posted"))
	postJob(t, e.ledger, invoiceJob.JobID, "5105600001")

	before := list(t, alice, nil)
	for _, c := range []struct {
		name      string
		args      map[string]any
		fragments []string
	}{
		{"unknown job", map[string]any{"job_id": "019ad2c4-0000-7000-8000-000000000000"},
			[]string{"invalid_argument", "job_id", "you have no posting with job_id"}},
		{"another caller's job", map[string]any{"job_id": bobs.JobID},
			[]string{"invalid_argument", "job_id", "you have no posting with job_id"}},
		{"a job not succeeded", map[string]any{"job_id": queued.JobID},
			[]string{"invalid_argument", "job_id", "is queued; only a succeeded posting"}},
		{"a sales order", map[string]any{"job_id": order.JobID},
			[]string{"invalid_argument", "job_id", "is a sales_order, which reverse_posting cannot reverse"}},
		{"another destination", map[string]any{"job_id": invoiceJob.JobID, "destination": "s4-us"},
			[]string{"invalid_argument", "destination"}},
		{"the resolution sent by the caller", map[string]any{"job_id": invoiceJob.JobID,
			"original": map[string]any{"kind": "supplier_invoice", "document": "5105600099", "fiscal_year": "2024", "company_code": "1010", "destination": "default"}},
			[]string{"invalid_argument", "original"}},
	} {
		args := map[string]any{"idempotency_key": "rev-" + c.name}
		for k, v := range c.args {
			args[k] = v
		}
		wantError(t, call(t, alice, "reverse_posting", args), c.fragments...)
	}
	if after := list(t, alice, nil); len(after.Postings) != len(before.Postings) {
		t.Fatalf("refused reversals recorded jobs: %d postings before, %d after", len(before.Postings), len(after.Postings))
	}

	// A reversal of the invoice is accepted, replayed under its key, and
	// once it succeeded, a second key is refused.
	first := submit(t, alice, "reverse_posting", map[string]any{"idempotency_key": "rev-1", "job_id": invoiceJob.JobID})
	if first.Kind != string(tasks.KindReversePosting) || first.Status != "queued" || *first.Replayed {
		t.Fatalf("first reversal: %+v", first)
	}
	wantError(t, call(t, alice, "reverse_posting", map[string]any{"idempotency_key": "rev-2", "job_id": invoiceJob.JobID}),
		"invalid_argument", "job_id", "being reversed through sapq by job "+first.JobID)
	postJob(t, e.ledger, first.JobID, "5105600002")
	if again := submit(t, alice, "reverse_posting", map[string]any{"idempotency_key": "rev-1", "job_id": invoiceJob.JobID}); !*again.Replayed || again.JobID != first.JobID {
		t.Fatalf("replay of the reversal: %+v, want job %s replayed", again, first.JobID)
	}
	wantError(t, call(t, alice, "reverse_posting", map[string]any{"idempotency_key": "rev-2", "job_id": invoiceJob.JobID}),
		"invalid_argument", "job_id", "already reversed through sapq", first.JobID, "5105600002")
}
