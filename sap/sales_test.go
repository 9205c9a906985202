package sap

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
)

func testSalesOrder() SalesOrder {
	return SalesOrder{
		AssignmentReference: "SQABCDEFGHIJKLMN",
		SalesOrderType:      "OR", SalesOrganization: "1010", DistributionChannel: "10", OrganizationDivision: "00",
		SoldToParty: "10100001", PurchaseOrderByCustomer: "PO 4711 Müller",
		RequestedDeliveryDate: time.Date(2024, 11, 22, 0, 0, 0, 0, time.UTC), // /Date(1732233600000)/
		Items: []SalesOrderItem{
			{Material: "TG11", RequestedQuantity: decimal.RequireFromString("10"), RequestedQuantityUnit: "PC"},
			{Material: "TG12", RequestedQuantity: decimal.RequireFromString("2.5"), RequestedQuantityUnit: "KG"},
		},
	}
}

// equalJSON reports whether two JSON documents hold the same values.
func equalJSON(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestPostSalesOrderSendsSAPsProperties(t *testing.T) {
	f := newFakeSAP(t)
	var gotBody []byte
	var gotReq *http.Request
	f.invoice = func(w http.ResponseWriter, r *http.Request, body []byte) {
		gotBody, gotReq = body, r
		w.Header().Set("sap-message", `{"code":"V1/311","message":"Standard Order 4711 has been saved","severity":"success","target":"","details":[]}`)
		writeJSON(w, http.StatusCreated, map[string]any{"d": map[string]any{"SalesOrder": "4711", "TotalNetAmount": "290.00"}})
	}
	doc, err := f.client().PostSalesOrder(context.Background(), testSalesOrder())
	if err != nil {
		t.Fatal(err)
	}
	want := Document{Number: "4711", Messages: []Message{{Code: "V1/311", Text: "Standard Order 4711 has been saved", Severity: "success"}}}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("doc = %+v, want %+v", doc, want)
	}
	if gotReq.URL.Path != "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder" || gotReq.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %v", gotReq.URL.Path, gotReq.Header)
	}
	if !equalJSON(t, gotBody, `{"SalesOrderType":"OR","SalesOrganization":"1010","DistributionChannel":"10",
		"OrganizationDivision":"00","SoldToParty":"10100001","PurchaseOrderByCustomer":"PO 4711 Müller",
		"RequestedDeliveryDate":"/Date(1732233600000)/","AssignmentReference":"SQABCDEFGHIJKLMN",
		"to_Item":{"results":[
		  {"SalesOrderItem":"10","Material":"TG11","RequestedQuantity":"10.00","RequestedQuantityUnit":"PC"},
		  {"SalesOrderItem":"20","Material":"TG12","RequestedQuantity":"2.50","RequestedQuantityUnit":"KG"}]}}`) {
		t.Errorf("body = %s", gotBody)
	}
	// Without a delivery date SAP proposes one: the property is left out.
	o := testSalesOrder()
	o.RequestedDeliveryDate = time.Time{}
	if _, err := f.client().PostSalesOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(gotBody), "RequestedDeliveryDate") {
		t.Errorf("body without a date: %s", gotBody)
	}
}

func TestSalesOrderErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   any
		cat    Category
		code   string
	}{
		{"sold-to party not in the sales area", 400, v2Error("V1/390", "Sold-to party 10199999 not maintained for sales area 1010 10 00"), Permanent, "V1/390"},
		{"order locked", 400, v2Error("V1/042", "Sales document 4711 is currently being processed by user BATCH_01"), Transient, "V1/042"},
		{"runtime error after commit", 500, v2Error("/IWBEP/CM_MGW_RT/004", "Runtime error"), Unknown, "/IWBEP/CM_MGW_RT/004"},
		{"created without a number", 201, map[string]any{"d": map[string]any{"SalesOrder": ""}}, Unknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSAP(t)
			f.invoice = func(w http.ResponseWriter, r *http.Request, body []byte) { writeJSON(w, c.status, c.body) }
			_, err := f.client().PostSalesOrder(context.Background(), testSalesOrder())
			assertError(t, err, c.cat, c.status, c.code)
		})
	}
	t.Run("invalid input is not sent", func(t *testing.T) {
		f := newFakeSAP(t)
		o := testSalesOrder()
		o.AssignmentReference, o.Items[1].RequestedQuantity = "", decimal.Zero
		_, err := f.client().PostSalesOrder(context.Background(), o)
		e := assertError(t, err, Permanent, 0, "")
		if !strings.Contains(e.Message, "AssignmentReference is required") || !strings.Contains(e.Message, "Items[1].RequestedQuantity") {
			t.Errorf("message %q", e.Message)
		}
		if _, _, posts := f.counts(); posts != 0 {
			t.Errorf("%d posts", posts)
		}
	})
}

func salesOrderRow(number string) map[string]any {
	return map[string]any{"SalesOrder": number, "SalesOrganization": "1010", "AssignmentReference": "SQABCDEFGHIJKLMN"}
}

func TestFindSalesOrder(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    any
		want    Match
		wantCat Category
	}{
		{name: "found", status: 200, body: results(salesOrderRow("4711")), want: Match{Found: true, Document: Document{Number: "4711"}}},
		{name: "not found", status: 200, body: results()},
		// Two orders with the reference (a guard that failed): the first
		// created is the posting's.
		{name: "two", status: 200, body: results(salesOrderRow("10000"), salesOrderRow("9999")), want: Match{Found: true, Document: Document{Number: "9999"}}},
		{name: "filter ignored", status: 200, body: results(map[string]any{"SalesOrder": "1", "SalesOrganization": "1010", "AssignmentReference": "SQOTHER"}), wantCat: Unknown},
		{name: "hit without number", status: 200, body: results(salesOrderRow("")), wantCat: Unknown},
		{name: "server error", status: 500, body: v2Error("/IWBEP/CM_MGW_RT/004", "Runtime error"), wantCat: Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSAP(t)
			var gotReq *http.Request
			f.find = func(w http.ResponseWriter, r *http.Request) {
				gotReq = r
				writeJSON(w, c.status, c.body)
			}
			m, err := f.client().FindSalesOrder(context.Background(), "1010", "SQABCDEFGHIJKLMN")
			if c.wantCat != 0 {
				assertError(t, err, c.wantCat, c.status, codeOf(err))
				return
			}
			if err != nil || !reflect.DeepEqual(m, c.want) {
				t.Fatalf("got %+v, %v; want %+v", m, err, c.want)
			}
			q := gotReq.URL.Query()
			if gotReq.URL.Path != "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder" ||
				q.Get("$filter") != "SalesOrganization eq '1010' and AssignmentReference eq 'SQABCDEFGHIJKLMN'" {
				t.Errorf("request %s ? %s", gotReq.URL.Path, gotReq.URL.RawQuery)
			}
		})
	}
}

// fakeBilling answers the V4 action with the given status and body.
func fakeBilling(t *testing.T, status int, body string, header map[string]string) (*fakeSAP, *[]byte, *http.Request) {
	f := newFakeSAP(t)
	var got []byte
	req := new(http.Request)
	f.invoice = func(w http.ResponseWriter, r *http.Request, b []byte) {
		got, *req = b, *r
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
	return f, &got, req
}

func TestPostBillingDocumentCallsTheV4Action(t *testing.T) {
	f, body, req := fakeBilling(t, 200,
		`{"@odata.context":"../$metadata#Collection(SAP__self.BillingDocument_Type)","value":[{"BillingDocument":"90000007","CompanyCode":"1010","FiscalYear":"2026","TotalNetAmount":290.00}]}`,
		map[string]string{"sap-messages": `[{"code":"V1/311","message":"Invoice 90000007 has been saved","numericSeverity":1,"target":"","transition":false},{"code":"VF/101","message":"Check the pricing","numericSeverity":3}]`})
	doc, err := f.client().PostBillingDocument(context.Background(), BillingDocument{
		SalesDocuments: []string{"1", "12"}, BillingDocumentType: "F2", BillingDate: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Document{Number: "90000007", CompanyCode: "1010", FiscalYear: "2026", Messages: []Message{
		{Code: "V1/311", Text: "Invoice 90000007 has been saved", Severity: "success"},
		{Code: "VF/101", Text: "Check the pricing", Severity: "warning"},
	}}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("doc = %+v, want %+v", doc, want)
	}
	if req.URL.Path != "/sap/opu/odata4/sap/api_billingdocument/srvd_a2x/sap/billingdocument/0001/BillingDocument/SAP__self.CreateFromSDDocument" {
		t.Errorf("path %s", req.URL.Path)
	}
	if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Accept") != "application/json" || req.Header.Get("X-Csrf-Token") == "" {
		t.Errorf("headers %v", req.Header)
	}
	if !equalJSON(t, *body, `{"_Control":{"DefaultBillingDocumentDate":"2026-11-25","DefaultBillingDocumentType":"F2","AutomPostingToAcctgIsDisabled":false},
		"_Reference":[{"SDDocument":"1"},{"SDDocument":"12"}]}`) {
		t.Errorf("body %s", *body)
	}
	// Without type and date SAP derives the type and takes today.
	if _, err := f.client().PostBillingDocument(context.Background(), BillingDocument{SalesDocuments: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	if !equalJSON(t, *body, `{"_Control":{"AutomPostingToAcctgIsDisabled":false},"_Reference":[{"SDDocument":"1"}]}`) {
		t.Errorf("body %s", *body)
	}
}

// A billing that SAP splits into several documents answers with the first
// and names the others.
func TestPostBillingDocumentSplit(t *testing.T) {
	f, _, _ := fakeBilling(t, 200, `{"value":[{"BillingDocument":"90000011","CompanyCode":"1010","FiscalYear":"2026"},{"BillingDocument":"90000010","CompanyCode":"1010","FiscalYear":"2026"}]}`, nil)
	doc, err := f.client().PostBillingDocument(context.Background(), BillingDocument{SalesDocuments: []string{"1", "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Number != "90000010" || len(doc.Messages) != 1 || !strings.Contains(doc.Messages[0].Text, "90000011") {
		t.Errorf("doc %+v", doc)
	}
}

func v4ErrorBody(code, text string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": code, "message": text, "target": "SDDocument",
		"details":    []any{map[string]any{"code": code, "message": text, "target": "SDDocument", "@SAP__common.numericSeverity": 4}},
		"innererror": map[string]any{"ErrorDetails": map[string]any{"@SAP__common.TransactionId": "0123"}},
	}})
	return string(b)
}

func TestBillingDocumentErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		cat    Category
		code   string
	}{
		{"already billed", 400, v4ErrorBody("VF/016", "Document 1 has already been billed (billing document 90000000)"), Duplicate, "VF/016"},
		{"already billed, by its text", 400, v4ErrorBody("VF/999", "The document 1 has already been invoiced"), Duplicate, "VF/999"},
		{"unknown order", 400, v4ErrorBody("VF/010", "Document 999 does not exist"), Permanent, "VF/010"},
		{"period closed", 400, v4ErrorBody("F5/201", "Posting period 006 2026 is not open"), Permanent, "F5/201"},
		{"order locked", 400, v4ErrorBody("V1/042", "Sales document 1 is currently being processed by user BATCH_01"), Transient, "V1/042"},
		{"gateway timeout", 504, `<html>504</html>`, Unknown, ""},
		{"no billing document named", 200, `{"value":[]}`, Unknown, ""},
		{"unreadable answer", 200, `{"value":`, Unknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _, _ := fakeBilling(t, c.status, c.body, nil)
			_, err := f.client().PostBillingDocument(context.Background(), BillingDocument{SalesDocuments: []string{"1"}})
			e := assertError(t, err, c.cat, c.status, c.code)
			if c.code != "" && (len(e.Messages) != 1 || e.Messages[0].Severity != "error") {
				t.Errorf("messages %+v, want the V4 detail with its severity", e.Messages)
			}
		})
	}
}

// simClient is a client of a fresh simulator whose requests are recorded.
func simClient(t *testing.T, opts sim.Options) (*Client, *sim.Server, func() []string) {
	t.Helper()
	opts.User, opts.Password, opts.Logger = testUser, testPassword, slog.New(slog.DiscardHandler)
	s := sim.New(opts)
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-CSRF-Token"), "query "+r.URL.Query().Get("$filter"))
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c, s, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func mustRequest(t *testing.T, p tasks.Posting) Request {
	t.Helper()
	r, err := NewRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func today() string { return time.Now().UTC().Format(time.DateOnly) }

// A sales order and its billing through the client's requests against the
// simulator: posted, found by reference and by the billed order, the V4
// token fetched on the V4 service's root.
func TestSalesOrderAndBillingAgainstTheSimulator(t *testing.T) {
	c, s, seen := simClient(t, sim.Options{})
	ctx := context.Background()
	so := &tasks.SalesOrder{Key: "k", SalesOrderType: "OR", SalesOrganization: "1010", DistributionChannel: "10", Division: "00",
		SoldToParty: "10100001", CustomerReference: "PO 1", Items: []tasks.SalesOrderItem{{Material: "TG11", Quantity: "4", Unit: "PC"}}}
	soReq := mustRequest(t, so)
	if m, err := c.Find(ctx, soReq, "SQSALESORDER0001"); err != nil || m.Found {
		t.Fatalf("before: %+v %v", m, err)
	}
	doc, err := c.Post(ctx, soReq, Send{Reference: "SQSALESORDER0001"})
	if err != nil || doc.Number != "1" || len(doc.Messages) != 1 || doc.Messages[0].Code != "V1/311" {
		t.Fatalf("post order: %+v %v", doc, err)
	}
	if m, err := c.Find(ctx, soReq, "SQSALESORDER0001"); err != nil || !m.Found || m.Document.Number != "1" || m.Reversed() {
		t.Fatalf("find order: %+v %v", m, err)
	}

	bd := &tasks.BillingDocument{Key: "b", SalesDocuments: []string{"0000000001"}, BillingDate: today()}
	bdReq := mustRequest(t, bd)
	if m, err := c.Find(ctx, bdReq, "unused"); err != nil || m.Found {
		t.Fatalf("billing before: %+v %v", m, err)
	}
	bill, err := c.Post(ctx, bdReq, Send{})
	if err != nil || bill.Number != "90000000" || bill.CompanyCode != "1010" || bill.FiscalYear != today()[:4] {
		t.Fatalf("post billing: %+v %v", bill, err)
	}
	m, err := c.Find(ctx, bdReq, "")
	if err != nil || !m.Found || !reflect.DeepEqual(m.Document, Document{Number: bill.Number, CompanyCode: "1010", FiscalYear: bill.FiscalYear}) {
		t.Fatalf("find billing: %+v %v", m, err)
	}
	// The V4 token came from the V4 service's root; the look-ups filtered
	// the items by the order as SAP numbers it, then read the header.
	for _, want := range []string{
		"GET /sap/opu/odata4/sap/api_billingdocument/srvd_a2x/sap/billingdocument/0001/ Fetch",
		"query ReferenceSDDocument eq '1'",
		"query BillingDocument eq '" + bill.Number + "'",
		"query SalesOrganization eq '1010' and AssignmentReference eq 'SQSALESORDER0001'",
	} {
		if !slices.Contains(seen(), want) {
			t.Errorf("no request %q among %v", want, seen())
		}
	}

	// Billed again: SAP refuses, and sapq knows it for a duplicate.
	_, err = c.Post(ctx, bdReq, Send{})
	assertError(t, err, Duplicate, 400, "VF/016")

	// A cancelled billing document is no longer the order's: the order is
	// open again, and the look-up finds nothing until it is billed anew.
	if _, err := s.Reverse(sim.KindBillingDocument, "1010", bill.Number, bill.FiscalYear); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Find(ctx, bdReq, ""); err != nil || m.Found {
		t.Fatalf("after cancel: %+v %v", m, err)
	}
	again, err := c.Post(ctx, bdReq, Send{})
	if err != nil || again.Number != "90000002" {
		t.Fatalf("bill after cancel: %+v %v", again, err)
	}
	if m, err := c.Find(ctx, bdReq, ""); err != nil || m.Document.Number != "90000002" {
		t.Fatalf("find after re-billing: %+v %v", m, err)
	}
}

// The look-up adopts a billing document only if it bills exactly the
// posting's documents, however SAP split it.
func TestFindBillingDocumentWantsExactlyTheseDocuments(t *testing.T) {
	c, _, _ := simClient(t, sim.Options{OpenSalesOrders: 4})
	ctx := context.Background()
	post := func(docs ...string) Document {
		t.Helper()
		d, err := c.PostBillingDocument(ctx, BillingDocument{SalesDocuments: docs})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	find := func(docs ...string) Match {
		t.Helper()
		m, err := c.FindBillingDocument(ctx, docs, "")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ab := post("1", "2")
	if m := find("1", "2"); !m.Found || m.Document.Number != ab.Number {
		t.Errorf("both: %+v", m)
	}
	if m := find("1"); m.Found {
		t.Errorf("one of two: %+v; a billing of other orders too is not this posting's", m)
	}
	if m := find("1", "2", "3"); m.Found {
		t.Errorf("a superset: %+v", m)
	}
	if m := find("4"); m.Found {
		t.Errorf("an unbilled order: %+v", m)
	}
	_, err := c.PostBillingDocument(ctx, BillingDocument{SalesDocuments: []string{"2", "3"}})
	assertError(t, err, Duplicate, 400, "VF/016")
}

func TestSAPMessagesHeader(t *testing.T) {
	h := http.Header{}
	h.Set("sap-messages", `[{"code":"V1/311","message":"saved","numericSeverity":2},{"code":"X/1","message":"m","severity":"Warning"}]`)
	want := []Message{{Code: "V1/311", Text: "saved", Severity: "info"}, {Code: "X/1", Text: "m", Severity: "warning"}}
	if got := parseSAPMessages(h); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	h.Set("sap-messages", `{"code":"not an array"}`)
	if got := parseSAPMessages(h); got != nil {
		t.Errorf("malformed header: %+v", got)
	}
}
