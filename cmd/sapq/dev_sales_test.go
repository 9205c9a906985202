package main

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks/taskstest"
)

// An agent's order to cash through the front door: a sales order through
// a real MCP client, then its billing by the order number the first job
// returned, each once in SAP.
func TestDevSalesOrderThenBilling(t *testing.T) {
	const token = "e2e-sales-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword) // to read back what SAP stored
	base := startDev(t, token, false)
	cs := connect(t, base+"/mcp", token)

	order := taskstest.SalesOrder("e2e-so-1")
	order.CustomerReference = `PO "4711" <Müller & Co>`
	var so submitted
	call(t, cs, "submit_sales_order", order, &so)
	if so.Kind != "sales_order" || so.Status != "queued" {
		t.Fatalf("submit_sales_order = %+v", so)
	}
	po := awaitPosting(t, cs, so.JobID)
	if po.Status != "succeeded" || po.Result.Document == "" {
		t.Fatalf("sales order ended %s: %+v %+v", po.Status, po.Result, po.Error)
	}
	orders := simRead(t, base, sim.SalesOrderServicePath+"/A_SalesOrder", "AssignmentReference eq '"+devRef(t, order)+"'")
	if len(orders) != 1 || orders[0]["SalesOrder"] != po.Result.Document || orders[0]["PurchaseOrderByCustomer"] != order.CustomerReference ||
		orders[0]["TotalNetAmount"] != "330.00" {
		t.Fatalf("SAP holds orders %v, want one, number %s, with the customer's reference as sent", orders, po.Result.Document)
	}

	billing := taskstest.BillingDocument("e2e-bd-1", po.Result.Document)
	var bd submitted
	call(t, cs, "submit_billing_document", billing, &bd)
	var replay submitted
	call(t, cs, "submit_billing_document", billing, &replay)
	if replay.JobID != bd.JobID || !replay.Replayed {
		t.Fatalf("replay = %+v, want job %s replayed", replay, bd.JobID)
	}
	pb := awaitPosting(t, cs, bd.JobID)
	if pb.Status != "succeeded" || pb.Result.CompanyCode != "1010" || pb.Result.FiscalYear == "" {
		t.Fatalf("billing ended %s: %+v %+v", pb.Status, pb.Result, pb.Error)
	}
	items := simRead(t, base, sim.BillingDocumentServicePath+"/A_BillingDocumentItem", "ReferenceSDDocument eq '"+po.Result.Document+"'")
	if len(items) != 2 || items[0]["BillingDocument"] != pb.Result.Document {
		t.Fatalf("SAP holds billing items %v for order %s, want the two items of billing document %s", items, po.Result.Document, pb.Result.Document)
	}

	resp, err := httpClient(t).Get(base + "/sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ledger struct{ Documents []sim.LedgerDocument }
	if err := json.NewDecoder(resp.Body).Decode(&ledger); err != nil {
		t.Fatal(err)
	}
	if len(ledger.Documents) != 2 || ledger.Documents[1].Document != pb.Result.Document ||
		!slices.Equal(ledger.Documents[1].SalesDocuments, []string{po.Result.Document}) {
		t.Fatalf("simulator ledger %+v, want the order and one billing document of it", ledger.Documents)
	}
}
