package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// screenshotDir is where the browser test leaves its screenshots, as
// artefacts; git ignores it.
const screenshotDir = repoRoot + "/testdata/screenshots"

// newBrowser starts Debian's chromium, headless, with a profile of its own.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: apt-get install -y chromium (.ci/run installs it when missing)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page as testdata/screenshots/<test>-<name>.png.
func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, target)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(screenshotDir, t.Name()+"-"+name+".png")
		t.Logf("screenshot %s", path)
		return os.WriteFile(path, png, 0o644)
	})
}

// An operator's morning, in a real browser: postings dated in a closed
// posting period failed with F5/201; the operator logs in, sees them as one
// group, opens the period in SAP, reprocesses the group from the console
// and watches it finish; every posting is then posted exactly once.
func TestConsoleInBrowserReprocessesAFailureGroup(t *testing.T) {
	const token = "browser-token-0123456789"
	base := startDev(t, token, false)
	cs := connect(t, base+"/mcp", token)

	now := time.Now()
	closedMonth := time.Date(now.Year(), now.Month()-3, 1, 0, 0, 0, 0, time.UTC)
	const n = 4
	var ids []string
	var postings []tasks.Posting
	for i := range n {
		je := taskstest.JournalEntry(fmt.Sprintf("browser-closed-%d", i))
		je.PostingDate = closedMonth.AddDate(0, 0, i).Format(time.DateOnly)
		je.DocumentDate = je.PostingDate
		var s submitted
		call(t, cs, "submit_journal_entry", je, &s)
		ids = append(ids, s.JobID)
		postings = append(postings, je)
	}
	for _, id := range ids {
		if p := awaitPosting(t, cs, id); p.Status != "failed" || p.Error == nil || p.Error.Code != "F5/201" {
			t.Fatalf("posting %s = %+v, want failed with F5/201", id, p)
		}
	}

	ctx := newBrowser(t)
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		screenshot(t, "1-login"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS("tr.group")),
		screenshot(t, "2-failure-groups"),
	)
	if err != nil {
		t.Fatalf("log in and see the failures: %v", err)
	}
	summary, group := text("#summary"), text("tr.group")
	if !strings.Contains(summary, fmt.Sprintf("%d failed postings in 1 group", n)) || !strings.Contains(group, "F5/201") || !strings.Contains(group, "is not open") || !strings.Contains(group, "1010") {
		t.Fatalf("overview: summary %q, group %q", summary, group)
	}

	// The Asynq UI, behind the same login: the archived tasks show SAP's
	// message first.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/queues/postings?status=archived"),
		chromedp.WaitVisible(chromedp.Search(`//td[starts-with(normalize-space(.), "F5/201")]`)),
		screenshot(t, "3-asynq-ui-archived"),
	)
	if err != nil {
		t.Fatalf("the Asynq UI's archived tasks: %v", err)
	}
	archived := text("body")
	for _, id := range ids {
		if shown := id[len(id)-12:]; !strings.Contains(archived, shown) {
			t.Errorf("the Asynq UI's archived list does not show task %s (job %s)", shown, id)
		}
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/"),
		chromedp.Click(chromedp.CSS("a.open")),
		chromedp.WaitVisible(chromedp.Search(`//pre[@id="preview"][contains(., "JournalEntryCreateRequest")]`)),
		screenshot(t, "4-group-and-preview"),
	)
	if err != nil {
		t.Fatalf("open the group: %v", err)
	}
	preview := text("#preview")
	if !strings.Contains(preview, "POST "+base+"/sap/bc/srt/scs_ext/sap/journalentrycreaterequestconfi") || !strings.Contains(preview, "<PostingDate>"+closedMonth.Format("2006-01-")) {
		t.Fatalf("preview:\n%s", preview)
	}

	// Finance opens the period (transaction OB52 in SAP).
	resp, err := httpClient(t).Post(base+"/sim/periods", "application/json", strings.NewReader(`{"open":"`+closedMonth.Format("2006-01")+`"}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("open the period: %v %v", err, resp)
	}
	resp.Body.Close()

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("reprocess")),
		chromedp.WaitVisible(chromedp.ID("operation")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="state"]/span[contains(., "Finished")]`)),
		screenshot(t, "5-reprocessed"),
	)
	if err != nil {
		t.Fatalf("reprocess the group: %v", err)
	}
	state := text("#counts")
	if !strings.HasPrefix(state, fmt.Sprintf("%d done, 0 skipped of %d selected", n, n)) {
		t.Fatalf("operation: %q", state)
	}
	for _, id := range ids {
		if p := awaitPosting(t, cs, id); p.Status != "succeeded" || p.Result == nil {
			t.Fatalf("posting %s after reprocessing = %+v, want succeeded", id, p)
		}
	}
	docs := simLedger(t, base) // fails on two documents for one reference
	for _, p := range postings {
		if docs[devRef(t, p)] == "" {
			t.Fatalf("the simulator holds no document for %s", p.IdempotencyKey())
		}
	}
	if len(docs) != n {
		t.Fatalf("the simulator holds %d documents, want %d", len(docs), n)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("no-failures")),
		screenshot(t, "6-nothing-failed"),
	)
	if err != nil {
		t.Fatalf("after the reprocess: %v", err)
	}
	after := text("#summary")
	// Logging out ends the session: the console asks for the token again.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("header button")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if err != nil {
		t.Fatalf("log out: %v", err)
	}
	if !strings.HasPrefix(after, "0 failed postings") {
		t.Fatalf("overview after the reprocess: %q", after)
	}
}
