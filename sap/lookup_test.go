package sap

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// lookedUp is the invoice the look-up tests search for.
var lookedUp = SupplierInvoice{
	CompanyCode: "1010", InvoicingParty: "17300001", SupplierInvoiceIDByInvcgParty: "O'Brien 1",
	DocumentCurrency: "EUR", InvoiceGrossAmount: decimal.RequireFromString("119.00"),
	DocumentDate: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
}

// invoiceRow is an A_SupplierInvoice row as SAP answers it; change adjusts it.
func invoiceRow(number string, change func(map[string]any)) map[string]any {
	row := map[string]any{"SupplierInvoice": number, "FiscalYear": "2026", "CompanyCode": "1010",
		"InvoiceGrossAmount": "119.000", "DocumentCurrency": "EUR", "DocumentDate": "/Date(1795564800000)/"}
	if change != nil {
		change(row)
	}
	return row
}

func results(rows ...any) map[string]any { return map[string]any{"d": map[string]any{"results": rows}} }

func TestFindSupplierInvoice(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      any
		wantFound bool
		wantDoc   Document
		wantCat   Category // 0: no error
	}{
		{name: "found", status: 200, body: results(invoiceRow("5105600001", nil)),
			wantFound: true, wantDoc: Document{Number: "5105600001", FiscalYear: "2026", CompanyCode: "1010"}},
		{name: "found among invoices sharing the number", status: 200,
			body: results(
				invoiceRow("5105600007", func(r map[string]any) { r["InvoiceGrossAmount"] = "120.00" }),
				invoiceRow("5105600008", func(r map[string]any) { r["DocumentDate"] = "/Date(1795478400000)/" }),
				invoiceRow("5105600009", func(r map[string]any) { r["DocumentCurrency"] = "USD" }),
				invoiceRow("5105600010", nil)),
			wantFound: true, wantDoc: Document{Number: "5105600010", FiscalYear: "2026", CompanyCode: "1010"}},
		{name: "same number, another invoice", status: 200,
			body: results(invoiceRow("5105600007", func(r map[string]any) { r["InvoiceGrossAmount"] = "120.00" }))},
		{name: "not found", status: 200, body: results()},
		{name: "not a date", status: 200, body: results(invoiceRow("5105600001", func(r map[string]any) { r["DocumentDate"] = "1795564800000)/" })), wantCat: Unknown},
		{name: "empty date", status: 200, body: results(invoiceRow("5105600001", func(r map[string]any) { r["DocumentDate"] = "/Date()/" })), wantCat: Unknown},
		{name: "amount as a number", status: 200, body: results(invoiceRow("5105600001", func(r map[string]any) { r["InvoiceGrossAmount"] = 119 })), wantCat: Unknown},
		{name: "server error", status: 500, body: v2Error("/IWBEP/CM_MGW_RT/004", "Runtime error"), wantCat: Unknown},
		{name: "throttled", status: 429, body: v2Error("429", "Rate limit"), wantCat: Transient},
		{name: "unreadable", status: 200, body: map[string]any{"value": []any{}}, wantCat: Unknown},
		{name: "hit without number", status: 200, body: results(invoiceRow("", nil)), wantCat: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSAP(t)
			var gotReq *http.Request
			f.find = func(w http.ResponseWriter, r *http.Request) {
				gotReq = r
				writeJSON(w, tt.status, tt.body)
			}
			doc, found, err := f.client().FindSupplierInvoice(context.Background(), lookedUp)
			if tt.wantCat != 0 {
				assertError(t, err, tt.wantCat, tt.status, codeOf(err))
				if found || doc.Number != "" {
					t.Errorf("error with found=%v doc=%+v", found, doc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound || doc.Number != tt.wantDoc.Number || doc.FiscalYear != tt.wantDoc.FiscalYear || doc.CompanyCode != tt.wantDoc.CompanyCode {
				t.Errorf("got %+v, %v; want %+v, %v", doc, found, tt.wantDoc, tt.wantFound)
			}
			if gotReq.URL.Path != "/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV/A_SupplierInvoice" {
				t.Errorf("path = %s", gotReq.URL.Path)
			}
			q := gotReq.URL.Query()
			if want := "CompanyCode eq '1010' and InvoicingParty eq '17300001' and SupplierInvoiceIDByInvcgParty eq 'O''Brien 1'"; q.Get("$filter") != want {
				t.Errorf("$filter = %q, want %q", q.Get("$filter"), want)
			}
			if q.Get("$select") != "SupplierInvoice,FiscalYear,CompanyCode,InvoiceGrossAmount,DocumentCurrency,DocumentDate" || q.Get("$format") != "json" || q.Get("sap-client") != "100" {
				t.Errorf("query = %s", gotReq.URL.RawQuery)
			}
			// Spaces travel as %20: "+" is a space only in HTML forms.
			if strings.Contains(gotReq.URL.RawQuery, "+") || strings.Contains(gotReq.URL.RawQuery, "'") {
				t.Errorf("query not percent-encoded: %s", gotReq.URL.RawQuery)
			}
		})
	}
}

func TestFindJournalEntry(t *testing.T) {
	f := newFakeSAP(t)
	rows := map[string]string{"SQ-000042": "0100000001"}
	f.find = func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/sap/opu/odata/sap/API_GLACCOUNTLINEITEM/GLAccountLineItem" ||
			q.Get("$top") != "1" || q.Get("$select") != "CompanyCode,AccountingDocument,FiscalYear" {
			t.Errorf("request = %s?%s", r.URL.Path, r.URL.RawQuery)
		}
		var results []any
		for ref, doc := range rows {
			if q.Get("$filter") == "CompanyCode eq '1010' and AssignmentReference eq '"+ref+"'" {
				results = append(results, map[string]any{"CompanyCode": "1010", "AccountingDocument": doc, "FiscalYear": "2026", "AccountingDocumentItem": "001"})
			}
		}
		if q.Get("$filter") == "CompanyCode eq '1010' and AssignmentReference eq 'BROKEN'" {
			writeJSON(w, http.StatusBadGateway, nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"d": map[string]any{"results": results}})
	}
	c := f.client()
	ctx := context.Background()

	doc, found, err := c.FindJournalEntry(ctx, "1010", "SQ-000042")
	if err != nil || !found || doc.Number != "0100000001" || doc.FiscalYear != "2026" || doc.CompanyCode != "1010" {
		t.Errorf("found case: %+v %v %v", doc, found, err)
	}
	doc, found, err = c.FindJournalEntry(ctx, "1010", "SQ-000043")
	if err != nil || found || doc.Number != "" {
		t.Errorf("not-found case: %+v %v %v", doc, found, err)
	}
	_, found, err = c.FindJournalEntry(ctx, "1010", "BROKEN")
	assertError(t, err, Unknown, http.StatusBadGateway, "")
	if found {
		t.Error("found with error")
	}
	_, _, err = c.FindJournalEntry(ctx, "1010", "")
	assertError(t, err, Permanent, 0, "")
}

// codeOf returns the SAP code of err, for table tests that only care
// about the category.
func codeOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	return ""
}
