package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	soColl   = SalesOrderServicePath + "/A_SalesOrder"
	bdColl   = BillingDocumentServicePath + "/A_BillingDocument"
	bdItems  = BillingDocumentServicePath + "/A_BillingDocumentItem"
	bdCancel = BillingDocumentServicePath + "/Cancel"
	bdAction = BillingDocumentV4Path + "/BillingDocument/SAP__self.CreateFromSDDocument"
)

// order is a sales order payload; mutate fields before rendering.
type order struct {
	Type, Org, Channel, Division, SoldTo, Assignment string
	Items                                            []orderItem
}

type orderItem struct{ Material, Quantity, Unit string }

func defaultOrder(assignment string) order {
	return order{Type: "OR", Org: "1010", Channel: "10", Division: "00", SoldTo: "10100001", Assignment: assignment,
		Items: []orderItem{{"TG11", "10", "PC"}, {"TG12", "2", "PC"}}}
}

func (o order) json() string {
	items := make([]map[string]any, len(o.Items))
	for i, it := range o.Items {
		items[i] = map[string]any{"SalesOrderItem": "", "Material": it.Material, "RequestedQuantity": it.Quantity, "RequestedQuantityUnit": it.Unit}
	}
	b, _ := json.Marshal(map[string]any{
		"SalesOrderType": o.Type, "SalesOrganization": o.Org, "DistributionChannel": o.Channel,
		"OrganizationDivision": o.Division, "SoldToParty": o.SoldTo, "PurchaseOrderByCustomer": "PO 4711",
		"RequestedDeliveryDate": edmDateJSON(2026, 12, 2), "AssignmentReference": o.Assignment,
		"to_Item": map[string]any{"results": items},
	})
	return string(b)
}

func (h *harness) post(path, body string) (*http.Response, []byte) {
	h.t.Helper()
	if h.tok == "" {
		h.fetchToken()
	}
	return h.mustRequest(http.MethodPost, path, []byte(body), map[string]string{
		"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": h.tok,
	})
}

// createOrder posts an order and returns its number.
func (h *harness) createOrder(o order) string {
	h.t.Helper()
	resp, b := h.post(soColl, o.json())
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("create order: %d %s", resp.StatusCode, b)
	}
	no, _ := dig(decodeJSON(h.t, b), "d", "SalesOrder").(string)
	return no
}

func billBody(control map[string]any, docs ...string) string {
	refs := make([]map[string]any, len(docs))
	for i, d := range docs {
		refs[i] = map[string]any{"SDDocument": d}
	}
	body := map[string]any{"_Reference": refs}
	if control != nil {
		body["_Control"] = control
	}
	b, _ := json.Marshal(body)
	return string(b)
}

func TestSalesOrderIsCreatedPricedAndFoundByAssignment(t *testing.T) {
	h := newHarness(t, Options{})
	resp, b := h.post(soColl, defaultOrder("SQREF1").json())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	d := decodeJSON(t, b)
	if no := dig(d, "d", "SalesOrder"); no != "1" {
		t.Errorf("SalesOrder = %v, want 1 (numbers without leading zeros, as Gateway renders them)", no)
	}
	if got := dig(d, "d", "TotalNetAmount"); got != "330.00" {
		t.Errorf("TotalNetAmount = %v, want 10 x 25.00 + 2 x 40.00", got)
	}
	if got := dig(d, "d", "to_Item", "results", 1, "SalesOrderItem"); got != "20" {
		t.Errorf("second item %v, want number 20", got)
	}
	var msg struct{ Code, Message, Severity string }
	if err := json.Unmarshal([]byte(resp.Header.Get("sap-message")), &msg); err != nil || msg.Code != "V1/311" || !strings.Contains(msg.Message, "1 has been saved") {
		t.Errorf("sap-message %q (%v)", resp.Header.Get("sap-message"), err)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/A_SalesOrder('1')") {
		t.Errorf("Location %q", loc)
	}
	code, found := h.getJSON(soColl + query(url.Values{"$filter": {"AssignmentReference eq 'SQREF1'"}, "$expand": {"to_Item"}}))
	if code != http.StatusOK || len(results(found)) != 1 || dig(results(found)[0], "to_Item", "results", 0, "Material") != "TG11" {
		t.Errorf("look-up: %d %v", code, found)
	}
	if l := h.sim.Ledger(); len(l) != 1 || l[0].Kind != KindSalesOrder || l[0].Document != "1" || l[0].Reference != "SQREF1" {
		t.Errorf("ledger %+v", l)
	}
}

// SAP does not de-duplicate OData creates: the same request twice is two
// orders. Only a client's look-up guards against it.
func TestRepeatedSalesOrderRequestCreatesASecondOrder(t *testing.T) {
	h := newHarness(t, Options{})
	first, second := h.createOrder(defaultOrder("SQREF2")), h.createOrder(defaultOrder("SQREF2"))
	if first == second {
		t.Fatalf("both requests answered order %s", first)
	}
	if n := h.sim.CountByReference("SQREF2"); n != 2 {
		t.Errorf("%d orders carry the reference, want 2", n)
	}
	_, found := h.getJSON(soColl + query(url.Values{"$filter": {"AssignmentReference eq 'SQREF2'"}}))
	if len(results(found)) != 2 {
		t.Errorf("look-up found %d orders, want both", len(results(found)))
	}
}

func TestSalesOrderRulesUseSAPsMessages(t *testing.T) {
	md := DefaultMasterData()
	md.Materials["TG99"] = Material{BaseUnit: "PC", Price: "1.00", Plants: []string{"1710"}} // a plant of no sales area
	h := newHarness(t, Options{MasterData: md})
	cases := []struct {
		name   string
		mutate func(o *order)
		status int
		code   string
	}{
		{"unknown sold-to party", func(o *order) { o.SoldTo = "10199999" }, 400, "V1/390"},
		{"material not in the sales area", func(o *order) { o.Items[1].Material = "TG99" }, 400, "V1/188"},
		{"unknown material", func(o *order) { o.Items[0].Material = "NOPE" }, 400, "V1/188"},
		{"order type not allowed", func(o *order) { o.Type = "ZOR" }, 400, "V1/212"},
		{"unknown sales area", func(o *order) { o.Division = "99" }, 400, "V1/316"},
		{"unit other than the base unit", func(o *order) { o.Items[0].Unit = "KG" }, 400, "V1/102"},
		{"zero quantity", func(o *order) { o.Items[0].Quantity = "0" }, 400, "V1/349"},
		{"no items", func(o *order) { o.Items = nil }, 400, "00/055"},
		{"assignment too long", func(o *order) { o.Assignment = strings.Repeat("A", 19) }, 400, "SY/530"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := defaultOrder("SQBAD")
			c.mutate(&o)
			resp, b := h.post(soColl, o.json())
			if resp.StatusCode != c.status || odataCode(t, b) != c.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, b, c.status, c.code)
			}
		})
	}
	resp, b := h.post(soColl, strings.Replace(defaultOrder("SQBAD").json(), `"Material"`, `"Product"`, 1))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "Product") {
		t.Errorf("unknown item property: %d %s", resp.StatusCode, b)
	}
	if n := len(h.sim.Ledger()); n != 0 {
		t.Errorf("%d documents saved for refused orders", n)
	}
	if st := h.sim.Stats(); st.Rejected[KindSalesOrder] != len(cases)-1 {
		t.Errorf("rejected %d, want %d (length errors are the gateway's)", st.Rejected[KindSalesOrder], len(cases)-1)
	}
}

func TestSalesOrderGoesThroughThePostingPipeline(t *testing.T) {
	h := newHarness(t, Options{})
	resp, _ := h.mustRequest(http.MethodPost, soColl, []byte(defaultOrder("SQX").json()), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-CSRF-Token") != "Required" {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	mustSetFaults(t, h.sim, Faults{Next: []FaultKind{FaultLock, FaultAmbiguous}})
	resp, b := h.post(soColl, defaultOrder("SQLOCK").json())
	if resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "MC/601" || h.sim.CountByReference("SQLOCK") != 0 {
		t.Errorf("lock: %d %s", resp.StatusCode, b)
	}
	if resp, err := h.request(http.MethodPost, soColl, []byte(defaultOrder("SQLOST").json()), map[string]string{
		"Content-Type": "application/json", "X-CSRF-Token": h.tok,
	}); err == nil {
		resp.Body.Close()
		t.Errorf("ambiguous: got an answer %d, want the connection dropped", resp.StatusCode)
	}
	if n := h.sim.CountByReference("SQLOST"); n != 1 {
		t.Errorf("ambiguous: %d orders saved, want 1 whose answer was lost", n)
	}
	if st := h.sim.Stats(); st.Attempts[KindSalesOrder] != 2 {
		t.Errorf("attempts %d", st.Attempts[KindSalesOrder])
	}
}

func TestOpenSalesOrdersAreSeeded(t *testing.T) {
	h := newHarness(t, Options{OpenSalesOrders: 3})
	code, d := h.getJSON(soColl + "('3')")
	if code != http.StatusOK || dig(d, "d", "SoldToParty") != "10100001" {
		t.Fatalf("order 3: %d %v", code, d)
	}
	if n := len(h.sim.Ledger()); n != 0 {
		t.Errorf("seeded orders are in the ledger: %d", n)
	}
	if no := h.createOrder(defaultOrder("SQNEXT")); no != "4" {
		t.Errorf("next order %s, want 4", no)
	}
}

func TestBillingDocumentIsCreatedByTheV4Action(t *testing.T) {
	h := newHarness(t, Options{})
	so := h.createOrder(defaultOrder("SQB1"))

	// V4's CSRF token comes from its own service root.
	resp, b := h.mustRequest(http.MethodGet, BillingDocumentV4Path+"/", nil, map[string]string{"X-CSRF-Token": "Fetch"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-CSRF-Token") == "" || resp.Header.Get("OData-Version") != "4.0" {
		t.Fatalf("V4 root: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	h.tok = resp.Header.Get("X-CSRF-Token")

	resp, b = h.post(bdAction, billBody(map[string]any{"DefaultBillingDocumentDate": "2026-11-25", "DefaultBillingDocumentType": "F2"}, so))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bill: %d %s", resp.StatusCode, b)
	}
	d := decodeJSON(t, b)
	doc := dig(d, "value", 0)
	if dig(doc, "BillingDocument") != "90000000" || dig(doc, "CompanyCode") != "1010" || dig(doc, "FiscalYear") != "2026" ||
		dig(doc, "BillingDocumentDate") != "2026-11-25" || dig(doc, "TotalNetAmount") != 330.0 {
		t.Errorf("value %v", doc)
	}
	var msgs []struct {
		Code, Message   string
		NumericSeverity int
	}
	if err := json.Unmarshal([]byte(resp.Header.Get("sap-messages")), &msgs); err != nil || len(msgs) != 1 || msgs[0].Code != "V1/311" || msgs[0].NumericSeverity != 1 {
		t.Errorf("sap-messages %q (%v)", resp.Header.Get("sap-messages"), err)
	}
	l := h.sim.Ledger()
	if len(l) != 2 || l[1].Kind != KindBillingDocument || l[1].Document != "90000000" || len(l[1].SalesDocuments) != 1 || l[1].SalesDocuments[0] != so {
		t.Errorf("ledger %+v", l)
	}

	// The V2 read service shows it to look-ups by the billed order.
	code, items := h.getJSON(bdItems + query(url.Values{"$filter": {"ReferenceSDDocument eq '" + so + "'"}}))
	if code != http.StatusOK || len(results(items)) != 2 || dig(results(items)[0], "BillingDocument") != "90000000" {
		t.Errorf("items by reference: %d %v", code, items)
	}
	code, hdr := h.getJSON(bdColl + query(url.Values{"$filter": {"BillingDocument eq '90000000'"}, "$expand": {"to_Item"}}))
	if code != http.StatusOK || len(results(hdr)) != 1 || dig(results(hdr)[0], "BillingDocumentIsCancelled") != false ||
		dig(results(hdr)[0], "to_Item", "results", 1, "ReferenceSDDocumentItem") != "20" {
		t.Errorf("header: %d %v", code, hdr)
	}
	_, order := h.getJSON(soColl + "('" + so + "')")
	if dig(order, "d", "OverallSDProcessStatus") != "C" {
		t.Errorf("billed order status %v, want completed", dig(order, "d", "OverallSDProcessStatus"))
	}
	if n := h.sim.CountBillingDocuments("000000000" + so); n != 1 {
		t.Errorf("CountBillingDocuments = %d", n)
	}
}

func TestBillingRulesUseSAPsMessages(t *testing.T) {
	h := newHarness(t, Options{OpenSalesOrders: 3})
	resp, b := h.post(bdAction, billBody(nil, "1"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bill 1: %d %s", resp.StatusCode, b)
	}
	cases := []struct {
		name, body, code string
	}{
		{"order already billed", billBody(nil, "1"), "VF/016"},
		{"already billed, one of two", billBody(nil, "2", "0000000001"), "VF/016"},
		{"unknown order", billBody(nil, "999"), "VF/010"},
		{"billing type not defined", billBody(map[string]any{"DefaultBillingDocumentType": "ZF9"}, "2"), "VF/051"},
		{"closed period", billBody(map[string]any{"DefaultBillingDocumentDate": "2026-06-30"}, "2"), "F5/201"},
		{"no orders", billBody(nil), "00/055"},
		{"unknown parameter", `{"_Reference":[{"SDDocument":"2","Amount":1}]}`, "SY/530"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := h.post(bdAction, c.body)
			var e struct {
				Error struct {
					Code, Message string
					Details       []map[string]any
				}
			}
			if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Error.Code != c.code {
				t.Fatalf("%d %s, want 400 %s (%v)", resp.StatusCode, b, c.code, err)
			}
			if len(e.Error.Details) == 0 || e.Error.Details[0]["@SAP__common.numericSeverity"] != 4.0 || e.Error.Details[0]["code"] != c.code {
				t.Errorf("details %v, want the message with numeric severity 4", e.Error.Details)
			}
		})
	}
	if n := h.sim.CountBillingDocuments("2"); n != 0 {
		t.Errorf("order 2 billed %d times by refused requests", n)
	}
}

// Orders of different customers go into one billing document each, as
// SAP's billing split does.
func TestBillingSplitsBySoldToParty(t *testing.T) {
	h := newHarness(t, Options{})
	a := h.createOrder(defaultOrder("SQA"))
	other := defaultOrder("SQB")
	other.SoldTo = "10100002"
	b, c := h.createOrder(other), h.createOrder(defaultOrder("SQC"))
	resp, body := h.post(bdAction, billBody(nil, a, b, c))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bill: %d %s", resp.StatusCode, body)
	}
	docs, _ := dig(decodeJSON(t, body), "value").([]any)
	if len(docs) != 2 || h.sim.CountBillingDocuments(a, c) != 1 || h.sim.CountBillingDocuments(b) != 1 {
		t.Errorf("documents %v, ledger %+v", docs, h.sim.Ledger())
	}
}

func TestBillingDocumentCancel(t *testing.T) {
	h := newHarness(t, Options{OpenSalesOrders: 1})
	if resp, b := h.post(bdAction, billBody(nil, "1")); resp.StatusCode != http.StatusOK {
		t.Fatalf("bill: %d %s", resp.StatusCode, b)
	}
	resp, b := h.post(bdCancel+"?BillingDocument='90000000'", "")
	if resp.StatusCode != http.StatusOK || dig(results(decodeJSON(t, b))[0], "CancellationBillingDocument") != "90000001" {
		t.Fatalf("cancel: %d %s", resp.StatusCode, b)
	}
	_, hdr := h.getJSON(bdColl + "('90000000')")
	_, cancellation := h.getJSON(bdColl + "('90000001')")
	if dig(hdr, "d", "BillingDocumentIsCancelled") != true || dig(cancellation, "d", "CancelledBillingDocument") != "90000000" ||
		dig(cancellation, "d", "BillingDocumentType") != "S1" {
		t.Errorf("after cancel: %v / %v", hdr, cancellation)
	}
	if resp, b := h.post(bdCancel+"?BillingDocument='90000000'", ""); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "VF/009" {
		t.Errorf("cancel twice: %d %s", resp.StatusCode, b)
	}
	// The order is open for billing again; a new invoice bills it.
	if resp, b := h.post(bdAction, billBody(nil, "1")); resp.StatusCode != http.StatusOK || dig(decodeJSON(t, b), "value", 0, "BillingDocument") != "90000002" {
		t.Fatalf("bill again: %d %s", resp.StatusCode, b)
	}
	if n := h.sim.CountBillingDocuments("1"); n != 2 {
		t.Errorf("%d billing documents for order 1, want the cancelled one and the new one", n)
	}
	rev, err := h.sim.Reverse(KindBillingDocument, "1010", "90000002", "2026")
	if err != nil || rev != "90000003" {
		t.Errorf("Reverse = %s, %v", rev, err)
	}
	for _, d := range h.sim.Ledger() {
		if d.Document == "90000002" && d.ReversedBy != "90000003" {
			t.Errorf("ledger entry %+v not marked reversed", d)
		}
	}
}

func TestBillingGoesThroughThePostingPipeline(t *testing.T) {
	h := newHarness(t, Options{OpenSalesOrders: 2})
	resp, _ := h.mustRequest(http.MethodPost, bdAction, []byte(billBody(nil, "1")), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-CSRF-Token") != "Required" {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	mustSetFaults(t, h.sim, Faults{Next: []FaultKind{FaultLock, FaultServerError, FaultAmbiguous, FaultAmbiguous}})
	resp, b := h.post(bdAction, billBody(nil, "1"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"code":"MC/601"`) || !strings.Contains(string(b), "numericSeverity") {
		t.Errorf("lock: %d %s, want a V4 error", resp.StatusCode, b)
	}
	resp, b = h.post(bdAction, billBody(nil, "1"))
	if resp.StatusCode != http.StatusInternalServerError || h.sim.CountBillingDocuments("1") != 1 {
		t.Errorf("server error after commit: %d %s", resp.StatusCode, b)
	}
	if resp, err := h.request(http.MethodPost, bdAction, []byte(billBody(nil, "2")), map[string]string{
		"Content-Type": "application/json", "X-CSRF-Token": h.tok,
	}); err == nil {
		resp.Body.Close()
		t.Errorf("ambiguous: got an answer %d, want the connection dropped", resp.StatusCode)
	}
	resp, b = h.post(bdAction, billBody(nil, "2"))
	if resp.StatusCode != http.StatusGatewayTimeout || h.sim.CountBillingDocuments("2") != 1 {
		t.Errorf("ambiguous resend: %d %s; want a 504 and still one billing document (SAP refused the second)", resp.StatusCode, b)
	}
	if st := h.sim.Stats(); st.Attempts[KindBillingDocument] != 4 || st.Rejected[KindBillingDocument] != 1 {
		t.Errorf("stats %+v", st)
	}
}
