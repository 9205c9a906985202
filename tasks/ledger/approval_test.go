package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

func awaitingApproval(t *testing.T, l *ledger.Ledger, key string) tasks.Job {
	t.Helper()
	job, replayed, err := l.SubmitForApproval(context.Background(), "alice", taskstest.SupplierInvoice(key),
		ledger.ApprovalRequest{Reason: "amount above the approval threshold (rule approval_threshold)", TTL: time.Hour})
	if err != nil || replayed {
		t.Fatalf("SubmitForApproval = %v, replayed %v", err, replayed)
	}
	return job
}

func TestApprovalHoldsThePostingUntilAnotherOperatorApprovesIt(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-1")
	if job.Status != tasks.StatusAwaitingApproval || job.Approval == nil || job.Approval.PayloadHash != job.Fingerprint ||
		job.Approval.ExpiresAt.Sub(job.Approval.RequestedAt) != time.Hour {
		t.Fatalf("recorded job = %+v approval %+v", job, job.Approval)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("a posting awaiting approval is in the queue: %v", err)
	}
	// Nothing runs it, nor reports it stranded, while it waits.
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrUnapproved) {
		t.Fatalf("claim of a job awaiting approval = %v", err)
	}
	if got, _ := l.Get(ctx, "alice", job.ID); got.Status != tasks.StatusAwaitingApproval {
		t.Fatalf("status while waiting = %s", got.Status)
	}
	st, err := ledger.NewSweeper(l, time.Second, time.Nanosecond).Sweep(ctx)
	if err != nil || st.Enqueued != 0 || st.Expired != 0 {
		t.Fatalf("sweep while waiting = %+v, %v", st, err)
	}
	waiting, total, err := l.Approvals(ctx, 10)
	if err != nil || total != 1 || len(waiting) != 1 || waiting[0].ID != job.ID {
		t.Fatalf("Approvals = %v (total %d), %v", waiting, total, err)
	}

	if _, err := l.Approve(ctx, job.ID, "alice", job.Fingerprint, ""); !errors.Is(err, ledger.ErrOwnPosting) {
		t.Fatalf("self-approval = %v", err)
	}
	if _, err := l.Approve(ctx, job.ID, "olga", "AAAA", ""); !errors.Is(err, ledger.ErrPayloadMismatch) {
		t.Fatalf("approval quoting another payload's hash = %v", err)
	}
	approved, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, "checked against the PO")
	if err != nil || approved.Status != tasks.StatusQueued || approved.Approval.Decision != tasks.DecisionApproved ||
		approved.Approval.DecidedBy != "olga" || approved.Approval.Comment != "checked against the PO" || approved.Caller != "alice" {
		t.Fatalf("Approve = %+v %+v, %v", approved, approved.Approval, err)
	}
	if err := approved.CheckApproval(); err != nil {
		t.Fatalf("the approved job may not be sent: %v", err)
	}
	if info, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID)); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("approved job's task: %+v, %v", info, err)
	}
	if _, err := l.Claim(ctx, job.ID, 0); err != nil {
		t.Fatalf("claim of the approved job = %v", err)
	}
	// The same approval again answers with the job; a rejection now is refused.
	if again, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, "checked against the PO"); err != nil || again.Approval.Decision != tasks.DecisionApproved {
		t.Fatalf("approving again = %+v, %v", again, err)
	}
	if _, err := l.Reject(ctx, job.ID, "otto", "too late"); !errors.Is(err, ledger.ErrNotAwaitingApproval) || !strings.Contains(err.Error(), "approved by olga") {
		t.Fatalf("rejecting an approved job = %v", err)
	}
	if _, total, _ := l.Approvals(ctx, 10); total != 0 {
		t.Fatalf("approvals waiting after the decision = %d", total)
	}
}

func TestRejectionEndsThePostingUnsent(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-2")
	if _, err := l.Reject(ctx, job.ID, "alice", "mine"); !errors.Is(err, ledger.ErrOwnPosting) {
		t.Fatalf("self-rejection = %v", err)
	}
	rejected, err := l.Reject(ctx, job.ID, "olga", "supplier is blocked")
	if err != nil || rejected.Status != tasks.StatusRejected || rejected.Approval.Decision != tasks.DecisionRejected || rejected.Approval.Comment != "supplier is blocked" {
		t.Fatalf("Reject = %+v, %v", rejected, err)
	}
	if _, err := l.Approve(ctx, job.ID, "otto", job.Fingerprint, ""); !errors.Is(err, ledger.ErrNotAwaitingApproval) {
		t.Fatalf("approving a rejected job = %v", err)
	}
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrUnapproved) {
		t.Fatalf("claim of a rejected job = %v", err)
	}
	if _, err := l.Reprocess(ctx, job.ID); !errors.Is(err, ledger.ErrNotFailed) {
		t.Fatalf("reprocess of a rejected job = %v", err)
	}
	// Its key replays the rejected job: a corrected document needs a new key.
	again, replayed, err := l.SubmitForApproval(ctx, "alice", taskstest.SupplierInvoice("appr-2"), ledger.ApprovalRequest{Reason: "x"})
	if err != nil || !replayed || again.ID != job.ID || again.Status != tasks.StatusRejected {
		t.Fatalf("resubmission of a rejected key = %+v replayed=%v %v", again, replayed, err)
	}
}

func TestSubmitterMayCancelWhileItWaits(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-3")
	got, err := l.Cancel(ctx, "alice", job.ID, simSAP(t))
	if err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("Cancel = %+v, %v", got, err)
	}
	if _, total, _ := l.Approvals(ctx, 10); total != 0 {
		t.Fatalf("a cancelled posting is still waiting for approval (%d)", total)
	}
	if _, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); !errors.Is(err, ledger.ErrNotAwaitingApproval) {
		t.Fatalf("approving a cancelled job = %v", err)
	}
}

func TestUnapprovedPostingsExpire(t *testing.T) {
	rdb, _ := redisSrv.NewDB(t)
	now := time.Now()
	clock := func() time.Time { return now }
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle, Now: func() time.Time { return clock() }})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-4")
	sweeper := ledger.NewSweeper(l, time.Second, time.Minute)
	if st, err := sweeper.Sweep(ctx); err != nil || st.Expired != 0 {
		t.Fatalf("sweep before the expiry = %+v, %v", st, err)
	}
	clock = func() time.Time { return now.Add(time.Hour + time.Second) }
	if _, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); !errors.Is(err, ledger.ErrApprovalExpired) {
		t.Fatalf("approval after the expiry = %v", err)
	}
	st, err := sweeper.Sweep(ctx)
	if err != nil || st.Expired != 1 {
		t.Fatalf("sweep after the expiry = %+v, %v", st, err)
	}
	got, _ := l.Get(ctx, "alice", job.ID)
	if got.Status != tasks.StatusRejected || got.Approval.Decision != tasks.DecisionExpired || got.Approval.DecidedBy != "" {
		t.Fatalf("expired posting = %+v %+v", got, got.Approval)
	}
}

// A payload changed in Redis after the approval does not ride on it: the
// worker's check recomputes the fingerprint.
func TestApprovalIsBoundToThePayload(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-5")
	tampered := strings.Replace(string(job.Payload), `"amount":"`, `"amount":"9`, 1)
	if tampered == string(job.Payload) {
		t.Fatal("the test payload has no amount to change")
	}
	// Changed between the operator's reading and the approval.
	rdb.HSet(ctx, ledger.JobKey(job.ID), "payload", tampered)
	if _, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); !errors.Is(err, ledger.ErrPayloadMismatch) {
		t.Fatalf("approval of a changed payload = %v", err)
	}
	rdb.HSet(ctx, ledger.JobKey(job.ID), "payload", string(job.Payload))
	if _, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); err != nil {
		t.Fatal(err)
	}
	// Changed after the approval.
	rdb.HSet(ctx, ledger.JobKey(job.ID), "payload", tampered)
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := claimed.Job.CheckApproval(); err == nil || !strings.Contains(err.Error(), "not the one olga approved") {
		t.Fatalf("CheckApproval of a payload changed after the approval = %v", err)
	}
}

// A posting written before a Redis loss may have been approved and posted
// since: it is not rejected, by an operator or by its expiry.
func TestNoRejectionOfAPostingWrittenBeforeALoss(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job := awaitingApproval(t, l, "appr-6")
	rdb.HSet(ctx, ledger.MetaKey(job.ID), "run_id", "0000000000000000000000000000000000000000")
	if _, err := l.Reject(ctx, job.ID, "olga", "no"); !errors.Is(err, ledger.ErrMayBePosted) {
		t.Fatalf("rejection of a suspect posting = %v", err)
	}
	if got, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); err != nil || got.Status != tasks.StatusQueued {
		t.Fatalf("approval of a suspect posting = %+v, %v", got, err)
	}
}

func TestDecisionsAnswerASecondRunAsTheFirst(t *testing.T) {
	_, db := redisSrv.NewDB(t)
	proxy := redistest.StartLossyProxy(t, redisSrv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DB: db})
	t.Cleanup(func() { rdb.Close() })
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	ctx := context.Background()
	proxy.LoseReply(redistest.ScriptOn(ledger.IdemKey("alice", "appr-lost")))
	job := awaitingApproval(t, l, "appr-lost")
	proxy.LoseReply(redistest.ScriptOn(ledger.JobKey(job.ID)))
	if got, err := l.Approve(ctx, job.ID, "olga", job.Fingerprint, ""); err != nil || got.Status != tasks.StatusQueued {
		t.Fatalf("approval after a lost reply = %+v, %v", got, err)
	}
	other := awaitingApproval(t, l, "appr-lost-2")
	proxy.LoseReply(redistest.ScriptOn(ledger.JobKey(other.ID)))
	if got, err := l.Reject(ctx, other.ID, "olga", "no"); err != nil || got.Status != tasks.StatusRejected {
		t.Fatalf("rejection after a lost reply = %+v, %v", got, err)
	}
	if proxy.Lost() != 3 {
		t.Fatalf("the proxy lost %d replies, want 3", proxy.Lost())
	}
}
