package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// posted submits a posting and waits until SAP holds its document.
func (r *rig) posted(p tasks.Posting) tasks.Job {
	r.t.Helper()
	return r.awaitStatus(r.submit(p).ID, tasks.StatusSucceeded, settle)
}

// reversal is a reverse posting of job, resolved as the MCP front does.
func (r *rig) reversal(key string, job tasks.Job) *tasks.ReversePosting {
	r.t.Helper()
	p := &tasks.ReversePosting{Key: key, JobID: job.ID}
	if err := p.Resolve(r.job(job.ID)); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// reversedBy is the reversal the simulator's ledger names for a document.
func (r *rig) reversedBy(kind sim.Kind, document string) (reversedBy string, reversals int) {
	for _, d := range r.sim.Ledger() {
		if d.Kind == kind && d.Document == document && d.Reverses == "" {
			reversedBy = d.ReversedBy
		}
		if d.Kind == kind && d.Reverses == document {
			reversals++
		}
	}
	return reversedBy, reversals
}

func originals() []struct {
	kind    sim.Kind
	posting func(key string) tasks.Posting
} {
	return []struct {
		kind    sim.Kind
		posting func(key string) tasks.Posting
	}{
		{sim.KindSupplierInvoice, func(k string) tasks.Posting { return taskstest.SupplierInvoice(k) }},
		{sim.KindJournalEntry, func(k string) tasks.Posting { return taskstest.JournalEntry(k) }},
		{sim.KindGoodsMovement, func(k string) tasks.Posting { return taskstest.GoodsMovement(k) }},
	}
}

func TestReversePostingReversesEachKind(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-" + string(o.kind)))
		done := r.awaitStatus(r.submit(r.reversal("rev-"+string(o.kind), orig)).ID, tasks.StatusSucceeded, settle)
		by, n := r.reversedBy(o.kind, orig.Result.Document)
		if n != 1 || by == "" || by != done.Result.Document || done.Attempts != 1 || done.Result.Reconciled ||
			done.Result.CompanyCode != orig.Result.CompanyCode {
			t.Fatalf("%s: reversal job %s; SAP shows %s reversed by %q in %d reversals; want one clean reversal, the job's document",
				o.kind, describeJob(done), orig.Result.Document, by, n)
		}
	}
}

// A document SAP shows reversed by someone else is not reversed again: the
// job fails permanently and names the reversal.
func TestReversePostingOfAReversedDocumentFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-rev-" + string(o.kind)))
		rev := r.reversal("rev-twice-"+string(o.kind), orig)
		other, err := r.sim.Reverse(o.kind, orig.Result.CompanyCode, orig.Result.Document, orig.Result.FiscalYear)
		if err != nil {
			t.Fatal(err)
		}
		failed := r.awaitStatus(r.submit(rev).ID, tasks.StatusFailed, settle)
		if failed.Error == nil || failed.Error.Code != "sapq/already_reversed" || failed.Error.Category != tasks.CategoryPermanent ||
			!strings.Contains(failed.Error.Message, other) || failed.Attempts != 0 || failed.Phase != tasks.PhasePending {
			t.Fatalf("%s: %s; want a permanent failure naming %s, nothing sent", o.kind, describeJob(failed), other)
		}
		if _, n := r.reversedBy(o.kind, orig.Result.Document); n != 1 {
			t.Fatalf("%s: SAP holds %d reversals, want the one made by hand", o.kind, n)
		}
	}
}

func TestReversePostingTransientErrorIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	orig := r.posted(taskstest.SupplierInvoice("orig-locked"))
	if err := r.sim.SetFaults(sim.Faults{LockRate: 1}); err != nil {
		t.Fatal(err)
	}
	job := r.submit(r.reversal("rev-locked", orig))
	retrying := r.await(job.ID, "retrying after a lock", settle, func(j tasks.Job) bool { return j.Status == tasks.StatusRetrying && j.Error != nil })
	if retrying.Error.Category != tasks.CategoryTransient || retrying.Phase != tasks.PhasePending {
		t.Fatalf("while locked: %s", describeJob(retrying))
	}
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if _, n := r.reversedBy(sim.KindSupplierInvoice, orig.Result.Document); n != 1 || done.Attempts < 2 {
		t.Fatalf("%s, %d reversals; want a retry and one reversal", describeJob(done), n)
	}
}

// A reversal whose answer is lost (SAP reversed the document) is reconciled
// to that one reversal by looking the original up, for either kind.
func TestReversePostingAmbiguousFailureIsReconciledToOneReversal(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-ambig-" + string(o.kind)))
		if err := r.sim.SetFaults(sim.Faults{AmbiguousRate: 1}); err != nil {
			t.Fatal(err)
		}
		before := r.sim.Stats().Faults[sim.FaultAmbiguous]
		job := r.submit(r.reversal("rev-ambig-"+string(o.kind), orig))
		r.eventually(settle, "an answer lost", func() (bool, string) {
			n := r.sim.Stats().Faults[sim.FaultAmbiguous]
			return n > before, "no lost answer yet"
		})
		if err := r.sim.SetFaults(sim.Faults{}); err != nil {
			t.Fatal(err)
		}
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		by, n := r.reversedBy(o.kind, orig.Result.Document)
		if n != 1 || by != done.Result.Document || !done.Result.Reconciled || done.Attempts != 1 {
			t.Fatalf("%s: %s; SAP holds %d reversals (by %q); want the one call's reversal adopted by look-up", o.kind, describeJob(done), n, by)
		}
	}
}

func TestReversePostingIsRefusedForJobsItCannotReverse(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	order := r.posted(taskstest.SalesOrder("orig-order"))
	bad := taskstest.JournalEntry("orig-bad")
	bad.Items[0].GLAccount = "99999999"
	failed := r.awaitStatus(r.submit(bad).ID, tasks.StatusFailed, settle)
	orig := r.posted(taskstest.JournalEntry("orig-twice"))
	r.awaitStatus(r.submit(r.reversal("rev-first", orig)).ID, tasks.StatusSucceeded, settle)
	reversal := r.job(r.submit(r.reversal("rev-first", orig)).ID)
	for _, c := range []struct {
		job  tasks.Job
		want string
	}{
		{order, "only supplier_invoice, journal_entry and goods_movement"},
		{failed, "is failed"},
		{reversal, "itself a reversal"},
	} {
		p := &tasks.ReversePosting{Key: "rev-refused", JobID: c.job.ID}
		err := p.Resolve(c.job)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "job_id") || p.Original != nil {
			t.Errorf("Resolve(%s) = %v, want a job_id error ...%s...", describeJob(c.job), err, c.want)
		}
	}
}

// The earlier bug: a reversal whose call was in doubt (it outlasted its
// timeout) adopted the reversal that SAP showed afterwards, although a
// clerk had made it and SAP refused the job's own call. Only this job's
// reversal is adopted: a journal entry's by its reference, a supplier
// invoice's by the SAP user that made it.
func TestReversePostingDoesNotAdoptAReversalMadeWhileItsCallWasInDoubt(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-doubt-" + string(o.kind)))
		if err := r.sim.SetFaults(sim.Faults{Next: []sim.FaultKind{sim.FaultHold}}); err != nil {
			t.Fatal(err)
		}
		job := r.submit(r.reversal("rev-doubt-"+string(o.kind), orig))
		r.eventually(settle, "the reversal's call held in SAP", func() (bool, string) {
			return r.sim.Held() == 1, describeJob(r.job(job.ID))
		})
		byHand, err := r.sim.Reverse(o.kind, orig.Result.CompanyCode, orig.Result.Document, orig.Result.FiscalYear)
		if err != nil {
			t.Fatal(err)
		}
		r.sim.Release() // the job's call meets the clerk's reversal and is refused
		failed := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
		if failed.Error == nil || failed.Error.Code != "sapq/already_reversed" || failed.Error.Category != tasks.CategoryPermanent ||
			!strings.Contains(failed.Error.Message, byHand) || failed.Result != nil || failed.Attempts < 1 {
			t.Fatalf("%s: %s; want a permanent failure naming the clerk's reversal %s", o.kind, describeJob(failed), byHand)
		}
		if by, n := r.reversedBy(o.kind, orig.Result.Document); n != 1 || by != byHand {
			t.Fatalf("%s: SAP holds %d reversals (by %q), want only the clerk's %s", o.kind, n, by, byHand)
		}
	}
}

// A reversal SAP refuses for its data (the posting date's period is
// closed) fails at once with SAP's message, nothing posted.
func TestReversePostingIntoAClosedPeriodFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	closed := time.Now().UTC().AddDate(0, -3, 0).Format(time.DateOnly)
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-closed-" + string(o.kind)))
		rev := r.reversal("rev-closed-"+string(o.kind), orig)
		rev.PostingDate = closed
		failed := r.awaitStatus(r.submit(rev).ID, tasks.StatusFailed, settle)
		// SAP's message for a closed period: FI's, or MM's for a material
		// document.
		code := map[sim.Kind]string{sim.KindGoodsMovement: "M7/053"}[o.kind]
		if code == "" {
			code = "F5/201"
		}
		if failed.Error == nil || failed.Error.Code != code || failed.Error.Category != tasks.CategoryPermanent ||
			failed.Phase != tasks.PhasePending || failed.Attempts != 1 {
			t.Fatalf("%s: %s; want one call refused with %s", o.kind, describeJob(failed), code)
		}
		if by, n := r.reversedBy(o.kind, orig.Result.Document); n != 0 || by != "" {
			t.Fatalf("%s: SAP reversed it (%d, by %q)", o.kind, n, by)
		}
	}
}

// Two reversal jobs of one original under different keys (the MCP front
// refuses the second while it knows the first; the ledger may not): the
// second fails naming the first's reversal, never adopting it, and SAP
// holds one reversal.
func TestReversePostingDoesNotAdoptAnotherJobsReversal(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-two-" + string(o.kind)))
		first := r.awaitStatus(r.submit(r.reversal("rev-two-a-"+string(o.kind), orig)).ID, tasks.StatusSucceeded, settle)
		second := r.awaitStatus(r.submit(r.reversal("rev-two-b-"+string(o.kind), orig)).ID, tasks.StatusFailed, settle)
		if second.Error == nil || second.Error.Code != "sapq/already_reversed" || !strings.Contains(second.Error.Message, first.Result.Document) ||
			second.Result != nil || second.Phase != tasks.PhasePending {
			t.Fatalf("%s: second reversal %s; want it failed naming %s", o.kind, describeJob(second), first.Result.Document)
		}
		if _, n := r.reversedBy(o.kind, orig.Result.Document); n != 1 {
			t.Fatalf("%s: SAP holds %d reversals", o.kind, n)
		}
	}
}

// A reversal job the ledger forgot after its call (its retention ended, or
// Redis lost it), submitted again under its key: the new job finds the
// reversal the forgotten one made and adopts it, for a supplier invoice by
// sapq's SAP user, since no other job of the ledger can have made it.
func TestReversePostingOfAForgottenJobIsAdopted(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	r.startWorker(r.options())
	for _, o := range originals() {
		orig := r.posted(o.posting("orig-forgot-" + string(o.kind)))
		rev := r.reversal("rev-forgot-"+string(o.kind), orig)
		done := r.awaitStatus(r.submit(rev).ID, tasks.StatusSucceeded, settle)
		r.forget(done)
		again := r.awaitStatus(r.submit(rev).ID, tasks.StatusSucceeded, settle)
		if again.ID == done.ID || again.Result.Document != done.Result.Document || !again.Result.Reconciled || again.Attempts != 0 {
			t.Fatalf("%s: resubmitted %s; want the forgotten job's reversal %s adopted by look-up, nothing sent", o.kind, describeJob(again), done.Result.Document)
		}
		if _, n := r.reversedBy(o.kind, orig.Result.Document); n != 1 {
			t.Fatalf("%s: SAP holds %d reversals", o.kind, n)
		}
	}
}
