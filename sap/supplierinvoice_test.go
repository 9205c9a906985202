package sap

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func testInvoice() SupplierInvoice {
	day := time.Date(2024, 11, 22, 0, 0, 0, 0, time.UTC) // /Date(1732233600000)/
	return SupplierInvoice{
		AssignmentReference:           "SQABCDEFGHIJKLMN",
		CompanyCode:                   "1010",
		InvoicingParty:                "17300001",
		SupplierInvoiceIDByInvcgParty: "INV-2026-001",
		DocumentCurrency:              "EUR",
		DocumentDate:                  day,
		PostingDate:                   day,
		InvoiceGrossAmount:            decimal.RequireFromString("119"),
		DocumentHeaderText:            "Office supplies",
		Items: []SupplierInvoiceGLItem{{
			GLAccount: "61003000", Amount: decimal.RequireFromString("119.00"),
			CostCenter: "10101101", TaxCode: "V1", Text: "Paper",
		}},
	}
}

func TestPostSupplierInvoiceSuccess(t *testing.T) {
	f := newFakeSAP(t)
	var gotBody []byte
	var gotReq *http.Request
	inner := created("5105600001", "2026", "1010")
	f.invoice = func(w http.ResponseWriter, r *http.Request, body []byte) {
		gotBody, gotReq = body, r
		inner(w, r, body)
	}
	c := f.client(func(cfg *Config) { cfg.Language = "EN" })

	doc, err := c.PostSupplierInvoice(context.Background(), testInvoice())
	if err != nil {
		t.Fatalf("PostSupplierInvoice: %v", err)
	}
	want := Document{Number: "5105600001", FiscalYear: "2026", CompanyCode: "1010", Messages: []Message{
		{Code: "M8/060", Text: "Document no. 5105600001 created", Severity: "info"},
		{Code: "M8/111", Text: "Check the payment block", Severity: "warning"},
	}}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("doc = %+v, want %+v", doc, want)
	}

	// The request as wire.md specifies it.
	if gotReq.URL.Path != "/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV/A_SupplierInvoice" {
		t.Errorf("path = %s", gotReq.URL.Path)
	}
	if q := gotReq.URL.Query(); q.Get("sap-client") != "100" || q.Get("sap-language") != "EN" {
		t.Errorf("query = %s", gotReq.URL.RawQuery)
	}
	for h, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json"} {
		if got := gotReq.Header.Get(h); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
	// The session cookies from the token fetch came back.
	for _, name := range []string{sessionCookie, "sap-usercontext"} {
		if _, err := gotReq.Cookie(name); err != nil {
			t.Errorf("cookie %s not sent back", name)
		}
	}
	var got, wantBody map[string]any
	if err := json.Unmarshal(gotBody, &got); err != nil {
		t.Fatalf("body: %v", err)
	}
	json.Unmarshal([]byte(`{"CompanyCode":"1010","DocumentDate":"/Date(1732233600000)/","PostingDate":"/Date(1732233600000)/",
		"InvoicingParty":"17300001","SupplierInvoiceIDByInvcgParty":"INV-2026-001","DocumentCurrency":"EUR",
		"InvoiceGrossAmount":"119.00","TaxIsCalculatedAutomatically":true,"AccountingDocumentType":"RE",
		"DocumentHeaderText":"Office supplies","AssignmentReference":"SQABCDEFGHIJKLMN",
		"to_SupplierInvoiceItemGLAcct":{"results":[
		  {"SupplierInvoiceItem":"1","CompanyCode":"1010","GLAccount":"61003000","CostCenter":"10101101",
		   "DocumentCurrency":"EUR","SupplierInvoiceItemAmount":"119.00","TaxCode":"V1","DebitCreditCode":"S",
		   "SupplierInvoiceItemText":"Paper"}]}}`), &wantBody)
	if !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body =\n%s\nwant the wire.md example", gotBody)
	}
	// JSON escapes the slashes of /Date()/ as SAP itself writes them.
	if !strings.Contains(string(gotBody), `"\/Date(1732233600000)\/"`) {
		t.Errorf("dates not in OData V2 form: %s", gotBody)
	}

	// A second post reuses the cached token.
	if _, err := c.PostSupplierInvoice(context.Background(), testInvoice()); err != nil {
		t.Fatal(err)
	}
	if fetches, rejects, posts := f.counts(); fetches != 1 || rejects != 0 || posts != 2 {
		t.Errorf("fetches/rejects/posts = %d/%d/%d, want 1/0/2", fetches, rejects, posts)
	}
}

func TestSupplierInvoiceCreditLine(t *testing.T) {
	inv := testInvoice()
	inv.Items = append(inv.Items, SupplierInvoiceGLItem{GLAccount: "61003000", Amount: decimal.RequireFromString("-19.5")})
	b := supplierInvoicePayload(inv)
	got := b.GLItems.Results[1]
	if got.DebitCreditCode != "H" || formatAmount(decimal.Decimal(got.SupplierInvoiceItemAmount)) != "19.50" || got.SupplierInvoiceItem != "2" {
		t.Errorf("credit line = %+v", got)
	}
}

func TestCSRF(t *testing.T) {
	t.Run("stale token is refetched once", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = created("5105600002", "2026", "1010")
		c := f.client()
		if _, err := c.PostSupplierInvoice(context.Background(), testInvoice()); err != nil {
			t.Fatal(err)
		}
		f.expireSessions()
		doc, err := c.PostSupplierInvoice(context.Background(), testInvoice())
		if err != nil {
			t.Fatalf("after session expiry: %v", err)
		}
		if doc.Number != "5105600002" {
			t.Errorf("doc = %+v", doc)
		}
		if fetches, rejects, posts := f.counts(); fetches != 2 || rejects != 1 || posts != 2 {
			t.Errorf("fetches/rejects/posts = %d/%d/%d, want 2/1/2", fetches, rejects, posts)
		}
	})

	// SAP refused the token again right after a fresh fetch: nothing was
	// processed, and a later attempt with a new session may well pass.
	t.Run("rejected twice is transient", func(t *testing.T) {
		f := newFakeSAP(t)
		f.rejectAllCSRF = true
		_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Transient, http.StatusForbidden, "")
		if fetches, rejects, posts := f.counts(); fetches != 2 || rejects != 2 || posts != 0 {
			t.Errorf("fetches/rejects/posts = %d/%d/%d, want 2/2/0", fetches, rejects, posts)
		}
	})

	t.Run("403 without Required is permanent, no refetch", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = func(w http.ResponseWriter, r *http.Request, body []byte) {
			writeJSON(w, http.StatusForbidden, v2Error("/IWBEP/CM_MGW_RT/020", "No authorization to create supplier invoices"))
		}
		_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Permanent, http.StatusForbidden, "/IWBEP/CM_MGW_RT/020")
		if fetches, _, _ := f.counts(); fetches != 1 {
			t.Errorf("fetches = %d, want 1", fetches)
		}
	})

	t.Run("401 is permanent", func(t *testing.T) {
		f := newFakeSAP(t)
		_, err := f.client(func(cfg *Config) { cfg.Password = "wrong-password" }).
			PostSupplierInvoice(context.Background(), testInvoice())
		e := assertError(t, err, Permanent, http.StatusUnauthorized, "")
		if e.Op != opFetchCSRF || !strings.Contains(e.Message, "authentication failed") {
			t.Errorf("err = %v", err)
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Errorf("password in error: %v", err)
		}
	})

	t.Run("concurrent posts share one fetch", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = created("5105600003", "2026", "1010")
		c := f.client()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, err := c.PostSupplierInvoice(context.Background(), testInvoice())
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if fetches, rejects, posts := f.counts(); fetches != 1 || rejects != 0 || posts != 20 {
			t.Errorf("fetches/rejects/posts = %d/%d/%d, want 1/0/20", fetches, rejects, posts)
		}
	})
}

func TestSupplierInvoiceUnreadableCreated(t *testing.T) {
	f := newFakeSAP(t)
	f.invoice = func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeJSON(w, http.StatusCreated, map[string]any{"d": map[string]any{"FiscalYear": "2026"}})
	}
	_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
	assertError(t, err, Unknown, http.StatusCreated, "")
}

func TestSupplierInvoiceValidation(t *testing.T) {
	f := newFakeSAP(t)
	inv := testInvoice()
	inv.DocumentHeaderText = strings.Repeat("x", 26)
	inv.Items[0].GLAccount = ""
	inv.PostingDate = time.Time{}
	_, err := f.client().PostSupplierInvoice(context.Background(), inv)
	e := assertError(t, err, Permanent, 0, "")
	for _, want := range []string{"DocumentHeaderText", "Items[0].GLAccount", "PostingDate"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not mention %s", e.Message, want)
		}
	}
	if fetches, _, posts := f.counts(); fetches+posts != 0 {
		t.Error("invalid invoice reached SAP")
	}
}

// assertError checks err is a *Error with the given category, status and code.
func assertError(t *testing.T, err error, cat Category, status int, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *sap.Error", err, err)
	}
	if e.Category != cat || CategoryOf(err) != cat {
		t.Errorf("category = %v, want %v (err: %v)", e.Category, cat, err)
	}
	if e.HTTPStatus != status {
		t.Errorf("HTTPStatus = %d, want %d (err: %v)", e.HTTPStatus, status, err)
	}
	if e.Code != code {
		t.Errorf("Code = %q, want %q (err: %v)", e.Code, code, err)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("password in error: %v", err)
	}
	return e
}
