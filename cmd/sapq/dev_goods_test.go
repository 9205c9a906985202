package main

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks/taskstest"
)

// An agent's goods movements through the front door: a receipt through a
// real MCP client, posted once in SAP with sapq's reference leading the
// header text; an issue the stock does not cover failing with SAP's
// M7/021; a posting with bad fields refused with each field named and
// nothing recorded.
func TestDevGoodsMovements(t *testing.T) {
	const token = "e2e-goods-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword) // to read back what SAP stored
	base := startDev(t, token, false)
	cs := connect(t, base+"/mcp", token)

	receipt := taskstest.GoodsMovement("e2e-gm-1")
	receipt.HeaderText = "dock <2>"
	var gm submitted
	call(t, cs, "submit_goods_movement", receipt, &gm)
	var replay submitted
	call(t, cs, "submit_goods_movement", receipt, &replay)
	if gm.Kind != "goods_movement" || gm.Status != "queued" || replay.JobID != gm.JobID || !replay.Replayed {
		t.Fatalf("submit_goods_movement = %+v, then %+v", gm, replay)
	}
	pg := awaitPosting(t, cs, gm.JobID)
	if pg.Status != "succeeded" || pg.Result.Document == "" || pg.Result.FiscalYear != taskstest.Today()[:4] {
		t.Fatalf("goods movement ended %s: %+v %+v", pg.Status, pg.Result, pg.Error)
	}
	text := sap.GoodsMovementHeaderText(devRef(t, receipt), receipt.HeaderText)
	docs := simRead(t, base, sim.MaterialDocumentServicePath+"/A_MaterialDocumentHeader", "MaterialDocumentHeaderText eq '"+text+"'")
	if len(docs) != 1 || docs[0]["MaterialDocument"] != pg.Result.Document || docs[0]["ReferenceDocument"] != receipt.Reference ||
		docs[0]["MaterialDocumentHeaderText"] != text || docs[0]["GoodsMovementCode"] != "05" {
		t.Fatalf("SAP holds material documents %v, want one, number %s, header text %q", docs, pg.Result.Document, text)
	}
	items := simRead(t, base, sim.MaterialDocumentServicePath+"/A_MaterialDocumentItem",
		"MaterialDocument eq '"+pg.Result.Document+"' and MaterialDocumentYear eq '"+pg.Result.FiscalYear+"'")
	if len(items) != 2 || items[0]["QuantityInEntryUnit"] != "10.000" || items[1]["Material"] != "TG12" || items[0]["MaterialDocumentItemText"] != "pallet 1" {
		t.Fatalf("SAP holds items %v", items)
	}

	short := taskstest.GoodsIssue("e2e-gi-short", "TG12", "203") // 200 at start and 2 received
	var gi submitted
	call(t, cs, "submit_goods_movement", short, &gi)
	pi := awaitPosting(t, cs, gi.JobID)
	if pi.Status != "failed" || pi.Error == nil || pi.Error.Code != "M7/021" || pi.Error.Category != "permanent" ||
		!strings.Contains(pi.Error.Message, "Deficit of SL Unrestricted-use 1 PC : TG12 1010 101A") || pi.Result != nil {
		t.Fatalf("short issue ended %s: %+v %+v", pi.Status, pi.Result, pi.Error)
	}

	bad := taskstest.GoodsMovement("e2e-gm-bad")
	bad.HeaderText, bad.Items[1].Quantity = "more than eight", "2.5"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "submit_goods_movement", Arguments: bad})
	if err != nil {
		t.Fatal(err)
	}
	var msg strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			msg.WriteString(tc.Text)
		}
	}
	if !res.IsError || !strings.Contains(msg.String(), "nothing was recorded") || !strings.Contains(msg.String(), "header_text") ||
		!strings.Contains(msg.String(), "items[1].quantity") {
		t.Fatalf("bad goods movement answered %v: %s", res.IsError, msg.String())
	}
	var list struct {
		Postings []struct {
			JobID string `json:"job_id"`
		} `json:"postings"`
	}
	call(t, cs, "list_postings", map[string]any{"kind": "goods_movement"}, &list)
	if len(list.Postings) != 2 {
		t.Fatalf("list_postings holds %d goods movements, want the receipt and the short issue", len(list.Postings))
	}
}
