package sap_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

func simClient(t *testing.T) (*sap.Client, *sim.Server) {
	t.Helper()
	s := sim.New(sim.Options{User: "SAPQ_COMM", Password: "secret"})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	c, err := sap.New(sap.Config{BaseURL: hs.URL, User: "SAPQ_COMM", Password: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func mustRequest(t *testing.T, p tasks.Posting) sap.Request {
	t.Helper()
	r, err := sap.NewRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A journal entry is checked by a test run (TestDataIndicator): SAP answers
// with its log and posts nothing, and the real posting afterwards, under
// the job's own message UUID, is not answered with the test run's reply.
func TestCheckJournalEntryPostsNothing(t *testing.T) {
	c, s := simClient(t)
	ctx := context.Background()
	p := taskstest.JournalEntry("check-1")
	send := sap.Send{Reference: "SQCHECKREFERENCE", MessageUUID: uuid.NewString()}

	res, err := c.Check(ctx, mustRequest(t, p), send)
	if err != nil || !res.Checked || !res.Passed {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	if len(res.Messages) == 0 || res.Messages[0].Code != "RW/614" {
		t.Fatalf("check messages = %+v", res.Messages)
	}
	if docs := s.Ledger(); len(docs) != 0 {
		t.Fatalf("a test run posted %+v", docs)
	}
	doc, err := c.Post(ctx, mustRequest(t, p), send)
	if err != nil || doc.Number == "" {
		t.Fatalf("the posting after the check = %+v, %v", doc, err)
	}
	if n := s.CountByReference(send.Reference); n != 1 {
		t.Fatalf("%d documents after check and post, want 1", n)
	}

	bad := taskstest.JournalEntry("check-2")
	bad.Items[0].GLAccount = "99999999"
	res, err = c.Check(ctx, mustRequest(t, bad), sap.Send{Reference: "SQCHECKREFERENC2"})
	if err != nil || !res.Checked || res.Passed {
		t.Fatalf("Check of an entry on an unknown account = %+v, %v", res, err)
	}
	found := false
	for _, m := range res.Messages {
		found = found || (m.Severity == "error" && !strings.HasPrefix(m.Code, "RW/") && strings.Contains(m.Text, "99999999"))
	}
	if !found {
		t.Fatalf("no SAP error names the account: %+v", res.Messages)
	}
}

// Supplier invoices have no check without posting: nothing is sent.
func TestCheckSupplierInvoiceIsNotOffered(t *testing.T) {
	c, s := simClient(t)
	res, err := c.Check(context.Background(), mustRequest(t, taskstest.SupplierInvoice("check-3")), sap.Send{Reference: "SQCHECKREFERENC3"})
	if err != nil || res.Checked {
		t.Fatalf("Check of a supplier invoice = %+v, %v", res, err)
	}
	if st := s.Stats(); st.Attempts[sim.KindSupplierInvoice] != 0 {
		t.Fatalf("a check of a supplier invoice reached SAP: %+v", st)
	}
}
