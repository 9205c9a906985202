package worker_test

import (
	"fmt"
	"testing"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// Postings run end to end on a Redis Cluster of three masters: the ledger
// and asynq's cluster client share it, and lost answers are settled by
// look-up as on a single Redis.
func TestPostingsOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.SharedCluster(t, redistest.ClusterOptions{})
	r := newRigOn(t, cluster.Client(), 0, sim.Faults{AmbiguousRate: 0.3, LockRate: 0.1})
	r.startWorker(r.options())
	var jobs []tasks.Job
	for i := range 20 {
		var p tasks.Posting = taskstest.SupplierInvoice(fmt.Sprintf("INV-CLUSTER-%d", i))
		if i%2 == 1 {
			p = taskstest.JournalEntry(fmt.Sprintf("je-cluster-%d", i))
		}
		jobs = append(jobs, r.submit(p))
	}
	for _, job := range jobs {
		done := r.awaitStatus(job.ID, tasks.StatusSucceeded, settle)
		if n := r.documents(ref(job)); n != 1 || done.Result.Document == "" {
			t.Fatalf("%s: %s, %d documents in SAP; want exactly 1", job.IdempotencyKey, describeJob(done), n)
		}
	}
	if st := r.sim.Stats(); st.Faults[sim.FaultAmbiguous] == 0 {
		t.Fatalf("no answer was lost (%+v): the test did not play what it claims", st.Faults)
	}
}
