package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// newBillingRig is a rig whose simulator holds open sales orders 1 to
// orders, waiting to be billed.
func newBillingRig(t *testing.T, orders int, faults sim.Faults) *rig {
	t.Helper()
	r := newRig(t, sim.Faults{})
	r.useSimOptions(sim.Options{OpenSalesOrders: orders, Faults: faults})
	return r
}

// billingDocument is the simulator's billing document of the orders, as its
// ledger lists it.
func (r *rig) billingDocument(orders ...string) sim.LedgerDocument {
	r.t.Helper()
	if n := r.sim.CountBillingDocuments(orders...); n != 1 {
		r.t.Fatalf("simulator holds %d billing documents for orders %v, want exactly 1", n, orders)
	}
	for _, d := range r.sim.Ledger() {
		if d.Kind == sim.KindBillingDocument && d.Reverses == "" && strings.Join(d.SalesDocuments, ",") == strings.Join(orders, ",") {
			return d
		}
	}
	r.t.Fatalf("no billing document of %v in the ledger", orders)
	return sim.LedgerDocument{}
}

func listJobs(t *testing.T, r *rig) []tasks.Job {
	t.Helper()
	page, err := r.ledger.List(context.Background(), "", ledger.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return page.Jobs
}

func TestBillingDocumentIsPosted(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 2, sim.Faults{})
	r.startWorker(r.options())
	job := r.submit(taskstest.BillingDocument("bd-ok-1", "1", "0000000002"))
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	d := r.billingDocument("1", "2")
	if done.Result.Document != d.Document || done.Result.CompanyCode != "1010" || done.Result.FiscalYear != d.FiscalYear || done.Attempts != 1 || done.Result.Reconciled {
		t.Fatalf("job %s (%+v), simulator %+v: want one clean attempt naming SAP's billing document", describeJob(done), done.Result, d)
	}
	if len(done.Result.Messages) != 1 || done.Result.Messages[0].Code != "V1/311" {
		t.Errorf("messages %+v, want SAP's sap-messages", done.Result.Messages)
	}
}

func TestBillingDocumentPermanentErrorKeepsSAPsMessage(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 1, sim.Faults{})
	r.startWorker(r.options())
	closed := taskstest.BillingDocument("bd-closed", "1")
	closed.BillingDate = time.Now().UTC().AddDate(0, -3, 0).Format("2006-01-02")
	for _, c := range []struct {
		posting    *tasks.BillingDocument
		code, text string
	}{
		{taskstest.BillingDocument("bd-unknown", "999"), "VF/010", "Document 999 does not exist"},
		{closed, "F5/201", "is not open"},
	} {
		job := r.submit(c.posting)
		got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
		if got.Attempts != 1 || got.Phase != tasks.PhasePending || got.Error == nil || got.Error.Code != c.code ||
			got.Error.Category != tasks.CategoryPermanent || !strings.Contains(got.Error.Message, c.text) {
			t.Errorf("%s: %s; want one attempt failing permanently with %s ...%s...", c.posting.Key, describeJob(got), c.code, c.text)
		}
	}
	if n := r.sim.CountBillingDocuments("1"); n != 0 {
		t.Fatalf("order 1 billed %d times by refused postings", n)
	}
}

func TestBillingDocumentTransientErrorIsRetried(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 1, sim.Faults{LockRate: 1})
	r.startWorker(r.options())
	job := r.submit(taskstest.BillingDocument("bd-locked", "1"))
	retrying := r.await(job.ID, "retrying after a lock", settle, func(j tasks.Job) bool { return j.Status == tasks.StatusRetrying && j.Error != nil })
	if retrying.Error.Category != tasks.CategoryTransient || retrying.Error.Code != "MC/601" || retrying.Phase != tasks.PhasePending {
		t.Fatalf("while locked: %s", describeJob(retrying))
	}
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if d := r.billingDocument("1"); done.Attempts < 2 || done.Result.Reconciled || done.Result.Document != d.Document {
		t.Fatalf("%s; want a plain retry billing the order once", describeJob(done))
	}
}

// A billing document carries no reference of sapq's: after a lost answer
// (connection dropped, 504) the look-up finds the billing document by the
// orders it bills, and the job adopts it.
func TestBillingDocumentAmbiguousFailureIsReconciledToOneDocument(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 2, sim.Faults{AmbiguousRate: 1})
	r.startWorker(r.options())
	for _, order := range []string{"1", "2"} {
		job := r.submit(taskstest.BillingDocument("bd-ambig-"+order, order))
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if d := r.billingDocument(order); !done.Result.Reconciled || done.Attempts != 1 || done.Result.Document != d.Document {
			t.Fatalf("order %s: %s; want the billing document of the one call adopted by look-up", order, describeJob(done))
		}
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindBillingDocument] != 2 || st.Faults[sim.FaultAmbiguous] != 2 {
		t.Fatalf("simulator received %d billing requests and lost %d answers, want 2 and 2", st.Attempts[sim.KindBillingDocument], st.Faults[sim.FaultAmbiguous])
	}
}

// The order is already billed, by exactly this billing document, before the
// job runs (another caller, or a person in SAP): the look-up before the
// first call adopts it, and nothing is sent. Billed together with another
// order, it is not this posting's: SAP refuses to bill it again, and the job
// fails with SAP's message.
func TestBillingDocumentOfTheOrdersIsAdopted(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 3, sim.Faults{})
	ctx := context.Background()
	for _, orders := range [][]string{{"1"}, {"2", "3"}} {
		req, err := sap.NewRequest(taskstest.BillingDocument("by-hand", orders...))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.sap.Post(ctx, req, sap.Send{}); err != nil {
			t.Fatal(err)
		}
	}
	byHand := r.billingDocument("1")
	r.startWorker(r.options())

	adopted := r.awaitStatus(r.submit(taskstest.BillingDocument("bd-adopt", "1")).ID, tasks.StatusSucceeded, settle)
	if !adopted.Result.Reconciled || adopted.Attempts != 0 || adopted.Result.Document != byHand.Document {
		t.Fatalf("%s; want billing document %s adopted without a call", describeJob(adopted), byHand.Document)
	}
	refused := r.awaitStatus(r.submit(taskstest.BillingDocument("bd-part", "2")).ID, tasks.StatusFailed, settle)
	if refused.Attempts != 1 || refused.Error == nil || refused.Error.Code != "VF/016" || refused.Error.Category != tasks.CategoryPermanent || refused.Phase != tasks.PhasePending {
		t.Fatalf("%s; want SAP's refusal to bill order 2 again, permanent", describeJob(refused))
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindBillingDocument] != 3 {
		t.Fatalf("simulator received %d billing requests, want the 2 by hand and 1 of the refused job", st.Attempts[sim.KindBillingDocument])
	}
}

func TestBadBillingDocumentIsRefusedBeforeAnythingIsRecorded(t *testing.T) {
	t.Parallel()
	r := newBillingRig(t, 1, sim.Faults{})
	r.startWorker(r.options())
	_, _, err := r.ledger.Submit(context.Background(), "tester", taskstest.BillingDocument("bd-bad", "1", "SO-1", "01"))
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 2 || verr.Fields[0].Field != "sales_documents[1]" || verr.Fields[1].Field != "sales_documents[2]" {
		t.Fatalf("Submit = %v, want the letters and the repeated order named", err)
	}
	if jobs := listJobs(t, r); len(jobs) != 0 {
		t.Fatalf("the ledger recorded %d jobs", len(jobs))
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindBillingDocument] != 0 {
		t.Fatalf("SAP received %d requests", st.Attempts[sim.KindBillingDocument])
	}
}
