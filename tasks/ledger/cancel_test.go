package ledger_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// simSAP is SAP for these tests: the simulator, as the one destination.
func simSAP(t *testing.T) *sap.Destinations {
	t.Helper()
	const user, password = "SAPQ_COMM", "test-secret-Pa55"
	hs := httptest.NewServer(sim.New(sim.Options{User: user, Password: password, Seed: 1}))
	t.Cleanup(hs.Close)
	client, err := sap.New(sap.Config{BaseURL: hs.URL, User: user, Password: password, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lookupDoing is a SAP look-up that does something else while SAP is asked.
type lookupDoing struct {
	sap    ledger.SAPLookup
	during func()
}

func (l lookupDoing) HoldsDocument(ctx context.Context, job tasks.Job) (bool, error) {
	l.during()
	return l.sap.HoldsDocument(ctx, job)
}

// FIX 4, 5 (worker/model): a job never sent is unverified. The ledger may
// have forgotten a job of the same key that posted (here: it expired after
// its retention, and the agent submitted the key again), so SAP may hold a
// document under the new job's reference. Cancel looks SAP up first.
func TestCancelOfAJobNeverSentLooksSAPUp(t *testing.T) {
	l, rdb := newLedger(t)
	dest := simSAP(t)
	ctx := context.Background()

	// The first job of the key posts, is recorded, and expires.
	p := taskstest.JournalEntry("forgotten-1")
	first, _, _ := l.Submit(ctx, "alice", p)
	ref := tasks.IdentityOf(&first, tasks.DefaultDestination).Reference()
	claimed, err := l.Claim(ctx, first.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, ref)
	if err != nil {
		t.Fatal(err)
	}
	req, err := sap.NewRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dest.Post(ctx, tasks.DefaultDestination, req, sap.Send{Reference: ref, MessageUUID: tasks.IdentityOf(&sending, tasks.DefaultDestination).MessageUUID(sending.Generation)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RecordPosted(ctx, sending, tasks.Result{Document: doc.Number, FiscalYear: doc.FiscalYear, CompanyCode: doc.CompanyCode}); err != nil {
		t.Fatal(err)
	}
	// Its retention ends: Redis drops the job and the key.
	if err := rdb.Del(ctx, ledger.JobKey(first.ID), ledger.IdemKey("alice", p.IdempotencyKey())).Err(); err != nil {
		t.Fatal(err)
	}
	again, replayed, err := l.Submit(ctx, "alice", p)
	if err != nil || replayed {
		t.Fatalf("resubmission after expiry: replayed %v, %v", replayed, err)
	}
	if again.ID == first.ID || again.Attempts != 0 {
		t.Fatalf("resubmission after expiry: %+v", again)
	}

	// Without a way to look SAP up, a job never sent is not cancelled.
	if _, err := l.Cancel(ctx, "alice", again.ID, nil); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "cannot check SAP") {
		t.Fatalf("cancel without SAP: %v", err)
	}
	// SAP holds the forgotten job's document under the reference.
	if _, err := l.Cancel(ctx, "alice", again.ID, dest); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "SAP holds a document") {
		t.Fatalf("cancel of a job whose reference SAP holds: %v", err)
	}
	if got, _ := l.Get(ctx, "alice", again.ID); got.Status != tasks.StatusQueued {
		t.Fatalf("after the refused cancel the job is %s", got.Status)
	}

	// A key SAP holds nothing for is cancelled after the look-up.
	fresh, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("fresh-1"))
	got, err := l.Cancel(ctx, "alice", fresh.ID, dest)
	if err != nil || got.Status != tasks.StatusCancelled || got.Phase != tasks.PhasePending {
		t.Fatalf("cancel of a job SAP holds nothing for: %+v %v", got, err)
	}
	if again, err := l.Cancel(ctx, "alice", fresh.ID, nil); err != nil || again.Status != tasks.StatusCancelled {
		t.Fatalf("cancelling a cancelled job again: %v", err)
	}
}

// FIX 5: the cancel script refuses when the job or Redis changed while SAP
// was being asked: an attempt began, or Redis lost writes.
func TestCancelRefusesWhatChangedDuringTheLookUp(t *testing.T) {
	l, rdb := newLedger(t)
	dest := simSAP(t)
	ctx := context.Background()

	sent, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("during-1"))
	began := lookupDoing{sap: dest, during: func() { sendOnce(t, l, sent.ID) }}
	if _, err := l.Cancel(ctx, "alice", sent.ID, began); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "possibly already posted") {
		t.Fatalf("cancel while an attempt began: %v", err)
	}

	lost, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("during-2"))
	loss := lookupDoing{sap: dest, during: func() {
		rdb.HSet(ctx, ledger.MetaKey(lost.ID), "run_id", "0000000000000000000000000000000000000000")
	}}
	if _, err := l.Cancel(ctx, "alice", lost.ID, loss); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "changed while SAP was checked") {
		t.Fatalf("cancel while Redis lost writes: %v", err)
	}
	// Now inside the loss window: not even looked up.
	asked := false
	count := lookupDoing{sap: dest, during: func() { asked = true }}
	if _, err := l.Cancel(ctx, "alice", lost.ID, count); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "Redis lost writes recently") || asked {
		t.Fatalf("cancel inside the loss window: %v (SAP asked: %v)", err, asked)
	}
	if got, _ := l.Get(ctx, "alice", lost.ID); got.Status != tasks.StatusQueued {
		t.Fatalf("after refused cancels the job is %s", got.Status)
	}
}
