package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) { redistest.Main(m, &redisSrv) }

// startDev runs `sapq dev` and returns its base URL. Unless embedded is
// set, it runs against the test's Redis rather than its embedded one.
func startDev(t *testing.T, token string, embedded bool, extra ...string) string {
	t.Helper()
	args := append([]string{"--addr", "127.0.0.1:0", "--token", token}, extra...)
	if !embedded {
		_, db := redisSrv.NewDB(t)
		args = append(args, "--redis-url", fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db))
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, args, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sapq dev did not stop cleanly: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sapq dev did not stop within 30s of its context ending")
		}
	})
	re := regexp.MustCompile(`(http://(?:[0-9.]+|\[[0-9a-f:]+\]):\d+)/mcp`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("sapq dev exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sapq dev printed no URL:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond) // waiting for the banner; nothing to subscribe to
	}
}

// httpClient returns a client with connections of its own, closed before
// sapq dev stops: an HTTP server's graceful shutdown waits up to 5 s for a
// connection dialed and never used, which a shared client may leave behind.
func httpClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func connect(t *testing.T, url, token string) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := httpClient(t)
	hc.Transport = testutil.Bearer{Token: token, Next: hc.Transport}
	c := sdk.NewClient(&sdk.Implementation{Name: "sapq-e2e", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *sdk.ClientSession, tool string, args any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		var text strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*sdk.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		t.Fatalf("%s returned an error: %s", tool, text.String())
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: decode %s: %v", tool, b, err)
	}
}

type submitted struct {
	JobID    string `json:"job_id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Replayed bool   `json:"replayed"`
	Poll     int    `json:"poll_after_seconds"`
}

type posting struct {
	JobID    string `json:"job_id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Result   *struct {
		Document    string `json:"document"`
		FiscalYear  string `json:"fiscal_year"`
		CompanyCode string `json:"company_code"`
	} `json:"result"`
	Error *struct{ Code, Message, Category string } `json:"error"`
}

func awaitPosting(t *testing.T, cs *sdk.ClientSession, id string) posting {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p posting
		// As an agent does: each call waits for the next change.
		call(t, cs, "get_posting", map[string]any{"job_id": id, "wait_seconds": 5}, &p)
		if p.Status == "succeeded" || p.Status == "failed" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("posting %s still %s after 30s", id, p.Status)
		}
	}
}

func simLedger(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := httpClient(t).Get(base + "/sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Documents []struct{ Kind, Document, Reference string } `json:"documents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, d := range l.Documents {
		if _, dup := docs[d.Reference]; dup {
			t.Fatalf("the simulator holds two documents for reference %s", d.Reference)
		}
		docs[d.Reference] = d.Document
	}
	return docs
}

// The whole product through its front door: a real MCP client over
// Streamable HTTP, sapq dev's wiring, a real Redis, the worker and the SAP
// simulator.
func TestDevEndToEnd(t *testing.T) {
	for _, embedded := range []bool{false, true} {
		name := "redis-server"
		if embedded {
			name = "embedded-miniredis"
		}
		t.Run(name, func(t *testing.T) { testDevEndToEnd(t, embedded) })
	}
}

func testDevEndToEnd(t *testing.T, embedded bool) {
	const token = "e2e-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword) // to read back what SAP stored
	base := startDev(t, token, embedded)
	cs := connect(t, base+"/mcp", token)

	inv := taskstest.SupplierInvoice("E2E-INV-1")
	inv.HeaderText = `<Büro> & "Co" 'x'`
	je := taskstest.JournalEntry("e2e-je-1")
	je.HeaderText = `</JournalEntry>&amp;<x>`
	je.Items[0].Text = `]]><!-- "'`

	// A dry run first: SAP checks the entry (a test run) and nothing is
	// recorded or posted; the simulator's ledger below holds two documents.
	var dry struct {
		JobID  string `json:"job_id"`
		DryRun struct {
			Verdict  string `json:"verdict"`
			SAPCheck struct {
				Checked, Passed bool
			} `json:"sap_check"`
		} `json:"dry_run"`
	}
	jeArgs := map[string]any{}
	b, _ := json.Marshal(je)
	json.Unmarshal(b, &jeArgs)
	jeArgs["dry_run"] = true
	call(t, cs, "submit_journal_entry", jeArgs, &dry)
	if dry.JobID != "" || dry.DryRun.Verdict != "would_post" || !dry.DryRun.SAPCheck.Checked || !dry.DryRun.SAPCheck.Passed {
		t.Fatalf("dry run = %+v", dry)
	}

	var si, sj submitted
	call(t, cs, "submit_supplier_invoice", inv, &si)
	call(t, cs, "submit_journal_entry", je, &sj)
	if si.Status != "queued" || si.Replayed || si.Kind != "supplier_invoice" || si.Poll < 1 {
		t.Fatalf("submit_supplier_invoice = %+v", si)
	}

	var replay submitted
	call(t, cs, "submit_journal_entry", je, &replay)
	if replay.JobID != sj.JobID || !replay.Replayed {
		t.Fatalf("replay = %+v, want job %s replayed", replay, sj.JobID)
	}

	pi, pj := awaitPosting(t, cs, si.JobID), awaitPosting(t, cs, sj.JobID)
	if pi.Status != "succeeded" || pj.Status != "succeeded" {
		t.Fatalf("postings ended %s (%+v) and %s (%+v)", pi.Status, pi.Error, pj.Status, pj.Error)
	}
	docs := simLedger(t, base)
	if docs[devRef(t, inv)] != pi.Result.Document || pi.Result.FiscalYear == "" || pi.Result.CompanyCode != "1010" {
		t.Fatalf("invoice result %+v, simulator ledger %v", pi.Result, docs)
	}
	if docs[devRef(t, je)] != pj.Result.Document || len(docs) != 2 {
		t.Fatalf("journal entry result %+v, simulator ledger %v", pj.Result, docs)
	}

	// The texts, XML and JSON metacharacters included, arrive in SAP as the
	// agent wrote them, neither mangled nor double-escaped.
	invoices := simRead(t, base, sim.SupplierInvoiceServicePath+"/A_SupplierInvoice",
		"CompanyCode eq '1010' and SupplierInvoiceIDByInvcgParty eq 'E2E-INV-1'")
	if len(invoices) != 1 || invoices[0]["DocumentHeaderText"] != inv.HeaderText {
		t.Fatalf("SAP holds invoices %v, want one with header text %q", invoices, inv.HeaderText)
	}
	lines := simRead(t, base, sim.GLAccountLineItemPath+"/GLAccountLineItem",
		"CompanyCode eq '1010' and AssignmentReference eq '"+devRef(t, je)+"'")
	texts := map[any]bool{}
	for _, l := range lines {
		texts[l["DocumentItemText"]] = true
	}
	if !texts[je.Items[0].Text] || !texts[je.Items[1].Text] {
		t.Fatalf("SAP holds line texts %v, want %q and %q", texts, je.Items[0].Text, je.Items[1].Text)
	}
}

// simPassword is the simulator's password in the tests that read it back.
const simPassword = "sim-secret-0123456789"

// simRead reads an OData V2 entity set of the simulator, as a SAP user would.
func simRead(t *testing.T, base, set, filter string) []map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+set+"?$format=json&$filter="+url.QueryEscape(filter), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("SAPQ_COMM", simPassword)
	resp, err := httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		D struct {
			Results []map[string]any `json:"results"`
		} `json:"d"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", set, resp.StatusCode, err)
	}
	return body.D.Results
}

func TestDevGuardsUIAndMCP(t *testing.T) {
	const token = "guard-token-0123456789"
	base := startDev(t, token, false)
	get := func(path, auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		c := httpClient(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/healthz", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d", r.StatusCode)
	}
	if r := get("/readyz", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d: Redis and the simulator are up", r.StatusCode)
	}
	// The Asynq UI and the console open after a login only: neither a
	// bearer token nor one in the URL opens them, and nothing sets a cookie.
	for _, c := range []struct{ path, auth string }{{"/ui/", ""}, {"/ui/", token}, {"/ui/?token=" + token, ""}, {"/console/", token}} {
		r := get(c.path, c.auth)
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/console/login?next=") || len(r.Cookies()) != 0 {
			t.Fatalf("%s (bearer %q) = %d to %q with %d cookies, want a redirect to the login form", c.path, c.auth, r.StatusCode, r.Header.Get("Location"), len(r.Cookies()))
		}
	}
	r := get("/mcp", "")
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("/mcp without token = %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

// Fifty agents' calls with one idempotency key, over five MCP sessions at
// once: one job, one SAP document.
func TestDevConcurrentSubmissionsPostOnce(t *testing.T) {
	const token = "conc-token-0123456789"
	base := startDev(t, token, false)
	sessions := make([]*sdk.ClientSession, 5)
	for i := range sessions {
		sessions[i] = connect(t, base+"/mcp", token)
	}
	inv := taskstest.SupplierInvoice("E2E-CONC-1")
	ids := make([]string, 50)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := sessions[i%len(sessions)].CallTool(ctx, &sdk.CallToolParams{Name: "submit_supplier_invoice", Arguments: inv})
			if err != nil || res.IsError {
				t.Errorf("call %d: %v %+v", i, err, res)
				return
			}
			var s submitted
			b, _ := json.Marshal(res.StructuredContent)
			json.Unmarshal(b, &s)
			ids[i] = s.JobID
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("call %d got job %q, call 0 got %q: want one job", i, id, ids[0])
		}
	}
	if p := awaitPosting(t, sessions[0], ids[0]); p.Status != "succeeded" {
		t.Fatalf("posting ended %s: %+v", p.Status, p.Error)
	}
	if docs := simLedger(t, base); len(docs) != 1 || docs[devRef(t, inv)] == "" {
		t.Fatalf("simulator ledger %v: want exactly one document", docs)
	}
}

// An agent sees a failing attempt as retrying, with the next attempt's
// time, and then the document once SAP recovers.
func TestDevRetryIsVisibleToTheAgent(t *testing.T) {
	const token = "retry-token-0123456789"
	base := startDev(t, token, false)
	setFaults := func(body string) {
		t.Helper()
		resp, err := httpClient(t).Post(base+"/sim/faults", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /sim/faults %s: %v %v", body, err, resp)
		}
		resp.Body.Close()
	}
	setFaults(`{"fail_rate":1}`)
	cs := connect(t, base+"/mcp", token)
	var s submitted
	call(t, cs, "submit_journal_entry", taskstest.JournalEntry("e2e-retry"), &s)

	deadline := time.Now().Add(20 * time.Second)
	for {
		var p struct {
			posting
			NextAttemptAt *time.Time `json:"next_attempt_at"`
		}
		call(t, cs, "get_posting", map[string]any{"job_id": s.JobID}, &p)
		if p.Status == "retrying" && p.NextAttemptAt != nil && p.Error != nil && p.Error.Category == "transient" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw the posting retrying with a next attempt time; last %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	setFaults(`{"fail_rate":0}`)
	if p := awaitPosting(t, cs, s.JobID); p.Status != "succeeded" || p.Attempts < 2 {
		t.Fatalf("posting = %+v, want succeeded after a retry", p)
	}
}

// Bound beyond loopback, sapq dev puts the simulator's control endpoints
// behind its token: anyone who can reach the port could change the faults.
func TestDevGuardsSimulatorControlBeyondLoopback(t *testing.T) {
	const token = "sim-guard-token-0123456789"
	base := startDev(t, token, true, "--addr", "0.0.0.0:0")
	c := httpClient(t)
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/sim/faults", strings.NewReader(`{"fail_rate":1}`))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("POST /sim/faults without the token: %d, want 401", code)
	}
	if code := post(token); code != http.StatusOK {
		t.Fatalf("POST /sim/faults with the token: %d, want 200", code)
	}
}

// devRef is the reference a posting submitted with sapq dev's token carries
// in SAP.
func devRef(t *testing.T, p tasks.Posting) string {
	t.Helper()
	id, err := tasks.IdentityOfPosting(devCaller, p, tasks.DefaultDestination)
	if err != nil {
		t.Fatal(err)
	}
	return id.Reference()
}
