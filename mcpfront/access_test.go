package mcpfront_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
)

func TestParseTokens(t *testing.T) {
	ts, err := mcpfront.ParseTokens(" alice:tok1 , bob:tok:2,,")
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{"tok1": "alice", "tok:2": "bob"} {
		if got, ok := ts.Lookup(token); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", token, got, ok, want)
		}
	}
	for _, bad := range []string{"", "tok", "tok1 ", "alice", "bob:tok"} {
		if got, ok := ts.Lookup(bad); ok {
			t.Errorf("Lookup(%q) = %q, want no match", bad, got)
		}
	}
	if ts.Len() != 2 {
		t.Errorf("Len = %d", ts.Len())
	}
	for _, bad := range []string{"alice", "alice:", ":S3CRET", "al ice:S3CRET", "alice:S3CRET,bob:S3CRET", "alice:S3 CRET", "alice:S3CRET\x00"} {
		if _, err := mcpfront.ParseTokens(bad); err == nil {
			t.Errorf("ParseTokens(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "S3") {
			t.Errorf("ParseTokens(%q) error reveals the token: %v", bad, err)
		}
	}
	if ts, err := mcpfront.ParseTokens(""); err != nil || ts.Len() != 0 {
		t.Errorf("empty value: %v, %d tokens", err, ts.Len())
	}
}

func TestLoadTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	content := "# caller:token\n\nalice:s3cr3t-alice\n  bob:s3cr3t:bob  \r\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := mcpfront.LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := ts.Lookup("s3cr3t:bob"); !ok || c != "bob" || ts.Len() != 2 {
		t.Fatalf("Lookup = %q %v, Len %d", c, ok, ts.Len())
	}
	if err := os.WriteFile(path, []byte("alice:one\nbroken-line-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = mcpfront.LoadTokenFile(path)
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad line: %v", err)
	}
}

func post(t *testing.T, url, token string, body io.Reader, contentLength int64) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, header, challenge string
	}{
		{"no token", "", `Bearer realm="sapq"`},
		{"wrong token", "Bearer not-a-token", `Bearer realm="sapq", error="invalid_token"`},
		{"other scheme", "Basic YWxpY2U6dG9rMQ==", `Bearer realm="sapq", error="invalid_token"`},
		{"empty bearer", "Bearer ", `Bearer realm="sapq", error="invalid_token"`},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, resp.StatusCode)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) {
			t.Errorf("%s: WWW-Authenticate %q, want prefix %q", tc.name, got, tc.challenge)
		}
		if tc.header == "" && strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
			t.Errorf("%s: a request without credentials gets no error code (RFC 6750 3.1)", tc.name)
		}
	}

	// Real clients with a wrong token cannot even connect.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := connectSDK(ctx, e.url, "wrong", ""); err == nil {
		t.Error("go-sdk client connected with a wrong token")
	}
	if got := metricValue(t, e, "sapq_mcp_http_unauthorized_total", "reason", "invalid"); got < 3 {
		t.Errorf("unauthorized{reason=invalid} = %v", got)
	}

	// A good token works, and no token ever reaches the log.
	c := dialSDK(t, e.url, aliceToken, "")
	submit(t, c, "submit_supplier_invoice", invoice("auth-1"))
	logs := e.logs.String()
	for _, secret := range []string{aliceToken, bobToken, "not-a-token", "YWxpY2U6dG9rMQ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains token %q", secret)
		}
	}
}

func TestCallerIsolation(t *testing.T) {
	e := newEnv(t)
	alice := dialSDK(t, e.url, aliceToken, "")
	bob := dialMCPGo(t, e.url, bobToken, legacyVersion)

	job := submit(t, alice, "submit_supplier_invoice", invoice("shared-key"))

	wantError(t, call(t, bob, "get_posting", map[string]any{"job_id": job.JobID}), "not_found")
	wantError(t, call(t, bob, "cancel_posting", map[string]any{"job_id": job.JobID}), "not_found")
	if l := list(t, bob, nil); len(l.Postings) != 0 {
		t.Fatalf("bob lists alice's postings: %+v", l)
	}
	// Idempotency keys are per caller: bob's "shared-key" is his own job.
	bobs := submit(t, bob, "submit_journal_entry", journalEntry("shared-key"))
	if bobs.JobID == job.JobID || *bobs.Replayed {
		t.Fatalf("bob's submission = %+v", bobs)
	}
	if l := list(t, bob, nil); len(l.Postings) != 1 || l.Postings[0].JobID != bobs.JobID {
		t.Fatalf("bob's list: %+v", l)
	}

	var p posting
	call(t, alice, "get_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
	if p.Status != "queued" {
		t.Fatalf("alice's job after bob's attempts: %+v", p)
	}
	if l := list(t, alice, nil); len(l.Postings) != 1 || l.Postings[0].JobID != job.JobID {
		t.Fatalf("alice's list: %+v", l)
	}
}

func TestRequestTooLarge(t *testing.T) {
	e := newEnv(t)
	huge := invoice("huge-1")
	huge["header_text"] = strings.Repeat("x", 2<<20)
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 2, "method": "tools/call",
		"params": map[string]any{"name": "submit_supplier_invoice", "arguments": huge},
	})
	if err != nil {
		t.Fatal(err)
	}

	// With a Content-Length and chunked (no length): both are refused.
	for _, length := range []int64{int64(len(body)), -1} {
		var r io.Reader = bytes.NewReader(body)
		if length < 0 {
			r = io.MultiReader(r) // hides the length, so the body is sent chunked
		}
		resp := post(t, e.url, aliceToken, r, length)
		msg, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("length %d: reading the answer: %v", length, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("length %d: status %d (%s), want 413", length, resp.StatusCode, msg)
		}
		var rpc struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg, &rpc); err != nil || rpc.Error.Code != -32600 || !strings.Contains(rpc.Error.Message, "exceeds the limit of 1048576 bytes") {
			t.Fatalf("length %d: body %s (%v)", length, msg, err)
		}
	}

	// A real client sending the same call gets an error, not a job.
	c := dialSDK(t, e.url, aliceToken, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := c.callErr(ctx, "submit_supplier_invoice", huge); err == nil && !r.IsError {
		t.Fatalf("2 MB submission accepted: %s", r.Structured)
	}
	// go-sdk gives up the connection after an HTTP error; list with a new one.
	if l := list(t, dialMCPGo(t, e.url, aliceToken, ""), nil); len(l.Postings) != 0 {
		t.Fatalf("2 MB submission created jobs: %+v", l)
	}
	if got := metricValue(t, e, "sapq_mcp_requests_too_large_total"); got != 3 {
		t.Errorf("requests_too_large_total = %v, want 3", got)
	}
}

// FIX 5 (worker/model): a server without SAP access cannot check whether
// SAP holds a document under the reference of a posting never sent (from an
// earlier job of the same key that the ledger forgot), so it does not
// cancel one.
func TestCancelWithoutSAPAccess(t *testing.T) {
	tokens, err := mcpfront.ParseTokens("alice:" + aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Tokens: tokens})
	c := dialSDK(t, e.url, aliceToken, "")
	job := submit(t, c, "submit_journal_entry", journalEntry("cancel-unseen"))
	wantError(t, call(t, c, "cancel_posting", map[string]any{"job_id": job.JobID}), "not_cancellable")
	var p posting
	call(t, c, "get_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
	if p.Status != "queued" {
		t.Fatalf("after the refused cancel: %+v", p)
	}
}

func TestCancel(t *testing.T) {
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)
		job := submit(t, c, "submit_journal_entry", journalEntry("cancel-me"))

		var p posting
		call(t, c, "cancel_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
		if p.JobID != job.JobID || p.Status != "cancelled" {
			t.Fatalf("cancel_posting = %+v", p)
		}
		// Cancelling again reports the same outcome (idempotent).
		call(t, c, "cancel_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
		if p.Status != "cancelled" {
			t.Fatalf("second cancel_posting = %+v", p)
		}
		call(t, c, "get_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
		if p.Status != "cancelled" {
			t.Fatalf("get_posting after cancel = %+v", p)
		}
		// A replay of the key returns the cancelled job; it is not revived.
		again := submit(t, c, "submit_journal_entry", journalEntry("cancel-me"))
		if again.JobID != job.JobID || again.Status != "cancelled" || !*again.Replayed {
			t.Fatalf("replay after cancel = %+v", again)
		}
		wantError(t, call(t, c, "cancel_posting", map[string]any{"job_id": "0197f000-0000-7000-8000-000000000000"}), "not_found")
	})
}

// TestNotCancellableOnceSent drives a job through the worker's side of the
// ledger (no worker runs in these tests) and checks what agents see.
func TestNotCancellableOnceSent(t *testing.T) {
	e := newEnv(t)
	c := dialSDK(t, e.url, aliceToken, "")
	ctx := context.Background()

	sending := submit(t, c, "submit_supplier_invoice", invoice("sent-1"))
	if err := e.ledger.TrustRedis(ctx); err != nil {
		t.Fatal(err)
	}
	claimed, err := e.ledger.Claim(ctx, sending.JobID, 0)
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.ledger.BeginSend(ctx, claimed.Job, tasks.DefaultDestination, "SQTESTREFERENCE1")
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, c, "cancel_posting", map[string]any{"job_id": sending.JobID})
	wantError(t, r, "not_cancellable", "possibly already posted in SAP")

	var p posting
	call(t, c, "get_posting", map[string]any{"job_id": sending.JobID}).decode(t, &p)
	if p.Status != "running" || *p.Attempts != 1 {
		t.Fatalf("get_posting of a job being sent = %+v", p)
	}

	res := tasks.Result{Document: "5105600123", FiscalYear: "2024", CompanyCode: "1010",
		Messages: []tasks.Message{{Code: "F5/312", Text: "Document 5105600123 was posted in company code 1010", Severity: "success"}}}
	if err := e.ledger.RecordPosted(ctx, job, res); err != nil {
		t.Fatal(err)
	}
	call(t, c, "get_posting", map[string]any{"job_id": sending.JobID}).decode(t, &p)
	var got tasks.Result
	if err := json.Unmarshal(p.Result, &got); err != nil {
		t.Fatal(err)
	}
	if p.Status != "succeeded" || got.Document != "5105600123" || got.FiscalYear != "2024" || got.CompanyCode != "1010" || len(got.Messages) != 1 {
		t.Fatalf("get_posting of a posted job = %+v, result %+v", p, got)
	}
	wantError(t, call(t, c, "cancel_posting", map[string]any{"job_id": sending.JobID}), "not_cancellable", "already posted in SAP")
}

func TestInternalErrorIsGeneric(t *testing.T) {
	e := newEnv(t)
	c := dialSDK(t, e.url, aliceToken, "")
	job := submit(t, c, "submit_supplier_invoice", invoice("before-outage"))
	e.rdb.Close() // Redis is gone for this server

	for tool, args := range map[string]any{
		"submit_journal_entry": journalEntry("during-outage"),
		"get_posting":          map[string]any{"job_id": job.JobID},
		"list_postings":        map[string]any{},
		"cancel_posting":       map[string]any{"job_id": job.JobID},
	} {
		r := call(t, c, tool, args)
		wantError(t, r, "internal:", "call again")
		if strings.Contains(strings.ToLower(r.Text), "redis") || strings.Contains(r.Text, "closed") {
			t.Errorf("%s: internal details leak to the client: %s", tool, r.Text)
		}
	}
	if !strings.Contains(e.logs.String(), "client is closed") {
		t.Errorf("internal error details are not logged:\n%s", e.logs.String())
	}
	if got := metricValue(t, e, "sapq_mcp_tool_calls_total", "tool", "get_posting", "outcome", "internal"); got != 1 {
		t.Errorf("tool_calls_total{get_posting,internal} = %v", got)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	c := dialMCPGo(t, e.url, aliceToken, "")
	submit(t, c, "submit_supplier_invoice", invoice("m-1"))
	submit(t, c, "submit_supplier_invoice", invoice("m-1"))
	wantError(t, call(t, c, "submit_supplier_invoice", map[string]any{}), "invalid_argument")
	changed := invoice("m-1")
	changed["header_text"] = "Other supplies"
	wantError(t, call(t, c, "submit_supplier_invoice", changed), "idempotency_conflict")
	wantError(t, call(t, c, "get_posting", map[string]any{"job_id": "missing"}), "not_found")

	for _, tc := range []struct {
		outcome string
		want    float64
	}{{"accepted", 1}, {"replayed", 1}, {"invalid_argument", 1}, {"idempotency_conflict", 1}} {
		if got := metricValue(t, e, "sapq_mcp_submissions_total", "kind", "supplier_invoice", "outcome", tc.outcome); got != tc.want {
			t.Errorf("submissions_total{supplier_invoice,%s} = %v, want %v", tc.outcome, got, tc.want)
		}
	}

	for _, tc := range []struct {
		tool, outcome string
		want          float64
	}{
		{"submit_supplier_invoice", "ok", 2},
		{"submit_supplier_invoice", "invalid_argument", 1},
		{"submit_supplier_invoice", "idempotency_conflict", 1},
		{"get_posting", "not_found", 1},
	} {
		if got := metricValue(t, e, "sapq_mcp_tool_calls_total", "tool", tc.tool, "outcome", tc.outcome); got != tc.want {
			t.Errorf("tool_calls_total{%s,%s} = %v, want %v", tc.tool, tc.outcome, got, tc.want)
		}
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, f := range families {
		if f.GetName() == "sapq_mcp_tool_call_duration_seconds" {
			for _, m := range f.GetMetric() {
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if observed != 5 {
		t.Errorf("duration histogram observed %d calls, want 5", observed)
	}
}

// metricValue returns the value of a counter series in the env's registry,
// selected by label name/value pairs; 0 when the series does not exist.
func metricValue(t *testing.T, e *env, name string, labels ...string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
