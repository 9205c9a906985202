package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// gauge returns the value of the one series of name whose labels include
// want, and whether there is one.
func series(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// The worker's metrics say how postings ended, by SAP code, and what the
// queue and the approval queue hold.
func TestMetricsSayHowPostingsEnded(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Faults{})
	opts := r.options()
	reg := prometheus.NewRegistry()
	opts.Metrics = reg
	r.startWorker(opts)

	ok := r.submit(taskstest.JournalEntry("metrics-ok"))
	closed := taskstest.JournalEntry("metrics-closed")
	closed.PostingDate = time.Now().UTC().AddDate(0, -3, 0).Format("2006-01-02")
	bad := r.submit(closed)
	r.awaitStatus(ok.ID, tasks.StatusSucceeded, settle)
	r.awaitStatus(bad.ID, tasks.StatusFailed, settle)
	if _, _, err := r.ledger.SubmitForApproval(context.Background(), "alice", taskstest.JournalEntry("metrics-approval"), ledger.ApprovalRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sapq_postings_finished_total", map[string]string{"kind": "journal_entry", "status": "succeeded", "code": ""}, 1},
		{"sapq_postings_finished_total", map[string]string{"kind": "journal_entry", "status": "failed", "code": "F5/201"}, 1},
		{"sapq_reconciliations_total", map[string]string{"kind": "journal_entry", "result": "not_found"}, 2},
		{"sapq_approvals_waiting", nil, 1},
		{"sapq_queue_size", map[string]string{"queue": r.ledger.Queue(), "state": "pending"}, 0},
		{"sapq_queue_scrape_ok", nil, 1},
	} {
		got, found := series(t, reg, c.name, c.labels)
		if !found || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, found, c.want)
		}
	}
	if _, found := series(t, reg, "sapq_queue_oldest_pending_seconds", map[string]string{"queue": r.ledger.Queue()}); !found {
		t.Error("no sapq_queue_oldest_pending_seconds")
	}
}
