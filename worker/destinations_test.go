package worker_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

// system is one more simulated SAP system beside the rig's own.
func (r *rig) system() (*sim.Server, *sap.Client) {
	r.t.Helper()
	s := sim.New(sim.Options{User: simUser, Password: simPassword, Seed: 2, Logger: testLogger(r.t)})
	hs := httptest.NewServer(s)
	r.t.Cleanup(hs.Close)
	c, err := sap.New(sap.Config{BaseURL: hs.URL, User: simUser, Password: simPassword, Timeout: rigSAPTimeout, Logger: testLogger(r.t)})
	if err != nil {
		r.t.Fatal(err)
	}
	return s, c
}

// destinations are the rig's simulator as s4-de and another as s4-us.
func (r *rig) destinations(routes tasks.Routes, us *sap.Client) *sap.Destinations {
	r.t.Helper()
	d, err := sap.NewDestinations(routes, map[string]*sap.Client{"s4-de": r.sap, "s4-us": us})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// Postings go where their company code routes them or where they say; the
// reference they carry is that destination's; the SAP call metrics say
// which system they called.
func TestPostsToEachDestination(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	usSim, us := r.system()
	opts := r.options()
	opts.SAP = r.destinations(tasks.Routes{
		Destinations: []string{"s4-de", "s4-us"}, Default: "s4-de",
		CompanyCodes: map[string]string{"1010": "s4-us"},
	}, us)
	reg := prometheus.NewRegistry()
	opts.Metrics = reg
	r.startWorker(opts)

	routed := r.submit(taskstest.SupplierInvoice("INV-ROUTED"))
	named := taskstest.JournalEntry("je-named")
	named.Destination = "s4-de"
	namedJob := r.submit(named)
	r.awaitStatus(routed.ID, tasks.StatusSucceeded, settle)
	r.awaitStatus(namedJob.ID, tasks.StatusSucceeded, settle)

	routedRef := tasks.IdentityOf(&routed, "s4-us").Reference()
	namedRef := tasks.IdentityOf(&namedJob, "s4-de").Reference()
	if usSim.CountByReference(routedRef) != 1 || r.sim.CountByReference(routedRef) != 0 {
		t.Errorf("routed invoice: %d documents in s4-us, %d in s4-de; want 1 and 0", usSim.CountByReference(routedRef), r.sim.CountByReference(routedRef))
	}
	if r.sim.CountByReference(namedRef) != 1 || usSim.Stats().Attempts[sim.KindJournalEntry] != 0 {
		t.Errorf("named journal entry: %d documents in s4-de, %d posts to s4-us; want 1 and 0", r.sim.CountByReference(namedRef), usSim.Stats().Attempts[sim.KindJournalEntry])
	}
	if got := r.job(routed.ID); got.Destination != "s4-us" || got.Reference != routedRef {
		t.Errorf("routed job records destination %q, reference %q", got.Destination, got.Reference)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "sapq_sap_call_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			calls[labels["kind"]+"/"+labels["destination"]+"/"+labels["op"]] = true
		}
	}
	for _, want := range []string{"supplier_invoice/s4-us/post", "supplier_invoice/s4-us/find", "journal_entry/s4-de/post"} {
		if !calls[want] {
			t.Errorf("no SAP call metric for %s; have %v", want, calls)
		}
	}
}

// A posting that no destination takes fails before any call, saying why.
func TestUnroutablePostingFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	usSim, us := r.system()
	opts := r.options()
	opts.SAP = r.destinations(tasks.Routes{Destinations: []string{"s4-de", "s4-us"}, CompanyCodes: map[string]string{"1710": "s4-us"}}, us)
	r.startWorker(opts)
	job := r.submit(taskstest.SupplierInvoice("INV-NOWHERE"))
	got := r.awaitStatus(job.ID, tasks.StatusFailed, settle)
	if got.Error == nil || got.Error.Code != worker.CodeUnroutable || got.Error.Category != tasks.CategoryPermanent ||
		!strings.Contains(got.Error.Message, "company code 1010") || got.Phase != tasks.PhasePending {
		t.Fatalf("%s; want failed, unroutable, naming the company code", describeJob(got))
	}
	if n := r.sim.Stats().Attempts[sim.KindSupplierInvoice] + usSim.Stats().Attempts[sim.KindSupplierInvoice]; n != 0 {
		t.Fatalf("%d posts", n)
	}
}

// A job whose first call went to a destination stays with it: the routes
// changing afterwards (the company code moved to another SAP system) move
// only jobs that have not been sent yet.
func TestJobKeepsTheDestinationOfItsFirstCall(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	usSim, us := r.system()
	ctx := context.Background()
	job := r.submit(taskstest.SupplierInvoice("INV-STICKY"))
	claimed, err := r.ledger.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	deRef := tasks.IdentityOf(&job, "s4-de").Reference()
	if _, err := r.ledger.BeginSend(ctx, claimed.Job, "s4-de", deRef); err != nil { // a call to s4-de went out; its answer was lost
		t.Fatal(err)
	}
	opts := r.options()
	opts.SAP = r.destinations(tasks.Routes{Destinations: []string{"s4-de", "s4-us"}, Default: "s4-us"}, us)
	r.startWorker(opts)
	start := time.Now()
	done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
	if done.Destination != "s4-de" || r.sim.CountByReference(deRef) != 1 {
		t.Fatalf("%s to %s, %d documents in s4-de; want it posted there", describeJob(done), done.Destination, r.sim.CountByReference(deRef))
	}
	if n := usSim.Stats().Attempts[sim.KindSupplierInvoice]; n != 0 {
		t.Fatalf("%d posts to s4-us, where the job was never sent", n)
	}
	t.Logf("reconciled and posted after %s (settle time %s)", time.Since(start).Round(time.Millisecond), rigSettle)
}
