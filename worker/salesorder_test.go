package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

func TestSalesOrderIsPosted(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	job := r.submit(taskstest.SalesOrder("so-ok-1"))
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	var doc sim.LedgerDocument
	for _, d := range r.sim.Ledger() {
		if d.Reference == ref(job) {
			doc = d
		}
	}
	if doc.Kind != sim.KindSalesOrder || doc.Document == "" || doc.Document != done.Result.Document || done.Attempts != 1 || done.Result.Reconciled {
		t.Fatalf("job %s, simulator %+v: want one clean attempt whose order SAP holds", describeJob(done), doc)
	}
	if len(done.Result.Messages) != 1 || done.Result.Messages[0].Code != "V1/311" {
		t.Errorf("messages %+v, want SAP's V1/311", done.Result.Messages)
	}
}

func TestSalesOrderPermanentErrorKeepsSAPsMessage(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	unknownCustomer := taskstest.SalesOrder("so-bad-customer")
	unknownCustomer.SoldToParty = "10199999"
	badMaterial := taskstest.SalesOrder("so-bad-material")
	badMaterial.Items[1].Material = "TG99"
	for _, c := range []struct {
		posting    *tasks.SalesOrder
		code, text string
	}{
		{unknownCustomer, "V1/390", "10199999 not maintained for sales area 1010 10 00"},
		{badMaterial, "V1/188", "Material TG99 is not defined for sales org.1010"},
	} {
		job := r.submit(c.posting)
		got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
		if got.Attempts != 1 || got.Phase != tasks.PhasePending || got.Error == nil || got.Error.Code != c.code ||
			got.Error.Category != tasks.CategoryPermanent || !strings.Contains(got.Error.Message, c.text) {
			t.Errorf("%s: %s; want one attempt failing permanently with %s ...%s...", c.posting.Key, describeJob(got), c.code, c.text)
		}
	}
	if n := len(r.sim.Ledger()); n != 0 {
		t.Fatalf("simulator saved %d orders for refused postings", n)
	}
}

func TestSalesOrderTransientErrorIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{LockRate: 1})
	r.startWorker(r.options())
	job := r.submit(taskstest.SalesOrder("so-locked"))
	retrying := r.await(job.ID, "retrying after a lock", settle, func(j tasks.Job) bool { return j.Status == tasks.StatusRetrying && j.Error != nil })
	if retrying.Error.Category != tasks.CategoryTransient || retrying.Error.Code != "MC/601" || retrying.Phase != tasks.PhasePending {
		t.Fatalf("while locked: %s", describeJob(retrying))
	}
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if done.Attempts < 2 || done.Result.Reconciled || r.documents(ref(job)) != 1 {
		t.Fatalf("%s, %d orders; want a plain retry and one order", describeJob(done), r.documents(ref(job)))
	}
}

// SAP does not de-duplicate sales order creates: the look-up by sapq's
// reference is the only guard. An ambiguous failure (order saved, answer
// lost, by a dropped connection and by a 504) is reconciled to the one
// order, and the same request sent again without the look-up would indeed
// have created a second one.
func TestSalesOrderAmbiguousFailureIsReconciledToOneOrder(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{AmbiguousRate: 1})
	r.startWorker(r.options())
	var last tasks.Job
	for _, key := range []string{"so-ambig-drop", "so-ambig-504"} {
		job := r.submit(taskstest.SalesOrder(key))
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 {
			t.Fatalf("%s: simulator holds %d orders, want exactly 1", key, n)
		}
		if !done.Result.Reconciled || done.Attempts != 1 || done.Result.Document == "" {
			t.Fatalf("%s: %s; want the order of the one call adopted by look-up", key, describeJob(done))
		}
		last = job
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindSalesOrder] != 2 || st.Faults[sim.FaultAmbiguous] != 2 {
		t.Fatalf("simulator received %d order requests and lost %d answers, want 2 and 2", st.Attempts[sim.KindSalesOrder], st.Faults[sim.FaultAmbiguous])
	}

	// The resend the look-up prevented: SAP takes it as a new order.
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	p, err := last.Posting()
	if err != nil {
		t.Fatal(err)
	}
	req, err := sap.NewRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.sap.Post(context.Background(), req, sap.Send{Reference: ref(last)}); err != nil {
		t.Fatal(err)
	}
	if n := r.documents(ref(last)); n != 2 {
		t.Fatalf("a resend without look-up left %d orders, want 2: the simulator must not de-duplicate", n)
	}
}

func TestBadSalesOrderIsRefusedBeforeAnythingIsRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	bad := taskstest.SalesOrder("so-bad-input")
	bad.Items[0].Quantity, bad.Division = "1.5", "000"
	_, _, err := r.ledger.Submit(context.Background(), "tester", bad)
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 2 || verr.Fields[0].Field != "division" || verr.Fields[1].Field != "items[0].quantity" {
		t.Fatalf("Submit = %v, want the two fields named", err)
	}
	if jobs := listJobs(t, r); len(jobs) != 0 {
		t.Fatalf("the ledger recorded %d jobs", len(jobs))
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindSalesOrder] != 0 {
		t.Fatalf("SAP received %d requests", st.Attempts[sim.KindSalesOrder])
	}
}
