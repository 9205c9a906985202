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

func TestGoodsMovementIsPosted(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	job := r.submit(taskstest.GoodsMovement("gm-ok-1"))
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	var doc sim.LedgerDocument
	for _, d := range r.sim.Ledger() {
		if d.Reference == ref(job) {
			doc = d
		}
	}
	if doc.Kind != sim.KindGoodsMovement || doc.Document == "" || doc.Document != done.Result.Document ||
		doc.FiscalYear != done.Result.FiscalYear || done.Attempts != 1 || done.Result.Reconciled {
		t.Fatalf("job %s, simulator %+v: want one clean attempt whose material document SAP holds", describeJob(done), doc)
	}
	if len(done.Result.Messages) != 1 || done.Result.Messages[0].Code != "MIGO/012" {
		t.Errorf("messages %+v, want SAP's MIGO/012", done.Result.Messages)
	}
	if a, b := r.sim.Stock("TG11", "1010", "101A"), r.sim.Stock("TG12", "1010", "101A"); a != "510" || b != "202" {
		t.Errorf("stock TG11 %s, TG12 %s; want 510 and 202 after receiving 10 and 2", a, b)
	}
}

// A goods issue the stock does not cover fails at once with SAP's M7/021,
// and nothing moves.
func TestGoodsIssueBelowZeroFailsPermanently(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	job := r.submit(taskstest.GoodsIssue("gi-short", "TG12", "201"))
	got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	if got.Attempts != 1 || got.Phase != tasks.PhasePending || got.Error == nil || got.Error.Code != "M7/021" ||
		got.Error.Category != tasks.CategoryPermanent || !strings.Contains(got.Error.Message, "Deficit of SL Unrestricted-use 1 PC : TG12 1010 101A") {
		t.Fatalf("%s; want one attempt failing permanently with M7/021", describeJob(got))
	}
	if n, stock := len(r.sim.Ledger()), r.sim.Stock("TG12", "1010", "101A"); n != 0 || stock != "200" {
		t.Fatalf("simulator posted %d documents, stock %s, for a refused issue", n, stock)
	}
	// The stock covers an issue of what there is.
	ok := r.submit(taskstest.GoodsIssue("gi-all", "TG12", "200"))
	r.awaitStatus(ok.ID, tasks.StatusSucceeded, settle)
	if stock := r.sim.Stock("TG12", "1010", "101A"); stock != "0" {
		t.Fatalf("stock %s after issuing all of it", stock)
	}
}

func TestGoodsMovementTransientErrorIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{LockRate: 1})
	r.startWorker(r.options())
	job := r.submit(taskstest.GoodsMovement("gm-locked"))
	retrying := r.await(job.ID, "retrying after a lock", settle, func(j tasks.Job) bool { return j.Status == tasks.StatusRetrying && j.Error != nil })
	if retrying.Error.Category != tasks.CategoryTransient || retrying.Error.Code != "MC/601" || retrying.Phase != tasks.PhasePending {
		t.Fatalf("while locked: %s", describeJob(retrying))
	}
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if done.Attempts < 2 || done.Result.Reconciled || r.documents(ref(job)) != 1 || r.sim.Stock("TG11", "1010", "101A") != "510" {
		t.Fatalf("%s, %d documents, stock %s; want a plain retry, one document and the goods moved once",
			describeJob(done), r.documents(ref(job)), r.sim.Stock("TG11", "1010", "101A"))
	}
}

// SAP does not de-duplicate material document creates: a resend moves the
// goods twice. An ambiguous failure (document posted, answer lost, by a
// dropped connection and by a 504) is reconciled to the one document by
// the look-up, and the goods moved once; the same request sent again
// without the look-up would have moved them again.
func TestGoodsMovementAmbiguousFailureIsReconciledToOneDocument(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{AmbiguousRate: 1})
	r.startWorker(r.options())
	var last tasks.Job
	for _, key := range []string{"gm-ambig-drop", "gm-ambig-504"} {
		job := r.submit(taskstest.GoodsIssue(key, "TG11", "5"))
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 {
			t.Fatalf("%s: simulator holds %d material documents, want exactly 1", key, n)
		}
		if !done.Result.Reconciled || done.Attempts != 1 || done.Result.Document == "" {
			t.Fatalf("%s: %s; want the document of the one call adopted by look-up", key, describeJob(done))
		}
		last = job
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindGoodsMovement] != 2 || st.Faults[sim.FaultAmbiguous] != 2 {
		t.Fatalf("simulator received %d goods movements and lost %d answers, want 2 and 2", st.Attempts[sim.KindGoodsMovement], st.Faults[sim.FaultAmbiguous])
	}
	if stock := r.sim.Stock("TG11", "1010", "101A"); stock != "490" {
		t.Fatalf("stock %s, want 490: two issues of 5, each once", stock)
	}

	// The resend the look-up prevented: SAP moves the goods again.
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
	if n, stock := r.documents(ref(last)), r.sim.Stock("TG11", "1010", "101A"); n != 2 || stock != "485" {
		t.Fatalf("a resend without look-up left %d documents and stock %s, want 2 and 485: the simulator must not de-duplicate", n, stock)
	}
}

// A 201 without a material document number (a warehouse is to confirm the
// movement; SAP names the delivery in sap-message) is neither a success nor
// a failure: the attempt records an unknown outcome carrying SAP's message,
// and the next one adopts the document the look-up finds, without sending
// again.
func TestGoodsMovementWithoutNumberIsReconciled(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	md := sim.DefaultMasterData()
	md.Plants["1010"] = sim.Plant{CompanyCode: "1010", StorageLocations: []string{"101A", "101B"}, WarehouseStorageLocations: []string{"101B"}}
	r.useSimOptions(sim.Options{MasterData: md})
	r.startWorker(r.options())
	gm := taskstest.GoodsMovement("gm-warehouse")
	gm.Items[1].StorageLocation = "101B"
	job := r.submit(gm)
	unknown := r.await(job.ID, "retrying with an unknown outcome", settle, func(j tasks.Job) bool {
		return j.Status == tasks.StatusRetrying && j.Error != nil || j.Status == tasks.StatusSucceeded
	})
	if unknown.Status != tasks.StatusRetrying || unknown.Phase != tasks.PhaseSending || unknown.Error.Category != tasks.CategoryUnknown ||
		unknown.Error.Code != "L9/514" || !strings.Contains(unknown.Error.Message, "Delivery") || unknown.Result != nil {
		t.Fatalf("after the 201 without number: %s; want an unknown outcome carrying L9/514", describeJob(unknown))
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if !done.Result.Reconciled || done.Result.Document == "" || r.documents(ref(job)) != 1 {
		t.Fatalf("%s, %d documents; want the one document adopted by look-up", describeJob(done), r.documents(ref(job)))
	}
	if n := r.sim.Stats().Attempts[sim.KindGoodsMovement]; n != 1 {
		t.Fatalf("SAP received %d goods movements, want 1", n)
	}
}

func TestBadGoodsMovementIsRefusedBeforeAnythingIsRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	bad := taskstest.GoodsMovement("gm-bad-input")
	bad.Items[0].Quantity, bad.HeaderText, bad.GoodsMovementCode = "1.5", "header text too long", "07"
	_, _, err := r.ledger.Submit(context.Background(), "tester", bad)
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 3 || verr.Fields[0].Field != "goods_movement_code" ||
		verr.Fields[1].Field != "header_text" || verr.Fields[2].Field != "items[0].quantity" {
		t.Fatalf("Submit = %v, want the three fields named", err)
	}
	if jobs := listJobs(t, r); len(jobs) != 0 {
		t.Fatalf("the ledger recorded %d jobs", len(jobs))
	}
	if st := r.sim.Stats(); st.Attempts[sim.KindGoodsMovement] != 0 {
		t.Fatalf("SAP received %d requests", st.Attempts[sim.KindGoodsMovement])
	}
}
