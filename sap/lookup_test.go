package sap

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// invoiceRow is an A_SupplierInvoice row as SAP answers the look-up; change
// adjusts it.
func invoiceRow(number string, change func(map[string]any)) map[string]any {
	row := map[string]any{"SupplierInvoice": number, "FiscalYear": "2026", "CompanyCode": "1010",
		"AssignmentReference": "SQABCDEFGHIJKLMN", "ReverseDocument": "", "ReverseDocumentFiscalYear": "",
		"IsReversal": false, "IsReversed": false}
	if change != nil {
		change(row)
	}
	return row
}

func results(rows ...any) map[string]any { return map[string]any{"d": map[string]any{"results": rows}} }

func TestFindSupplierInvoice(t *testing.T) {
	doc := Document{Number: "5105600001", FiscalYear: "2026", CompanyCode: "1010"}
	tests := []struct {
		name    string
		status  int
		body    any
		want    Match
		wantCat Category // 0: no error
	}{
		{name: "found", status: 200, body: results(invoiceRow("5105600001", nil)), want: Match{Found: true, Document: doc}},
		{name: "not found", status: 200, body: results()},
		// SAP copies the assignment into a reversal document: only the
		// original counts, and it is reported reversed.
		{name: "reversed", status: 200, body: results(
			invoiceRow("5105600001", func(r map[string]any) { r["IsReversed"], r["ReverseDocument"] = true, "5105600002" }),
			invoiceRow("5105600002", func(r map[string]any) { r["IsReversal"] = true })),
			want: Match{Found: true, Document: doc, ReversedBy: "5105600002"}},
		{name: "only a reversal document", status: 200, body: results(invoiceRow("5105600002", func(r map[string]any) { r["IsReversal"] = true }))},
		// A system that ignores the filter must not make another invoice ours.
		{name: "another reference", status: 200, body: results(invoiceRow("5105600009", func(r map[string]any) { r["AssignmentReference"] = "SQOTHER" }))},
		{name: "server error", status: 500, body: v2Error("/IWBEP/CM_MGW_RT/004", "Runtime error"), wantCat: Unknown},
		{name: "throttled", status: 429, body: v2Error("429", "Rate limit"), wantCat: Transient},
		{name: "unreadable", status: 200, body: map[string]any{"value": []any{}}, wantCat: Unknown},
		{name: "flag of the wrong type", status: 200, body: results(invoiceRow("5105600001", func(r map[string]any) { r["IsReversed"] = "X" })), wantCat: Unknown},
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
			m, err := f.client().FindSupplierInvoice(context.Background(), "1010", "SQABCDEFGHIJKLMN")
			if tt.wantCat != 0 {
				assertError(t, err, tt.wantCat, tt.status, codeOf(err))
				if m.Found {
					t.Errorf("error with a match: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Found != tt.want.Found || m.Document.Number != tt.want.Document.Number || m.Document.FiscalYear != tt.want.Document.FiscalYear ||
				m.Document.CompanyCode != tt.want.Document.CompanyCode || m.ReversedBy != tt.want.ReversedBy {
				t.Errorf("got %+v; want %+v", m, tt.want)
			}
			if gotReq.URL.Path != "/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV/A_SupplierInvoice" {
				t.Errorf("path = %s", gotReq.URL.Path)
			}
			q := gotReq.URL.Query()
			if want := "CompanyCode eq '1010' and AssignmentReference eq 'SQABCDEFGHIJKLMN'"; q.Get("$filter") != want {
				t.Errorf("$filter = %q, want %q", q.Get("$filter"), want)
			}
			if q.Get("$format") != "json" || q.Get("sap-client") != "100" || q.Get("sap-language") != "EN" || !strings.Contains(q.Get("$select"), "IsReversed") {
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
	lines := map[string]map[string]any{
		"SQ-000042": {"AccountingDocument": "0100000001", "IsReversed": false, "ReversalReferenceDocument": ""},
		"SQ-000044": {"AccountingDocument": "0100000003", "IsReversed": true, "ReversalReferenceDocument": "0100000004"},
	}
	f.find = func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/sap/opu/odata/sap/API_GLACCOUNTLINEITEM/GLAccountLineItem" ||
			q.Get("$top") != "1" || !strings.Contains(q.Get("$select"), "ReversalReferenceDocument") {
			t.Errorf("request = %s?%s", r.URL.Path, r.URL.RawQuery)
		}
		var results []any
		for ref, line := range lines {
			if q.Get("$filter") == "CompanyCode eq '1010' and AssignmentReference eq '"+ref+"' and IsReversal eq false" {
				row := map[string]any{"CompanyCode": "1010", "FiscalYear": "2026", "AccountingDocumentItem": "001", "AssignmentReference": ref, "IsReversal": false}
				for k, v := range line {
					row[k] = v
				}
				results = append(results, row)
			}
		}
		if strings.Contains(q.Get("$filter"), "'BROKEN'") {
			writeJSON(w, http.StatusBadGateway, nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"d": map[string]any{"results": results}})
	}
	c := f.client()
	ctx := context.Background()

	m, err := c.FindJournalEntry(ctx, "1010", "SQ-000042")
	if err != nil || !m.Found || m.Reversed() || m.Document.Number != "0100000001" || m.Document.FiscalYear != "2026" || m.Document.CompanyCode != "1010" {
		t.Errorf("found case: %+v %v", m, err)
	}
	m, err = c.FindJournalEntry(ctx, "1010", "SQ-000044")
	if err != nil || !m.Found || !m.Reversed() || m.ReversedBy != "0100000004" {
		t.Errorf("reversed case: %+v %v", m, err)
	}
	m, err = c.FindJournalEntry(ctx, "1010", "SQ-000043")
	if err != nil || m.Found {
		t.Errorf("not-found case: %+v %v", m, err)
	}
	m, err = c.FindJournalEntry(ctx, "1010", "BROKEN")
	assertError(t, err, Unknown, http.StatusBadGateway, "")
	if m.Found {
		t.Error("found with error")
	}
	_, err = c.FindJournalEntry(ctx, "1010", "")
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
