package ledger_test

import (
	"context"
	"errors"
	"fmt"
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

// go-redis sends a script again after a read timeout or a dropped
// connection, so a script can run twice for one call. Each state change must
// answer its second run as it answered its first: a first submission is not
// "replayed", the cancelling call is not told "already cancelled", a
// reprocess is not "not failed", a begun send is not "concurrent".
func TestScriptsAnswerASecondRunAsTheFirst(t *testing.T) {
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
	lost := 0
	loseReplyOfScriptOn := func(key string) {
		proxy.LoseReply(redistest.ScriptOn(key))
		lost++
	}

	loseReplyOfScriptOn(ledger.IdemKey("alice", "lost-reply"))
	job, replayed, err := l.Submit(ctx, "alice", taskstest.JournalEntry("lost-reply"))
	if err != nil || replayed {
		t.Fatalf("first submission after a lost reply: replayed=%v err=%v", replayed, err)
	}
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	loseReplyOfScriptOn(ledger.JobKey(job.ID))
	sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
	if err != nil || sending.Attempts != 1 {
		t.Fatalf("begin send after a lost reply: %+v, %v", sending, err)
	}
	if err := l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending,
		tasks.JobError{Code: "F5/201", Message: "Posting period 011 2026 is not open", Category: tasks.CategoryPermanent}); err != nil {
		t.Fatal(err)
	}
	if err := l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID)); err != nil {
		t.Fatal(err)
	}
	loseReplyOfScriptOn(ledger.JobKey(job.ID))
	re, err := l.Reprocess(ctx, job.ID)
	if err != nil || re.Status != tasks.StatusQueued || re.Run != 1 {
		t.Fatalf("reprocess after a lost reply: %+v, %v", re, err)
	}

	other, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("lost-cancel"))
	loseReplyOfScriptOn(ledger.JobKey(other.ID))
	if got, err := l.Cancel(ctx, "alice", other.ID, simSAP(t)); err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel after a lost reply: %+v, %v", got, err)
	}
	if proxy.Lost() != lost {
		t.Fatalf("the proxy lost %d replies, want %d: the test did not play what it claims", proxy.Lost(), lost)
	}
}

// A failed job is final for deliveries: a later delivery of its task (asynq's
// recoverer after a lost lease, "Run" on the archived task in the Asynq UI)
// does nothing. Only a reprocess reopens it, in a new run, and a delivery of
// the old run's task is stale after that too.
func TestFailedIsFinalForDeliveries(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.SupplierInvoice("final"))
	sending := sendOnce(t, l, job.ID)
	if err := l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending,
		tasks.JobError{Code: "F5/507", Message: "G/L account 99999999 is not defined", Category: tasks.CategoryPermanent}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrFailed) {
		t.Fatalf("delivery of a failed job: %v, want ErrFailed", err)
	}
	if _, err := l.BeginSend(ctx, sending, tasks.DefaultDestination, sending.Reference); !errors.Is(err, ledger.ErrFailed) {
		t.Fatalf("begin send of a failed job: %v, want ErrFailed", err)
	}
	l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID))
	if _, err := l.Reprocess(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrStaleRun) {
		t.Fatalf("delivery of the old run's task: %v, want ErrStaleRun", err)
	}
	info, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(job.ID))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ledger.ParseTaskPayload(info.Payload)
	if p.Run != 1 || info.State != asynq.TaskStatePending {
		t.Fatalf("reprocessed task: run %d, state %v", p.Run, info.State)
	}
	claimed, err := l.Claim(ctx, job.ID, p.Run)
	if err != nil || claimed.Run != 1 {
		t.Fatalf("delivery of the new run's task: %+v, %v", claimed, err)
	}
}

// The generation of the message UUID advances after a definite refusal (SAP
// replays a refusal for a repeated UUID) and stays after an unknown outcome
// (SAP must recognise the repeat).
func TestGenerationAdvancesOnlyAfterADefiniteRefusal(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("gen"))
	send := func(want int) tasks.Job {
		t.Helper()
		claimed, err := l.Claim(ctx, job.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		j, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
		if err != nil || j.Generation != want {
			t.Fatalf("send %d: generation %d (%v), want %d", j.Attempts, j.Generation, err, want)
		}
		return j
	}
	j := send(0)
	l.RecordFailure(ctx, j, tasks.StatusRetrying, tasks.PhaseSending, tasks.JobError{Message: "504", Category: tasks.CategoryUnknown})
	j = send(0)
	l.RecordFailure(ctx, j, tasks.StatusRetrying, tasks.PhasePending, tasks.JobError{Code: "MC/601", Category: tasks.CategoryTransient})
	send(1)
}

// Indexes do not grow without bound: once a job's retention has ended, the
// sweeper removes it from every index.
func TestSweeperTrimsIndexesOfExpiredJobs(t *testing.T) {
	rdb, _ := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: testSettle, Retention: time.Millisecond, FailedRetention: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	ctx := context.Background()
	var ended []string
	for i, key := range []string{"trim-1", "trim-2", "trim-3"} {
		job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry(key))
		job = sendOnce(t, l, job.ID)
		switch i {
		case 0:
			l.RecordPosted(ctx, job, tasks.Result{Document: "100000001"})
		case 1:
			l.RecordFailure(ctx, job, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201", Category: tasks.CategoryPermanent})
		}
		if i < 2 {
			ended = append(ended, job.ID)
		}
	}
	// Wait until Redis has let the ended jobs expire.
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(ctx, ledger.JobKey(ended[0]), ledger.JobKey(ended[1])).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("ended jobs did not expire")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, err := ledger.NewSweeper(l, time.Second, time.Minute).Sweep(ctx)
	if err != nil || st.Trimmed != 2 {
		t.Fatalf("Sweep = %+v, %v; want 2 trimmed", st, err)
	}
	var entries int64
	for _, key := range indexKeys(t, rdb) {
		entries += rdb.ZCard(ctx, key).Val()
	}
	// The live job stays in the shard index and the caller index.
	if entries != 2 {
		t.Fatalf("index entries after the trim = %d, want 2 (the live job in two indexes)", entries)
	}
}

func indexKeys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	var keys []string
	for _, pattern := range []string{"sapq:{sq*}:jobs", "sapq:{sq*}:caller:*", "sapq:{sq*}:expiry"} {
		k, err := rdb.Keys(context.Background(), pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k...)
	}
	return keys
}

// What a job stores of SAP's answers is bounded: a runaway answer cannot
// fill Redis, and what was cut says so.
func TestStoredMessagesAreCapped(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("chatty"))
	job = sendOnce(t, l, job.ID)
	var msgs []tasks.Message
	for range 500 {
		msgs = append(msgs, tasks.Message{Code: "RW/609", Text: strings.Repeat("é", 5000), Severity: "warning"})
	}
	if err := l.RecordPosted(ctx, job, tasks.Result{Document: "100000001", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Get(ctx, "alice", job.ID)
	if n := len(got.Result.Messages); n != 20 {
		t.Fatalf("%d messages stored, want 20", n)
	}
	for _, m := range got.Result.Messages[:19] {
		if len(m.Text) > 1024 || !strings.HasSuffix(m.Text, "[cut]") {
			t.Fatalf("a message of %d bytes was stored: %q…", len(m.Text), m.Text[:20])
		}
	}
	if last := got.Result.Messages[19].Text; !strings.Contains(last, "481 more messages") {
		t.Fatalf("the cut is not marked: %q", last)
	}
}

// A Redis that lost writes is noticed by the scripts that gate a call: a
// restarted server (crash, failover, a restore from an older copy) or an
// emptied database. For Settle after that, nothing may be sent.
func TestLossWindowAfterRedisChanged(t *testing.T) {
	srv := redistest.StartPersistent(t, redistest.PersistentOptions{AppendFsync: "always"})
	rdb := srv.Client()
	l, err := ledger.New(ledger.Options{Redis: rdb, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ledger.TrustRedis(t, l)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("before-the-crash"))
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil || claimed.LossWait != 0 {
		t.Fatalf("claim on a trusted Redis: %+v, %v", claimed, err)
	}

	srv.Kill()
	srv.Start()
	claimed, err = l.Claim(ctx, job.ID, 0)
	if err != nil || claimed.LossWait <= 0 || claimed.LossWait > time.Second {
		t.Fatalf("claim after a restart: loss wait %v (%v), want up to the settle time", claimed.LossWait, err)
	}
	var window *ledger.LossWindowError
	if _, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.As(err, &window) {
		t.Fatalf("begin send in the loss window: %v, want a LossWindowError", err)
	}
	time.Sleep(window.Wait) // the window is what the test is about
	sending, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
	if err != nil || sending.Attempts != 1 {
		t.Fatalf("begin send after the window: %+v, %v", sending, err)
	}

	// An emptied database is a loss as well.
	rdb.FlushDB(ctx)
	again, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("before-the-crash"))
	if claimed, err := l.Claim(ctx, again.ID, 0); err != nil || claimed.LossWait <= 0 {
		t.Fatalf("claim after the database was emptied: loss wait %v (%v)", claimed.LossWait, err)
	}
}

// Redis may keep a job and lose its task (a Redis Cluster node that rolled
// back, a restore of part of the data). After a loss the sweeper puts every
// live job whose task is gone back into the queue, once.
func TestSweeperRequeuesLiveJobsAfterALoss(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	live, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("live-job"))
	done, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("done-job"))
	doneSending := sendOnce(t, l, done.ID)
	l.RecordPosted(ctx, doneSending, tasks.Result{Document: "100000001"})
	for _, id := range []string{live.ID, done.ID} {
		l.Inspector().DeleteTask(l.Queue(), ledger.TaskID(id))
	}
	sw := ledger.NewSweeper(l, time.Second, time.Minute)
	if st, err := sw.Sweep(ctx); err != nil || st.Repaired != 0 {
		t.Fatalf("sweep without a loss = %+v, %v; want nothing repaired", st, err)
	}
	// The Redis serving the live job's shard is not the one that wrote it.
	rdb.HSet(ctx, ledger.MetaKey(live.ID), "run_id", "0000000000000000000000000000000000000000")
	st, err := sw.Sweep(ctx)
	if err != nil || st.Repaired != 1 {
		t.Fatalf("sweep after a loss = %+v, %v; want the live job re-enqueued", st, err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(live.ID)); err != nil {
		t.Fatalf("live job not re-enqueued: %v", err)
	}
	if _, err := l.Inspector().GetTaskInfo(l.Queue(), ledger.TaskID(done.ID)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("a finished job was re-enqueued: %v", err)
	}
	if st, _ := sw.Sweep(ctx); st.Repaired != 0 {
		t.Fatalf("the same loss was repaired twice: %+v", st)
	}
}

// Two deliveries claim one job; the agent cancels it between their records
// (the task was active, so the queue kept it). The later failure record
// must not bring the job back to life, nor may a send follow.
func TestAFailureRecordDoesNotReviveACancelledJob(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("revive"))
	d1, err := l.Claim(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := l.Claim(ctx, job.ID, 0)
	// Both deliveries' look-ups fail: each records a retry, nothing sent.
	unreadable := tasks.JobError{Message: "SAP could not be read", Category: tasks.CategoryTransient}
	if err := l.RecordFailure(ctx, d2.Job, tasks.StatusRetrying, tasks.PhasePending, unreadable); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); err != nil || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if err := l.RecordFailure(ctx, d1.Job, tasks.StatusRetrying, tasks.PhasePending, unreadable); !errors.Is(err, ledger.ErrCancelled) {
		t.Fatalf("failure record over a cancelled job: %v, want ErrCancelled", err)
	}
	if got, _ := l.Get(ctx, "alice", job.ID); got.Status != tasks.StatusCancelled {
		t.Fatalf("job is %s after the late record, want cancelled", got.Status)
	}
	if _, err := l.BeginSend(ctx, d1.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.Is(err, ledger.ErrCancelled) {
		t.Fatalf("begin send of the cancelled job: %v, want ErrCancelled", err)
	}
}

// A delivery of an earlier run (a reprocess happened since it claimed) may
// not record over the new run, and its claim does not clear the new run's
// unenqueued mark.
func TestAStaleRunRecordsNothing(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("zombie"))
	old := sendOnce(t, l, job.ID)
	l.RecordFailure(ctx, old, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201", Category: tasks.CategoryPermanent})
	l.Inspector().ArchiveTask(l.Queue(), ledger.TaskID(job.ID))
	re, err := l.Reprocess(ctx, job.ID)
	if err != nil || re.Error != nil {
		t.Fatalf("reprocess: %+v %v; want a fresh run without the old error", re, err)
	}
	// The old run's delivery claims, stale, while the new run's task is not
	// yet confirmed enqueued.
	rdb.ZAdd(ctx, ledger.UnenqueuedKey(job.ID), redis.Z{Score: float64(time.Now().UnixMilli()), Member: job.ID})
	if _, err := l.Claim(ctx, job.ID, 0); !errors.Is(err, ledger.ErrStaleRun) {
		t.Fatalf("old run's claim: %v", err)
	}
	if rdb.ZScore(ctx, ledger.UnenqueuedKey(job.ID), job.ID).Err() != nil {
		t.Fatal("a stale claim cleared the new run's unenqueued mark")
	}
	stale := old
	stale.SendToken = ""
	if err := l.RecordFailure(ctx, stale, tasks.StatusFailed, tasks.PhasePending, tasks.JobError{Code: "F5/201"}); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("the old run's record: %v, want ErrStale", err)
	}
	if got, _ := l.Get(ctx, "alice", job.ID); got.Status != tasks.StatusQueued {
		t.Fatalf("the new run is %s, want queued", got.Status)
	}
}

// After a Redis loss the ledger's "pending" may be older than what SAP
// holds: such a job cannot be cancelled until a worker has looked it up.
func TestNoCancelOfAStateWrittenBeforeALoss(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("suspect"))
	rdb.HSet(ctx, ledger.MetaKey(job.ID), "run_id", "0000000000000000000000000000000000000000") // another Redis answers now
	if _, err := l.Cancel(ctx, "alice", job.ID, simSAP(t)); !errors.Is(err, ledger.ErrNotCancellable) || !strings.Contains(err.Error(), "Redis lost writes") {
		t.Fatalf("cancel of a job written before the loss: %v", err)
	}
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil || !claimed.Suspect {
		t.Fatalf("claim: suspect=%v %v", claimed.Suspect, err)
	}
	// A worker's record after the loss is the new truth; the job, never
	// sent, is cancelled once the window has passed and SAP holds nothing
	// under its reference (FIX 5).
	if err := l.RecordFailure(ctx, claimed.Job, tasks.StatusRetrying, tasks.PhasePending, tasks.JobError{Code: "MC/601", Category: tasks.CategoryTransient}); err != nil {
		t.Fatal(err)
	}
	dest := simSAP(t)
	for deadline := time.Now().Add(10 * testSettle); ; {
		got, err := l.Cancel(ctx, "alice", job.ID, dest)
		if err == nil && got.Status == tasks.StatusCancelled {
			break
		}
		if !strings.Contains(fmt.Sprint(err), "Redis lost writes recently") || time.Now().After(deadline) {
			t.Fatalf("cancel after a record that followed the loss: %+v %v", got, err)
		}
		time.Sleep(testSettle / 10) // the loss window runs on Redis's clock
	}
}

// A rollback that keeps the server's run_id (a reload of an older file into
// the running server, a restore of old keys) shows as a write sequence that
// goes back: the process that saw it notices, and opens the loss window.
func TestRollbackWithinOneServerIsNoticed(t *testing.T) {
	l, rdb := newLedger(t)
	ctx := context.Background()
	job, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("seq"))
	for range 3 {
		if c, err := l.Claim(ctx, job.ID, 0); err != nil || c.LossWait != 0 {
			t.Fatalf("claim: %+v %v", c.LossWait, err)
		}
	}
	rdb.HSet(ctx, ledger.MetaKey(job.ID), "seq", 1)
	claimed, err := l.Claim(ctx, job.ID, 0)
	if err != nil || claimed.LossWait <= 0 || !claimed.Suspect {
		t.Fatalf("claim after the sequence went back: wait %v suspect %v (%v)", claimed.LossWait, claimed.Suspect, err)
	}
	var window *ledger.LossWindowError
	if _, err := l.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1"); !errors.As(err, &window) {
		t.Fatalf("begin send: %v, want the loss window recorded for every process", err)
	}
}
