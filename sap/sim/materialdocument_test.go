package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	mdColl   = MaterialDocumentServicePath + "/A_MaterialDocumentHeader"
	mdItems  = MaterialDocumentServicePath + "/A_MaterialDocumentItem"
	mdCancel = MaterialDocumentServicePath + "/Cancel"
)

// movement is a material document payload; mutate fields before rendering.
type movement struct {
	Code, HeaderText string
	Items            []movementItem
}

type movementItem struct {
	Material, Plant, StorageLocation, Type, Quantity, Unit, CostCenter, PurchaseOrder string
}

func receipt(headerText string, items ...movementItem) movement {
	if len(items) == 0 {
		items = []movementItem{{"TG11", "1010", "101A", "501", "10", "PC", "", ""}}
	}
	return movement{Code: "05", HeaderText: headerText, Items: items}
}

func issue(headerText, material, quantity string) movement {
	return movement{Code: "03", HeaderText: headerText, Items: []movementItem{{material, "1010", "101A", "201", quantity, "PC", "10101101", ""}}}
}

func (m movement) json() string {
	items := make([]map[string]any, len(m.Items))
	for i, it := range m.Items {
		items[i] = map[string]any{"Material": it.Material, "Plant": it.Plant, "StorageLocation": it.StorageLocation,
			"GoodsMovementType": it.Type, "QuantityInEntryUnit": it.Quantity, "EntryUnit": it.Unit}
		if it.CostCenter != "" {
			items[i]["CostCenter"] = it.CostCenter
		}
		if it.PurchaseOrder != "" {
			items[i]["PurchaseOrder"], items[i]["PurchaseOrderItem"], items[i]["GoodsMovementRefDocType"] = it.PurchaseOrder, "10", "B"
		}
	}
	b, _ := json.Marshal(map[string]any{
		"GoodsMovementCode": m.Code, "PostingDate": edmDateJSON(2026, 11, 25), "DocumentDate": edmDateJSON(2026, 11, 24),
		"MaterialDocumentHeaderText": m.HeaderText, "ReferenceDocument": "DN-1",
		"to_MaterialDocumentItem": map[string]any{"results": items},
	})
	return string(b)
}

// postMovement posts a goods movement and returns its document number.
func (h *harness) postMovement(m movement) string {
	h.t.Helper()
	resp, b := h.post(mdColl, m.json())
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("post goods movement: %d %s", resp.StatusCode, b)
	}
	no, _ := dig(decodeJSON(h.t, b), "d", "MaterialDocument").(string)
	if no == "" {
		h.t.Fatalf("no material document number in %s", b)
	}
	return no
}

func byHeaderText(text string) string {
	return mdColl + query(url.Values{"$filter": {"MaterialDocumentHeaderText eq '" + text + "'"}, "$expand": {"to_MaterialDocumentItem"}})
}

func TestGoodsMovementMovesStock(t *testing.T) {
	h := newHarness(t, Options{})
	if got := h.sim.Stock("TG11", "1010", "101A"); got != "500" {
		t.Fatalf("stock at start %s, want the master data's 500", got)
	}
	resp, b := h.post(mdColl, receipt("SQREF0000000001 dock", movementItem{"TG11", "1010", "101A", "501", "10", "PC", "", ""},
		movementItem{"tg12", "1010", "101B", "501", "2.000", "PC", "", ""}).json())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("receipt: %d %s", resp.StatusCode, b)
	}
	d := decodeJSON(t, b)
	if dig(d, "d", "MaterialDocument") != "4900000001" || dig(d, "d", "MaterialDocumentYear") != "2026" ||
		!strings.Contains(resp.Header.Get("sap-message"), "4900000001") || resp.Header.Get("Location") == "" {
		t.Fatalf("receipt answer %s, sap-message %q", b, resp.Header.Get("sap-message"))
	}
	if got := h.sim.Stock("TG11", "1010", "101A"); got != "510" {
		t.Errorf("TG11 in 101A %s after receiving 10, want 510", got)
	}
	if got := h.sim.Stock("TG12", "1010", "101B"); got != "2" {
		t.Errorf("TG12 in 101B %s after receiving 2, want 2", got)
	}
	h.postMovement(issue("SQREF0000000002", "TG11", "500"))
	if got := h.sim.Stock("TG11", "1010", "101A"); got != "10" {
		t.Errorf("TG11 in 101A %s after issuing 500, want 10", got)
	}

	code, hdr := h.getJSON(byHeaderText("SQREF0000000001 dock"))
	rows := results(hdr)
	if code != http.StatusOK || len(rows) != 1 || dig(rows[0], "ReferenceDocument") != "DN-1" {
		t.Fatalf("look-up by header text: %d %v", code, hdr)
	}
	items := dig(rows[0], "to_MaterialDocumentItem", "results").([]any)
	if len(items) != 2 || dig(items[1], "Material") != "TG12" || dig(items[1], "QuantityInEntryUnit") != "2.000" ||
		dig(items[1], "GoodsMovementIsCancelled") != false || dig(items[1], "DebitCreditCode") != "S" {
		t.Fatalf("items %v", items)
	}
	code, one := h.getJSON(mdColl + "(MaterialDocumentYear='2026',MaterialDocument='4900000002')")
	if code != http.StatusOK || dig(one, "d", "GoodsMovementCode") != "03" {
		t.Fatalf("read by key: %d %v", code, one)
	}
	code, its := h.getJSON(mdItems + query(url.Values{"$filter": {"MaterialDocument eq '4900000002' and MaterialDocumentYear eq '2026'"}}))
	if code != http.StatusOK || len(results(its)) != 1 || dig(results(its)[0], "DebitCreditCode") != "H" || dig(results(its)[0], "CostCenter") != "10101101" {
		t.Fatalf("items by document: %d %v", code, its)
	}
	if n := h.sim.CountByReference("SQREF0000000001"); n != 1 {
		t.Errorf("ledger holds %d documents under the header text's reference, want 1", n)
	}
}

// A goods issue the stock does not cover is refused with M7/021, and
// nothing of the document is posted, not even its covered items.
func TestGoodsIssueBelowZeroIsRefused(t *testing.T) {
	h := newHarness(t, Options{})
	m := receipt("SQDEFICIT", movementItem{"TG12", "1010", "101A", "201", "150", "PC", "10101101", ""},
		movementItem{"TG12", "1010", "101A", "201", "60", "PC", "10101101", ""})
	m.Code = "03"
	resp, b := h.post(mdColl, m.json())
	if resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/021" ||
		!strings.Contains(string(b), "Deficit of SL Unrestricted-use 10 PC : TG12 1010 101A") {
		t.Fatalf("issue of 210 from 200: %d %s", resp.StatusCode, b)
	}
	if got := h.sim.Stock("TG12", "1010", "101A"); got != "200" {
		t.Errorf("stock %s after a refused issue, want 200 untouched", got)
	}
	if st := h.sim.Stats(); st.Posted[KindGoodsMovement] != 0 || st.Rejected[KindGoodsMovement] != 1 || len(h.sim.Ledger()) != 0 {
		t.Errorf("stats %+v, ledger %v", st, h.sim.Ledger())
	}
	// An issue may use what an earlier item of the same document received.
	m = receipt("SQTRANSIT", movementItem{"TG11", "1010", "101B", "501", "5", "PC", "", ""},
		movementItem{"TG11", "1010", "101B", "551", "5", "PC", "10101102", ""})
	m.Code = "03"
	if resp, b := h.post(mdColl, m.json()); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/096" {
		t.Fatalf("501 under code 03: %d %s", resp.StatusCode, b)
	}
}

func TestGoodsMovementRefusesBadData(t *testing.T) {
	h := newHarness(t, Options{})
	for name, c := range map[string]struct {
		m    movement
		code string
	}{
		"unknown material":          {receipt("x", movementItem{"ZZ99", "1010", "101A", "501", "1", "PC", "", ""}), "M7/001"},
		"unknown plant":             {receipt("x", movementItem{"TG11", "9999", "101A", "501", "1", "PC", "", ""}), "M7/045"},
		"unknown storage location":  {receipt("x", movementItem{"TG11", "1010", "999X", "501", "1", "PC", "", ""}), "M7/058"},
		"no storage location":       {receipt("x", movementItem{"TG11", "1010", "", "501", "1", "PC", "", ""}), "00/055"},
		"unknown movement type":     {receipt("x", movementItem{"TG11", "1010", "101A", "311", "1", "PC", "", ""}), "M7/096"},
		"wrong unit":                {receipt("x", movementItem{"TG11", "1010", "101A", "501", "1", "KG", "", ""}), "M7/064"},
		"fraction of a piece":       {receipt("x", movementItem{"TG11", "1010", "101A", "501", "1.5", "PC", "", ""}), "M7/091"},
		"zero quantity":             {receipt("x", movementItem{"TG11", "1010", "101A", "501", "0", "PC", "", ""}), "M7/006"},
		"receipt for PO without":    {movement{Code: "01", Items: []movementItem{{"TG11", "1010", "101A", "101", "1", "PC", "", ""}}}, "00/055"},
		"issue without cost center": {movement{Code: "03", Items: []movementItem{{"TG11", "1010", "101A", "201", "1", "PC", "", ""}}}, "00/055"},
		"unknown cost center":       {movement{Code: "03", Items: []movementItem{{"TG11", "1010", "101A", "201", "1", "PC", "99999999", ""}}}, "KI/248"},
		"unknown code":              {movement{Code: "09", Items: []movementItem{{"TG11", "1010", "101A", "501", "1", "PC", "", ""}}}, "M7/226"},
	} {
		resp, b := h.post(mdColl, c.m.json())
		if resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != c.code {
			t.Errorf("%s: %d %s, want 400 %s", name, resp.StatusCode, b, c.code)
		}
	}
	if resp, b := h.post(mdColl, strings.Replace(receipt("x").json(), `"EntryUnit"`, `"Unit"`, 1)); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "SY/530" {
		t.Errorf("unknown item property: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.post(mdColl, receipt(strings.Repeat("x", 26)).json()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "MaterialDocumentHeaderText") {
		t.Errorf("header text of 26: %d %s", resp.StatusCode, b)
	}
	// Open periods follow the clock (November 2026): September is closed.
	m := receipt("x")
	body := strings.Replace(m.json(), edmDateJSON(2026, 11, 25), edmDateJSON(2026, 9, 30), 1)
	if resp, b := h.post(mdColl, body); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/053" ||
		!strings.Contains(string(b), "periods 2026/11 and 2026/10 in company code 1010") {
		t.Errorf("closed period: %d %s", resp.StatusCode, b)
	}
	if len(h.sim.Ledger()) != 0 || h.sim.Stock("TG11", "1010", "101A") != "500" {
		t.Errorf("refusals posted: ledger %v", h.sim.Ledger())
	}
}

func TestMaterialDocumentCancel(t *testing.T) {
	h := newHarness(t, Options{})
	no := h.postMovement(receipt("SQCANCEL00000001 x", movementItem{"TG11", "1010", "101B", "501", "7", "PC", "", ""}))
	if got := h.sim.Stock("TG11", "1010", "101B"); got != "7" {
		t.Fatalf("stock %s after receipt", got)
	}
	resp, b := h.post(mdCancel+"?MaterialDocumentYear='2026'&MaterialDocument='"+no+"'", "")
	cancellation, _ := dig(decodeJSON(t, b), "d", "MaterialDocument").(string)
	if resp.StatusCode != http.StatusOK || cancellation == "" || cancellation == no {
		t.Fatalf("cancel: %d %s", resp.StatusCode, b)
	}
	if got := h.sim.Stock("TG11", "1010", "101B"); got != "0" {
		t.Errorf("stock %s after the receipt was cancelled, want 0", got)
	}
	code, hdr := h.getJSON(byHeaderText("SQCANCEL00000001 x"))
	rows := results(hdr)
	if code != http.StatusOK || len(rows) != 2 {
		t.Fatalf("look-up by header text: %d %v; want the original and its cancellation", code, hdr)
	}
	orig := dig(rows[0], "to_MaterialDocumentItem", "results").([]any)[0]
	canc := dig(rows[1], "to_MaterialDocumentItem", "results").([]any)[0]
	if dig(orig, "GoodsMovementIsCancelled") != true || dig(canc, "ReversedMaterialDocument") != no ||
		dig(canc, "GoodsMovementType") != "502" || dig(canc, "DebitCreditCode") != "H" {
		t.Fatalf("original item %v, cancellation item %v", orig, canc)
	}
	if resp, b := h.post(mdCancel+"?MaterialDocumentYear='2026'&MaterialDocument='"+no+"'", ""); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/427" {
		t.Errorf("second cancel: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.post(mdCancel+"?MaterialDocumentYear='2026'&MaterialDocument='"+cancellation+"'", ""); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/428" {
		t.Errorf("cancel of the cancellation: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.post(mdCancel+"?MaterialDocumentYear='2026'&MaterialDocument='4999999999'", ""); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M7/076" {
		t.Errorf("cancel of an unknown document: %d %s", resp.StatusCode, b)
	}
	var orig2, rev *LedgerDocument
	for _, d := range h.sim.Ledger() {
		switch {
		case d.Document == no:
			orig2 = &d
		case d.Document == cancellation:
			rev = &d
		}
	}
	if orig2 == nil || orig2.ReversedBy != cancellation || rev == nil || rev.Reverses != no || h.sim.CountByReference("SQCANCEL00000001") != 1 {
		t.Errorf("ledger %+v", h.sim.Ledger())
	}

	// What was received and issued since cannot be cancelled: the stock
	// would go below zero.
	no = h.postMovement(receipt("SQCANCEL2", movementItem{"TG12", "1010", "101B", "501", "4", "PC", "", ""}))
	h.postMovement(movement{Code: "03", Items: []movementItem{{"TG12", "1010", "101B", "551", "3", "PC", "10101101", ""}}})
	if _, err := h.sim.Reverse(KindGoodsMovement, "1010", no, "2026"); err == nil || !strings.Contains(err.Error(), "M7/021") {
		t.Errorf("cancel of a receipt issued since: %v, want M7/021", err)
	}
	if got := h.sim.Stock("TG12", "1010", "101B"); got != "1" {
		t.Errorf("stock %s after the refused cancel, want 1", got)
	}
}

// A movement of a storage location a warehouse manages is posted, but
// SAP's 201 carries no material document number, only the delivery.
func TestGoodsMovementOfAWarehouseAnswersWithoutNumber(t *testing.T) {
	md := DefaultMasterData()
	md.Plants["1010"] = Plant{CompanyCode: "1010", StorageLocations: []string{"101A", "101B"}, WarehouseStorageLocations: []string{"101B"}}
	h := newHarness(t, Options{MasterData: md})
	resp, b := h.post(mdColl, receipt("SQWAREHOUSE00001", movementItem{"TG11", "1010", "101B", "501", "3", "PC", "", ""}).json())
	if resp.StatusCode != http.StatusCreated || dig(decodeJSON(t, b), "d", "MaterialDocument") != "" {
		t.Fatalf("warehouse receipt: %d %s", resp.StatusCode, b)
	}
	var msg struct{ Code, Message, Severity string }
	if err := json.Unmarshal([]byte(resp.Header.Get("sap-message")), &msg); err != nil || msg.Code != "L9/514" || msg.Severity != "info" || !strings.Contains(msg.Message, "Delivery 180000001") {
		t.Fatalf("sap-message %q (%v)", resp.Header.Get("sap-message"), err)
	}
	code, hdr := h.getJSON(byHeaderText("SQWAREHOUSE00001"))
	if code != http.StatusOK || len(results(hdr)) != 1 || dig(results(hdr)[0], "MaterialDocument") != "4900000001" || h.sim.Stock("TG11", "1010", "101B") != "3" {
		t.Fatalf("the movement is posted all the same: %d %v", code, hdr)
	}
}

// SAP's enqueue locks a material's plant data while it posts a movement
// of it.
func TestGoodsMovementLocksTheMaterialInItsPlant(t *testing.T) {
	got := materialDocumentObjects([]byte(receipt("x", movementItem{"tg11", "1010", "101A", "501", "1", "PC", "", ""}).json()))
	if len(got) != 1 || got[0] != "material/1010/TG11" {
		t.Fatalf("objects %v", got)
	}
}
