package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/sapq/sapq/tasks/ledger/ledgertest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// jobsRig is a ledger on the test's Redis and `sapq jobs` against it.
type jobsRig struct {
	t      *testing.T
	url    string
	ledger *ledger.Ledger
}

func newJobsRig(t *testing.T) *jobsRig {
	rdb, db := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrustRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &jobsRig{t: t, url: fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db), ledger: l}
}

// run runs `sapq jobs args... --redis-url URL` and returns its stdout and
// stderr.
func (r *jobsRig) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = runJobsWith(ctx, append(args, "--redis-url", r.url), &out, &errOut, false)
	return out.String(), errOut.String(), err
}

func (r *jobsRig) ok(args ...string) string {
	r.t.Helper()
	out, errOut, err := r.run(context.Background(), args...)
	if err != nil {
		r.t.Fatalf("sapq jobs %v: %v\n%s%s", args, err, out, errOut)
	}
	return out
}

func TestJobsListAndReprocess(t *testing.T) {
	r := newJobsRig(t)
	ctx := context.Background()
	l := r.ledger
	closed, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("je-closed"))
	other, _, _ := l.Submit(ctx, "alice", taskstest.JournalEntry("je-other"))
	l.Submit(ctx, "bob", taskstest.SupplierInvoice("INV-QUEUED"))
	ledgertest.Refuse(t, l, closed.ID, "F5/201", "Posting period 011 2026 is not open")
	ledgertest.Refuse(t, l, other.ID, "F5/507", "Account 61003000 is not defined")

	list, errOut, err := r.run(ctx, "list", "--status", "failed")
	if err != nil || !strings.Contains(list, closed.ID) || !strings.Contains(list, "F5/201") || !strings.Contains(list, other.ID) || strings.Contains(list, "INV-QUEUED") {
		t.Fatalf("list --status failed: %v\n%s", err, list)
	}
	// Every run says which Redis it reads.
	if !strings.Contains(errOut, "sapq jobs: Redis "+r.url) || !strings.Contains(errOut, "2 of 2 matching") {
		t.Fatalf("list's stderr:\n%s", errOut)
	}
	if list := r.ok("list", "--caller", "bob", "--kind", "supplier_invoice", "--company-code", "1010"); strings.Contains(list, closed.ID) || !strings.Contains(list, "supplier_invoice") {
		t.Fatalf("list --caller bob:\n%s", list)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if _, errOut, _ := r.run(ctx, "list", "--submitted-after", future); !strings.Contains(errOut, "--submitted-after "+future+" matches none of the 3 postings") {
		t.Fatalf("an empty list does not say why:\n%s", errOut)
	}
	groups := r.ok("failures")
	if !strings.Contains(groups, "F5/201") || !strings.Contains(groups, "Posting period 011 2026 is not open") || !strings.Contains(groups, closed.ID) {
		t.Fatalf("failures:\n%s", groups)
	}

	dry := r.ok("reprocess", "--sap-code", "F5/201", "--dry-run")
	if !strings.Contains(dry, "would reprocess 1 failed posting(s)") || !strings.Contains(dry, closed.ID) || strings.Contains(dry, other.ID) {
		t.Fatalf("dry run:\n%s", dry)
	}
	if j, _ := l.Get(ctx, "", closed.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("dry run changed the job to %s", j.Status)
	}
	if out := r.ok("reprocess", "--sap-code", "F5/201"); !strings.Contains(out, "reprocessed 1 of 1") {
		t.Fatalf("reprocess:\n%s", out)
	}
	if j, _ := l.Get(ctx, "", closed.ID); j.Status != tasks.StatusQueued || j.Run != 1 {
		t.Fatalf("reprocessed job is %s run %d, want queued run 1", j.Status, j.Run)
	}
	if j, _ := l.Get(ctx, "", other.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("job with another code is %s, want still failed", j.Status)
	}
	// A selection of nothing says why.
	for args, want := range map[string]string{
		"reprocess --sap-code F5/201":              "--sap-code F5/201 matches none of the 1 failed postings",
		"reprocess --sap-code F5/507 --caller bob": "--caller bob matches none of the 1 failed postings",
		"reprocess --dry-run " + closed.ID:         closed.ID + ": is queued, not failed",
		"discard no-such-id":                       "no-such-id: no such posting",
	} {
		if out := r.ok(strings.Fields(args)...); !strings.Contains(out, want) {
			t.Errorf("sapq jobs %s:\n%s\nwant %q", args, out, want)
		}
	}
	if _, _, err := r.run(ctx, "reprocess"); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Fatalf("reprocess without a selection = %v, want a refusal", err)
	}
	// IDs first, flags after them.
	if out := r.ok("discard", other.ID, "--kind", "journal_entry"); !strings.Contains(out, "discarded 1 of 1") {
		t.Fatalf("discard:\n%s", out)
	}
	if j, _ := l.Get(ctx, "", other.ID); j.Status != tasks.StatusCancelled {
		t.Fatalf("a discarded job is %s", j.Status)
	}
	if out := r.ok("show", other.ID, closed.ID); !strings.Contains(out, `"status": "cancelled"`) || !strings.Contains(out, `"status": "queued"`) {
		t.Fatalf("show:\n%s", out)
	}
}

// Each subcommand lists only its own flags; --help answers on stdout and
// is no error.
func TestJobsHelp(t *testing.T) {
	ctx := context.Background()
	help := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runJobsWith(ctx, args, &out, &errOut, false); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("sapq jobs %v = %v, want help", args, err)
		}
		if errOut.Len() > 0 {
			t.Fatalf("sapq jobs %v wrote to stderr: %s", args, errOut.String())
		}
		return out.String()
	}
	if top := help("--help"); !strings.Contains(top, "reprocess") || !strings.Contains(top, "approve") {
		t.Fatalf("sapq jobs --help:\n%s", top)
	}
	show := help("show", "--help")
	if !strings.Contains(show, "usage: sapq jobs show ID...") || strings.Contains(show, "-dry-run") || strings.Contains(show, "-status") || !strings.Contains(show, "-redis-url") {
		t.Fatalf("sapq jobs show --help:\n%s", show)
	}
	if re := help("reprocess", "x", "-h"); !strings.Contains(re, "-dry-run") || !strings.Contains(re, "-failed-before") || strings.Contains(re, "-status") {
		t.Fatalf("sapq jobs reprocess --help:\n%s", re)
	}
	var out, errOut bytes.Buffer
	if err := runJobsWith(ctx, []string{"show", "--dry-run", "x"}, &out, &errOut, false); err == nil || !strings.Contains(err.Error(), "dry-run") {
		t.Fatalf("show --dry-run = %v", err)
	}
	if err := runJobsWith(ctx, []string{"list", "--submitted-after", "yesterday"}, &out, &errOut, false); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Fatalf("list --submitted-after yesterday = %v", err)
	}
}

// Approvals from the command line: four eyes, bound to the payload hash.
func TestJobsApproveAndReject(t *testing.T) {
	r := newJobsRig(t)
	ctx := context.Background()
	submit := func(key string) tasks.Job {
		j, _, err := r.ledger.SubmitForApproval(ctx, "ap-agent", taskstest.SupplierInvoice(key), ledger.ApprovalRequest{Reason: "above the threshold", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	big, doubt := submit("INV-BIG"), submit("INV-DOUBT")
	if list := r.ok("approvals"); !strings.Contains(list, big.ID) || !strings.Contains(list, big.Approval.PayloadHash) || !strings.Contains(list, "above the threshold") {
		t.Fatalf("approvals:\n%s", list)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", big.ID, "--payload-hash", big.Approval.PayloadHash}, "--as"},
		{[]string{"approve", big.ID, "--as", "controller"}, "--payload-hash is required"},
		{[]string{"approve", big.ID, "--as", "ap-agent", "--payload-hash", big.Approval.PayloadHash}, "cannot approve or reject a posting they submitted"},
		{[]string{"approve", big.ID, "--as", "controller", "--payload-hash", doubt.Approval.PayloadHash}, "payload_hash is not the fingerprint"},
		{[]string{"reject", doubt.ID, "--as", "controller"}, "--reason is required"},
	} {
		if _, _, err := r.run(ctx, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("sapq jobs %v = %v, want %q", c.args, err, c.want)
		}
	}
	if j, _ := r.ledger.Get(ctx, "", big.ID); j.Status != tasks.StatusAwaitingApproval {
		t.Fatalf("refused decisions changed the posting to %s", j.Status)
	}
	if out := r.ok("approve", big.ID, "--as", "controller", "--payload-hash", big.Approval.PayloadHash, "--reason", "PO 4500000123"); !strings.Contains(out, "approved by controller: queued") {
		t.Fatalf("approve:\n%s", out)
	}
	r.ok("reject", doubt.ID, "--as", "controller", "--reason", "duplicate")
	if j, _ := r.ledger.Get(ctx, "", doubt.ID); j.Status != tasks.StatusRejected || j.Approval.Comment != "duplicate" || j.Approval.DecidedBy != "controller" {
		t.Fatalf("rejected posting = %s %+v", j.Status, j.Approval)
	}
	if j, _ := r.ledger.Get(ctx, "", big.ID); j.Status != tasks.StatusQueued || j.Approval.DecidedBy != "controller" {
		t.Fatalf("approved posting = %s %+v", j.Status, j.Approval)
	}
}

// interruptAfter is stderr that cancels the command after n progress
// lines, as Ctrl-C would.
type interruptAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (w *interruptAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.HasPrefix(string(p), "reprocess: ") {
		if w.n--; w.n == 0 {
			w.cancel()
		}
	}
	return w.buf.Write(p)
}

// A bulk reprocess that is interrupted stops at the end of a chunk, and
// the command it prints resumes it; every posting reaches SAP exactly
// once. Postings fail for real in sapq dev's worker (a closed period in
// the simulator) and succeed once the period is opened.
func TestJobsReprocessInterruptedAndResumedPostsOnce(t *testing.T) {
	const token = "jobs-token-0123456789"
	_, db := redisSrv.NewDB(t)
	url := fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	base := startDevOn(t, token, url)
	rig := &jobsRig{t: t, url: url}
	rdb, err := redisTargetOf(url)
	if err != nil {
		t.Fatal(err)
	}
	client := rdb.client()
	t.Cleanup(func() { client.Close() })
	l, err := ledger.New(ledger.Options{Redis: client})
	if err != nil {
		t.Fatal(err)
	}
	rig.ledger = l
	ctx := context.Background()
	closedMonth := time.Now().UTC().AddDate(0, -3, 0)
	const n = 10
	var ids []string
	for i := range n {
		p := taskstest.JournalEntry(fmt.Sprintf("je-old-%02d", i))
		p.PostingDate = closedMonth.Format("2006-01-02")
		j, _, err := l.Submit(ctx, devCaller, p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	awaitStatus(t, l, ids, tasks.StatusFailed)
	if out := rig.ok("failures"); !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+F5/201`, n)).MatchString(out) {
		t.Fatalf("failures:\n%s", out)
	}
	resp, err := httpClient(t).Post(base+"/sim/periods", "application/json", strings.NewReader(`{"open":"`+closedMonth.Format("2006-01")+`"}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("open the period: %v %v", err, resp)
	}
	resp.Body.Close()

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stderr := &interruptAfter{n: 1, cancel: cancel}
	var out bytes.Buffer
	err = runJobsWith(cctx, []string{"reprocess", "--sap-code", "F5/201", "--chunk", "3", "--redis-url", url}, &out, stderr, false)
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("interrupted reprocess = %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "reprocessed 3 of 10") || !strings.Contains(out.String(), "7 posting(s) not reached") {
		t.Fatalf("interrupted reprocess says:\n%s\n%s", out.String(), stderr.buf.String())
	}
	cutoff := regexp.MustCompile(`--failed-before (\S+)`).FindStringSubmatch(out.String())
	if cutoff == nil {
		t.Fatalf("no resume command:\n%s", out.String())
	}
	failed := 0
	for _, id := range ids {
		if j, _ := l.Get(ctx, "", id); j.Status == tasks.StatusFailed {
			failed++
		}
	}
	if failed < n-3 {
		t.Fatalf("%d postings still failed after 3 were reprocessed", failed)
	}
	resumed := rig.ok("reprocess", "--sap-code", "F5/201", "--failed-before", cutoff[1])
	if !strings.Contains(resumed, "reprocessed 7 of 7") {
		t.Fatalf("resumed reprocess:\n%s", resumed)
	}
	awaitStatus(t, l, ids, tasks.StatusSucceeded)
	docs := simLedger(t, base)
	for _, id := range ids {
		j, _ := l.Get(ctx, "", id)
		if docs[tasks.IdentityOf(&j, tasks.DefaultDestination).Reference()] != j.Result.Document {
			t.Fatalf("posting %s: document %s, the simulator holds %v", id, j.Result.Document, docs)
		}
	}
	if len(docs) != n {
		t.Fatalf("the simulator holds %d documents for %d postings", len(docs), n)
	}
	if again := rig.ok("reprocess", "--sap-code", "F5/201"); !strings.Contains(again, "nothing selected") {
		t.Fatalf("a third run:\n%s", again)
	}
}

// startDevOn runs `sapq dev` on the Redis at url and returns its base URL.
func startDevOn(t *testing.T, token, url string) string {
	t.Helper()
	return startDev(t, token, true, "--redis-url", url)
}

func awaitStatus(t *testing.T, l *ledger.Ledger, ids []string, want tasks.Status) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			j, err := l.Wait(context.Background(), "", id, 5*time.Second)
			if err == nil && j.Status == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("posting %s is %s (%v), want %s", id, j.Status, err, want)
			}
		}
	}
}
