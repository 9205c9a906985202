package mcpfront_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time     string `json:"time"`
	Msg      string `json:"msg"`
	Caller   string `json:"caller"`
	Role     string `json:"role"`
	Via      string `json:"via"`
	Tool     string `json:"tool"`
	JobID    string `json:"job_id"`
	Kind     string `json:"kind"`
	Key      string `json:"idempotency_key"`
	Decision string `json:"decision"`
	Rule     string `json:"rule"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	TraceID  string `json:"trace_id"`
}

func auditRecords(t *testing.T, e *env) []auditRecord {
	t.Helper()
	var out []auditRecord
	sc := bufio.NewScanner(strings.NewReader(e.audit.String()))
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// Every tool call leaves one audit record with the caller, tool, job,
// decision, rule, time and trace ID, and none holds a token or a payload.
func TestAuditLog(t *testing.T) {
	e := policyEnv(t)
	ap := dialMCPGo(t, e.url, apToken, legacyVersion)
	job := submit(t, ap, "submit_supplier_invoice", invoice("audit-1"))
	submit(t, ap, "submit_supplier_invoice", invoice("audit-1"))
	refused := invoice("audit-2")
	refused["company_code"] = "2000"
	wantError(t, call(t, ap, "submit_supplier_invoice", refused), "policy_violation")
	wantError(t, call(t, ap, "submit_supplier_invoice", map[string]any{"idempotency_key": "audit-3"}), "invalid_argument")
	call(t, ap, "get_posting", map[string]any{"job_id": job.JobID})
	wantError(t, call(t, ap, "get_posting", map[string]any{"job_id": "nope"}), "not_found")
	call(t, ap, "cancel_posting", map[string]any{"job_id": job.JobID})

	recs := auditRecords(t, e)
	want := []struct{ tool, decision, rule, job string }{
		{"submit_supplier_invoice", "accepted", "", job.JobID},
		{"submit_supplier_invoice", "replayed", "", job.JobID},
		{"submit_supplier_invoice", "refused", "allowed_company_codes", ""},
		{"submit_supplier_invoice", "refused", "invalid_argument", ""},
		{"get_posting", "ok", "", ""},
		{"get_posting", "refused", "not_found", ""},
		{"cancel_posting", "ok", "", ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records, want %d:\n%s", len(recs), len(want), e.audit.String())
	}
	traces := map[string]bool{}
	for i, w := range want {
		r := recs[i]
		if r.Msg != "tool call" || r.Tool != w.tool || r.Decision != w.decision || r.Rule != w.rule || r.Caller != "ap-agent" || r.Role != "agent" || r.Via != "token" {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		if w.job != "" && r.JobID != w.job {
			t.Errorf("record %d job %q, want %q", i, r.JobID, w.job)
		}
		if r.Time == "" || len(r.TraceID) != 32 || traces[r.TraceID] {
			t.Errorf("record %d: time %q, trace %q (each call its own)", i, r.Time, r.TraceID)
		}
		traces[r.TraceID] = true
	}
	if r := recs[0]; r.Kind != "supplier_invoice" || r.Key != "audit-1" || r.Amount != "1190.00" || r.Currency != "EUR" {
		t.Errorf("submission record lacks the posting's essentials: %+v", r)
	}
	log := e.audit.String()
	for _, secret := range []string{apToken, sha(apToken), "Office supplies", "61003000", "17300001", "INV-2024-0042"} {
		if strings.Contains(log, secret) {
			t.Errorf("audit log contains %q:\n%s", secret, log)
		}
	}
}

// A W3C traceparent header's trace ID is the audit record's.
func TestAuditJoinsTheCallersTrace(t *testing.T) {
	e := newEnv(t)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_postings","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`
	resp := postWith(t, e.url, aliceToken, body, map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01", "MCP-Protocol-Version": modernVersion, "Mcp-Method": "tools/call", "Mcp-Name": "list_postings"})
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	recs := auditRecords(t, e)
	if len(recs) != 1 || recs[0].TraceID != trace || recs[0].Caller != "alice" {
		t.Fatalf("audit %+v", recs)
	}
}

// A submission's trace is recorded with its job, outside its payload: a
// replay under another trace returns the job unchanged, trace included.
func TestSubmissionRecordsTheCallersTrace(t *testing.T) {
	e := newEnv(t)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	submitWithTrace := func(traceparent string) submitResult {
		args, _ := json.Marshal(invoice("traced-1"))
		body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"submit_supplier_invoice","arguments":` + string(args) + `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`
		resp := postWith(t, e.url, aliceToken, body, map[string]string{"traceparent": traceparent, "MCP-Protocol-Version": modernVersion, "Mcp-Method": "tools/call", "Mcp-Name": "submit_supplier_invoice"})
		defer resp.Body.Close()
		var rpc struct {
			Result struct {
				StructuredContent submitResult `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&rpc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return rpc.Result.StructuredContent
	}
	first := submitWithTrace("00-" + trace + "-00f067aa0ba902b7-01")
	job, err := e.ledger.Get(context.Background(), "alice", first.JobID)
	if err != nil {
		t.Fatal(err)
	}
	// The recorded parent is the tool call's span, a child of the caller's.
	parts := strings.Split(job.TraceParent, "-")
	if len(parts) != 4 || parts[1] != trace || parts[2] == "00f067aa0ba902b7" || parts[3] != "01" {
		t.Fatalf("job's traceparent %q, want trace %s with the tool call's span as parent", job.TraceParent, trace)
	}
	replay := submitWithTrace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	again, err := e.ledger.Get(context.Background(), "alice", replay.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if replay.Replayed == nil || !*replay.Replayed || replay.JobID != first.JobID || again.TraceParent != job.TraceParent || again.Fingerprint != job.Fingerprint {
		t.Fatalf("replay %+v: traceparent %q fingerprint %s, want the first's %q %s", replay, again.TraceParent, again.Fingerprint, job.TraceParent, job.Fingerprint)
	}
}
