package sap

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// reversalOf is the reverse posting of a document as the MCP front
// resolves it.
func reversalOf(t *testing.T, kind tasks.Kind, p tasks.Posting, doc Document) *tasks.ReversePosting {
	t.Helper()
	job := tasks.Job{ID: "job-" + doc.Number, Kind: kind, Status: tasks.StatusSucceeded, Destination: tasks.DefaultDestination,
		Result: &tasks.Result{Document: doc.Number, FiscalYear: doc.FiscalYear, CompanyCode: doc.CompanyCode}}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	job.Payload = raw
	r := &tasks.ReversePosting{Key: "rev-" + doc.Number, JobID: job.ID, ReversalReason: "01"}
	if err := r.Resolve(job); err != nil {
		t.Fatal(err)
	}
	return r
}

// The function import Cancel takes its parameters as URI literals in the
// query, by POST with the CSRF token and no body, and answers the reversal
// wrapped in the function's name.
func TestCancelSupplierInvoiceCall(t *testing.T) {
	f := newFakeSAP(t)
	var got *http.Request
	var body []byte
	f.invoice = func(w http.ResponseWriter, r *http.Request, b []byte) {
		got, body = r, b
		writeJSON(w, http.StatusOK, map[string]any{"d": map[string]any{"Cancel": map[string]any{
			"ReverseDocument": "5105600002", "FiscalYear": "2026", "Success": true}}})
	}
	doc, err := f.client().CancelSupplierInvoice(context.Background(), "1010", SupplierInvoiceCancel{
		SupplierInvoice: "5105600001", FiscalYear: "2026", ReversalReason: "01", PostingDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Number != "5105600002" || doc.FiscalYear != "2026" || doc.CompanyCode != "1010" {
		t.Fatalf("document %+v", doc)
	}
	q := got.URL.Query()
	if got.Method != http.MethodPost || !strings.HasSuffix(got.URL.Path, "/API_SUPPLIERINVOICE_PROCESS_SRV/Cancel") || len(body) != 0 ||
		q.Get("SupplierInvoice") != "'5105600001'" || q.Get("FiscalYear") != "'2026'" || q.Get("ReversalReason") != "'01'" ||
		q.Get("PostingDate") != "datetime'2026-11-30T00:00:00'" || got.Header.Get("X-CSRF-Token") == "" {
		t.Fatalf("Cancel sent %s %s %q (token %q)", got.Method, got.URL, body, got.Header.Get("X-CSRF-Token"))
	}

	// "Already reversed" may be this job's own reversal: a duplicate, which
	// the worker answers with the look-up.
	f.invoice = func(w http.ResponseWriter, r *http.Request, b []byte) {
		writeJSON(w, http.StatusBadRequest, v2Error("M8/321", "Document 5105600001 2026 has already been reversed (reversal document 5105600002)"))
	}
	_, err = f.client().CancelSupplierInvoice(context.Background(), "1010", SupplierInvoiceCancel{SupplierInvoice: "5105600001", FiscalYear: "2026"})
	if CategoryOf(err) != Duplicate {
		t.Fatalf("already reversed: %v (%s), want a duplicate", err, CategoryOf(err))
	}
	// An answer without the reversal document proves nothing.
	f.invoice = func(w http.ResponseWriter, r *http.Request, b []byte) {
		writeJSON(w, http.StatusOK, map[string]any{"d": map[string]any{}})
	}
	if _, err = f.client().CancelSupplierInvoice(context.Background(), "1010", SupplierInvoiceCancel{SupplierInvoice: "5105600001", FiscalYear: "2026"}); CategoryOf(err) != Unknown {
		t.Fatalf("an empty answer: %v, want an unknown outcome", err)
	}
}

// Against the simulator: each kind reversed by its request, and the
// look-up of the original telling this client's reversal from another's.
func TestReversalsAgainstTheSimulator(t *testing.T) {
	ctx := context.Background()
	c, s, _ := simClient(t, sim.Options{})
	id := tasks.Identity{Caller: "alice", Key: "rev", Fingerprint: "f", Destination: tasks.DefaultDestination}
	send := Send{Reference: id.Reference(), MessageUUID: id.MessageUUID(0)}

	si := func(key string) tasks.Posting {
		p := taskstest.SupplierInvoice(key)
		p.PostingDate, p.DocumentDate = today(), today()
		return p
	}
	je := func(key string) tasks.Posting {
		p := taskstest.JournalEntry(key)
		p.PostingDate, p.DocumentDate = today(), today()
		return p
	}
	for _, o := range []struct {
		kind    tasks.Kind
		simKind sim.Kind
		make    func(key string) tasks.Posting
	}{
		{tasks.KindSupplierInvoice, sim.KindSupplierInvoice, si},
		{tasks.KindJournalEntry, sim.KindJournalEntry, je},
		{tasks.KindGoodsMovement, sim.KindGoodsMovement, func(key string) tasks.Posting { return taskstest.GoodsMovement(key) }},
	} {
		posting := o.make("to-reverse-1")
		origID := tasks.Identity{Caller: "alice", Key: string(o.kind), Fingerprint: "f", Destination: tasks.DefaultDestination}
		orig, err := c.Post(ctx, mustRequest(t, posting), Send{Reference: origID.Reference(), MessageUUID: origID.MessageUUID(0)})
		if err != nil {
			t.Fatalf("%s: %v", o.kind, err)
		}
		r := mustRequest(t, reversalOf(t, o.kind, posting, orig))
		if m, err := c.Find(ctx, r, send.Reference); err != nil || m.Found || m.TakenBy != "" {
			t.Fatalf("%s: look-up before the reversal: %+v %v", o.kind, m, err)
		}
		rev, err := c.Post(ctx, r, send)
		if err != nil || rev.Number == "" || rev.Number == orig.Number {
			t.Fatalf("%s: reversal %+v %v", o.kind, rev, err)
		}
		m, err := c.Find(ctx, r, send.Reference)
		if err != nil || !m.Found || m.Document.Number != rev.Number || m.TakenBy != "" {
			t.Fatalf("%s: look-up after the reversal: %+v %v; want reversal %s found", o.kind, m, err, rev.Number)
		}
		// A supplier invoice's reversal carries nothing of the job's: it is
		// the job's only if the job may have sent it. A journal entry's
		// carries the job's reference.
		if m.Unproven != (o.kind != tasks.KindJournalEntry) {
			t.Errorf("%s: Unproven = %v", o.kind, m.Unproven)
		}
		// Another job's reference does not find a journal entry's reversal.
		other := tasks.Identity{Caller: "alice", Key: "other", Fingerprint: "f", Destination: tasks.DefaultDestination}.Reference()
		if o.kind == tasks.KindJournalEntry {
			if m, err := c.Find(ctx, r, other); err != nil || m.Found || m.TakenBy != rev.Number {
				t.Errorf("%s: another job's look-up: %+v %v; want taken by %s", o.kind, m, err, rev.Number)
			}
		}
		// Sent again, SAP refuses: the document is reversed once.
		if _, err := c.Post(ctx, r, Send{Reference: send.Reference, MessageUUID: id.MessageUUID(1)}); err == nil {
			t.Errorf("%s: a second reversal was accepted", o.kind)
		}

		// Reversed by hand: another's, by its user.
		posting2 := o.make("to-reverse-2")
		id2 := tasks.Identity{Caller: "alice", Key: string(o.kind) + "-2", Fingerprint: "f", Destination: tasks.DefaultDestination}
		orig2, err := c.Post(ctx, mustRequest(t, posting2), Send{Reference: id2.Reference(), MessageUUID: id2.MessageUUID(0)})
		if err != nil {
			t.Fatal(err)
		}
		byHand, err := s.Reverse(o.simKind, orig2.CompanyCode, orig2.Number, orig2.FiscalYear)
		if err != nil {
			t.Fatal(err)
		}
		r2 := mustRequest(t, reversalOf(t, o.kind, posting2, orig2))
		m, err = c.Find(ctx, r2, send.Reference)
		if err != nil || m.Found || m.TakenBy != byHand {
			t.Fatalf("%s: look-up of a document reversed by hand: %+v %v; want taken by %s", o.kind, m, err, byHand)
		}
		if o.kind != tasks.KindJournalEntry && m.TakenByUser != sim.ClerkUser {
			t.Errorf("%s: taken by user %q, want %s", o.kind, m.TakenByUser, sim.ClerkUser)
		}
	}
}

// A reversal is refused before anything is sent when the posting holds no
// resolved original, or one of a kind that is not reversed.
func TestReversalRequestNeedsItsOriginal(t *testing.T) {
	if _, err := NewRequest(&tasks.ReversePosting{Key: "k", JobID: "j"}); err == nil {
		t.Error("a reversal without its original made a request")
	}
	p := &tasks.ReversePosting{Key: "k", JobID: "j", Original: &tasks.ReversedDocument{Kind: tasks.KindSalesOrder, Document: "1", FiscalYear: "2026", CompanyCode: "1010", Destination: "default"}}
	if _, err := NewRequest(p); err == nil {
		t.Error("a reversal of a sales order made a request")
	}
}
