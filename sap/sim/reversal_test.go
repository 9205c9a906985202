package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// cancelInvoice calls the function import Cancel with its parameters as URI
// literals, as a client does.
func (h *harness) cancelInvoice(params url.Values) (*http.Response, []byte) {
	h.t.Helper()
	if h.tok == "" {
		h.fetchToken()
	}
	return h.mustRequest(http.MethodPost, siRoot+"Cancel"+query(params), nil, map[string]string{
		"Accept": "application/json", "X-CSRF-Token": h.tok,
	})
}

// postedInvoice posts an invoice and returns its number.
func (h *harness) postedInvoice(ref string) string {
	h.t.Helper()
	resp, b := h.postInvoice(defaultInvoice(ref).json())
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("post invoice: %d %s", resp.StatusCode, b)
	}
	no, _ := dig(decodeJSON(h.t, b), "d", "SupplierInvoice").(string)
	return no
}

// glLines are the G/L line items a filter selects.
func (h *harness) glLines(filter string) []any {
	h.t.Helper()
	status, m := h.getJSON(glColl + query(url.Values{"$filter": {filter}, "$format": {"json"}}))
	if status != http.StatusOK {
		h.t.Fatalf("GLAccountLineItem: %d %v", status, m)
	}
	return results(m)
}

func TestCancelSupplierInvoice(t *testing.T) {
	h := newHarness(t, Options{User: user, Password: pass})
	no := h.postedInvoice("INV-CANCEL-1")

	resp, b := h.cancelInvoice(url.Values{"SupplierInvoice": {"'" + no + "'"}, "FiscalYear": {"'2026'"}, "ReversalReason": {"'01'"},
		"PostingDate": {"datetime'2026-11-24T00:00:00'"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Cancel: %d %s", resp.StatusCode, b)
	}
	m := decodeJSON(t, b)
	rev, _ := dig(m, "d", "Cancel", "ReverseDocument").(string)
	if rev == "" || rev == no || dig(m, "d", "Cancel", "FiscalYear") != "2026" || dig(m, "d", "Cancel", "Success") != true {
		t.Fatalf("Cancel answered %s; want CancelInvoiceExportParameters with the reversal", b)
	}

	// The original names its reversal; the reversal is marked one.
	_, m = h.getJSON(siColl + query(url.Values{"$filter": {"SupplierInvoice eq '" + no + "' and FiscalYear eq '2026'"}, "$format": {"json"}}))
	orig := dig(results(m), 0)
	if dig(orig, "IsReversed") != true || dig(orig, "ReverseDocument") != rev || dig(orig, "ReverseDocumentFiscalYear") != "2026" {
		t.Fatalf("original after Cancel: %v", orig)
	}
	_, m = h.getJSON(siColl + query(url.Values{"$filter": {"SupplierInvoice eq '" + rev + "' and FiscalYear eq '2026'"}, "$format": {"json"}}))
	if r := dig(results(m), 0); dig(r, "IsReversal") != true || dig(r, "IsReversed") != false {
		t.Fatalf("reversal document: %v", r)
	}
	// Its FI document refers to the reversal invoice, offsets the
	// original's lines, posts on the date asked, and names its creator.
	lines := h.glLines("CompanyCode eq '1010' and ReferenceDocumentType eq 'RMRP' and ReferenceDocument eq '" + rev + "'")
	if len(lines) != 2 {
		t.Fatalf("reversal FI lines: %v", lines)
	}
	for _, l := range lines {
		if dig(l, "IsReversal") != true || dig(l, "AccountingDocCreatedByUser") != user || dig(l, "PostingDate") != edmDateJSON(2026, 11, 24) {
			t.Errorf("reversal line %v", l)
		}
	}
	for _, l := range h.glLines("CompanyCode eq '1010' and ReferenceDocumentType eq 'RMRP' and ReferenceDocument eq '" + no + "'") {
		if dig(l, "IsReversed") != true || dig(l, "ReversalReferenceDocument") == "" {
			t.Errorf("original line not marked reversed: %v", l)
		}
	}

	// A document is reversed once; what cannot be reversed is refused
	// with SAP's message, and nothing is posted.
	posted := h.sim.Stats().Posted[KindSupplierInvoice]
	for _, c := range []struct {
		name   string
		params url.Values
		code   string
		text   string
	}{
		{"again", url.Values{"SupplierInvoice": {"'" + no + "'"}, "FiscalYear": {"'2026'"}}, "M8/321", "already been reversed"},
		{"a reversal", url.Values{"SupplierInvoice": {"'" + rev + "'"}, "FiscalYear": {"'2026'"}}, "F5A/205", "is a reversal document"},
		{"unknown", url.Values{"SupplierInvoice": {"'5105699999'"}, "FiscalYear": {"'2026'"}}, "F5/810", "does not exist"},
		{"no number", url.Values{"FiscalYear": {"'2026'"}}, "", "SupplierInvoice"},
	} {
		resp, b := h.cancelInvoice(c.params)
		if resp.StatusCode != http.StatusBadRequest || (c.code != "" && odataCode(t, b) != c.code) || !strings.Contains(string(b), c.text) {
			t.Errorf("Cancel %s: %d %s; want 400 %s ...%s...", c.name, resp.StatusCode, b, c.code, c.text)
		}
	}
	closed := h.postedInvoice("INV-CANCEL-2")
	resp, b = h.cancelInvoice(url.Values{"SupplierInvoice": {"'" + closed + "'"}, "FiscalYear": {"'2026'"}, "PostingDate": {"datetime'2026-08-03T00:00:00'"}})
	if resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "F5/201" {
		t.Errorf("Cancel into a closed period: %d %s; want F5/201", resp.StatusCode, b)
	}
	if got := h.sim.Stats().Posted[KindSupplierInvoice]; got != posted+1 {
		t.Errorf("posted %d invoices, want only the second original", got-posted)
	}

	// Cancel modifies: it needs the CSRF token like a create.
	resp, _ = h.mustRequest(http.MethodPost, siRoot+"Cancel"+query(url.Values{"SupplierInvoice": {"'" + closed + "'"}, "FiscalYear": {"'2026'"}}), nil,
		map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-CSRF-Token") != "Required" {
		t.Errorf("Cancel without a token: %d", resp.StatusCode)
	}
}

// A person reverses a document outside sapq (Reverse, POST /sim/reverse):
// the reversal is the clerk's, not the communication user's.
func TestReverseByHand(t *testing.T) {
	h := newHarness(t, Options{User: user, Password: pass})
	no := h.postedInvoice("INV-HAND-1")
	rev, err := h.sim.Reverse(KindSupplierInvoice, "1010", no, "2026")
	if err != nil {
		t.Fatal(err)
	}
	lines := h.glLines("CompanyCode eq '1010' and ReferenceDocumentType eq 'RMRP' and ReferenceDocument eq '" + rev + "'")
	if len(lines) == 0 || dig(lines[0], "AccountingDocCreatedByUser") != ClerkUser {
		t.Fatalf("a reversal by hand: %v", lines)
	}
	if _, err := h.sim.Reverse(KindSupplierInvoice, "1010", no, "2026"); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second reversal by hand: %v", err)
	}

	other := h.postedInvoice("INV-HAND-2")
	body := `{"kind":"supplier_invoice","company_code":"1010","document":"` + other + `","fiscal_year":"2026"}`
	resp, err := http.Post(h.srv.URL+"/sim/reverse", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Reversal string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Reversal == "" {
		t.Fatalf("POST /sim/reverse: %d %+v %v", resp.StatusCode, out, err)
	}
	resp2, _ := http.Post(h.srv.URL+"/sim/reverse", "application/json", strings.NewReader(body))
	if resp2.StatusCode != http.StatusConflict {
		t.Errorf("POST /sim/reverse again: %d, want 409", resp2.StatusCode)
	}
	resp2.Body.Close()
	w := httptest.NewRecorder()
	h.sim.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/sim/reverse", strings.NewReader(`{"kind":"supplier_invoice","doc":"1"}`)))
	if w.Code != http.StatusBadRequest {
		t.Errorf("POST /sim/reverse with an unknown field: %d", w.Code)
	}
}

// A journal entry is reversed by a reversal entry naming it in
// ReversalReferenceDocument, with the opposite lines under the reversal's
// own assignment.
func TestJournalEntryReversalEntry(t *testing.T) {
	h := newHarness(t, Options{User: user, Password: pass})
	resp, b := h.postJE(defaultJE("SQORIGINAL000001").xml())
	orig := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument
	if resp.StatusCode != http.StatusOK || orig == "" {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
	key := orig + "10102026"
	reversal := func(assignment string, amount string) journalEntry {
		je := defaultJE(assignment)
		je.DocRef, je.HeaderText, je.ReversalRef, je.ReversalReason = "", "", key, "01"
		je.Items[0].Amount, je.Items[0].DC = "-"+amount, "H"
		je.Items[1].Amount, je.Items[1].DC = amount, "S"
		return je
	}

	// Lines that do not offset the original's are refused.
	_, b = h.postJE(reversal("SQREVERSAL000001", "99.00").xml())
	if c := decodeJE(t, b).Body.Conf.Confirmations[0]; c.Log.Max != "3" || !logHas(c.Log.Items, "702(F5)", "do not offset") {
		t.Fatalf("a reversal that does not offset: %+v", c)
	}
	_, b = h.postJE(reversal("SQREVERSAL000001", "100.00").xml())
	rev := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument
	if rev == "" || rev == orig {
		t.Fatalf("reversal entry: %s", b)
	}
	for _, l := range h.glLines("CompanyCode eq '1010' and AccountingDocument eq '" + orig + "'") {
		if dig(l, "IsReversed") != true || dig(l, "ReversalReferenceDocument") != rev {
			t.Errorf("original line %v, want reversed by %s", l, rev)
		}
	}
	for _, l := range h.glLines("CompanyCode eq '1010' and AccountingDocument eq '" + rev + "'") {
		if dig(l, "IsReversal") != true || dig(l, "ReversalReferenceDocument") != orig || dig(l, "AssignmentReference") != "SQREVERSAL000001" {
			t.Errorf("reversal line %v", l)
		}
	}
	// Once reversed, it is not reversed again, by an entry or by hand.
	_, b = h.postJE(reversal("SQREVERSAL000002", "100.00").xml())
	if c := decodeJE(t, b).Body.Conf.Confirmations[0]; c.Log.Max != "3" || !logHas(c.Log.Items, "321(M8)", "already been reversed") {
		t.Fatalf("a second reversal entry: %+v", c)
	}
	if _, err := h.sim.Reverse(KindJournalEntry, "1010", orig, "2026"); err == nil {
		t.Fatal("reversed by hand after its reversal entry")
	}
}

// logHas reports whether a SOAP log holds a message of type and text.
func logHas(items []struct {
	TypeID       string `xml:"TypeID"`
	SeverityCode string `xml:"SeverityCode"`
	Note         string `xml:"Note"`
}, typeID, text string) bool {
	for _, it := range items {
		if it.TypeID == typeID && strings.Contains(it.Note, text) {
			return true
		}
	}
	return false
}
