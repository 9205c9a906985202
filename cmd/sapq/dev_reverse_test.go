package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks/taskstest"
)

// An agent reverses what it posted, through the front door: a supplier
// invoice through a real MCP client, then reverse_posting naming its job,
// awaited until SAP holds the reversal document; a second reversal of it,
// and a reversal of a job that is not the caller's, are refused.
func TestDevReversePostingOfASupplierInvoice(t *testing.T) {
	const token = "e2e-reverse-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword) // to read back what SAP stored
	base := startDev(t, token, false)
	cs := connect(t, base+"/mcp", token)

	inv := taskstest.SupplierInvoice("E2E-REV-INV-1")
	var si submitted
	call(t, cs, "submit_supplier_invoice", inv, &si)
	pi := awaitPosting(t, cs, si.JobID)
	if pi.Status != "succeeded" || pi.Result.Document == "" {
		t.Fatalf("invoice ended %s: %+v %+v", pi.Status, pi.Result, pi.Error)
	}

	args := map[string]any{"idempotency_key": "e2e-rev-1", "job_id": si.JobID, "reversal_reason": "01"}
	var rev submitted
	call(t, cs, "reverse_posting", args, &rev)
	if rev.Kind != "reverse_posting" || rev.Status != "queued" || rev.Replayed {
		t.Fatalf("reverse_posting = %+v", rev)
	}
	var replay submitted
	call(t, cs, "reverse_posting", args, &replay)
	if replay.JobID != rev.JobID || !replay.Replayed {
		t.Fatalf("replay = %+v, want job %s replayed", replay, rev.JobID)
	}
	pr := awaitPosting(t, cs, rev.JobID)
	if pr.Status != "succeeded" || pr.Result.Document == "" || pr.Result.Document == pi.Result.Document || pr.Result.CompanyCode != "1010" {
		t.Fatalf("reversal ended %s: %+v %+v", pr.Status, pr.Result, pr.Error)
	}

	// SAP shows the invoice reversed by the job's document, once.
	invoices := simRead(t, base, sim.SupplierInvoiceServicePath+"/A_SupplierInvoice",
		"SupplierInvoice eq '"+pi.Result.Document+"' and FiscalYear eq '"+pi.Result.FiscalYear+"'")
	if len(invoices) != 1 || invoices[0]["IsReversed"] != true || invoices[0]["ReverseDocument"] != pr.Result.Document {
		t.Fatalf("SAP holds %v, want the invoice reversed by %s", invoices, pr.Result.Document)
	}
	reversals := 0
	for _, d := range simLedgerDocs(t, base) {
		if d.Reverses == pi.Result.Document {
			reversals++
		}
	}
	if reversals != 1 {
		t.Fatalf("SAP holds %d reversals of %s", reversals, pi.Result.Document)
	}

	// Another key for the same reversal is refused, naming the first.
	text := callError(t, cs, "reverse_posting", map[string]any{"idempotency_key": "e2e-rev-2", "job_id": si.JobID})
	if !strings.Contains(text, "job_id") || !strings.Contains(text, "already reversed through sapq") || !strings.Contains(text, pr.Result.Document) {
		t.Fatalf("a second reversal: %s", text)
	}
	// A job that is not there (or not the caller's) is refused.
	text = callError(t, cs, "reverse_posting", map[string]any{"idempotency_key": "e2e-rev-3", "job_id": "019ad2c4-0000-7000-8000-000000000000"})
	if !strings.Contains(text, "job_id") || !strings.Contains(text, "you have no posting") {
		t.Fatalf("an unknown job: %s", text)
	}
}

// simLedgerDocs is the simulator's ledger, every document as it lists it.
func simLedgerDocs(t *testing.T, base string) []sim.LedgerDocument {
	t.Helper()
	resp, err := httpClient(t).Get(base + "/sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct{ Documents []sim.LedgerDocument }
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l.Documents
}

// callError calls a tool that must refuse, and returns its error text.
func callError(t *testing.T, cs *sdk.ClientSession, tool string, args any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if !res.IsError {
		t.Fatalf("%s accepted %v: %s", tool, args, text.String())
	}
	return text.String()
}
