package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSupplierInvoiceCreated(t *testing.T) {
	h := newHarness(t, Options{})
	resp, b := h.postInvoice(defaultInvoice("INV-2026-001").json())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	wantLoc := h.srv.URL + siColl + "(SupplierInvoice='5105600001',FiscalYear='2026')"
	if got := resp.Header.Get("Location"); got != wantLoc {
		t.Errorf("Location = %q, want %q", got, wantLoc)
	}
	var msg struct{ Code, Message, Severity string }
	if err := json.Unmarshal([]byte(resp.Header.Get("sap-message")), &msg); err != nil || msg.Code != "M8/060" ||
		msg.Message != "Document no. 5105600001 created" || msg.Severity != "info" {
		t.Errorf("sap-message = %q (%v)", resp.Header.Get("sap-message"), err)
	}
	m := decodeJSON(t, b)
	for k, want := range map[string]string{
		"SupplierInvoice": "5105600001", "FiscalYear": "2026", "CompanyCode": "1010", "InvoicingParty": "17300001",
		"SupplierInvoiceIDByInvcgParty": "INV-2026-001", "InvoiceGrossAmount": "119.00", "DocumentCurrency": "EUR",
		"PostingDate": edmDateJSON(2026, 11, 22), "DocumentHeaderText": "Office supplies",
	} {
		if got := dig(m, "d", k); got != want {
			t.Errorf("d.%s = %v, want %q", k, got, want)
		}
	}
	if got := dig(m, "d", "__metadata", "type"); got != "API_SUPPLIERINVOICE_PROCESS_SRV.A_SupplierInvoiceType" {
		t.Errorf("__metadata.type = %v", got)
	}
	if got := dig(m, "d", "__metadata", "uri"); got != wantLoc {
		t.Errorf("__metadata.uri = %v", got)
	}
	if got := dig(m, "d", "to_SupplierInvoiceItemGLAcct", "results", 0, "GLAccount"); got != "61003000" {
		t.Errorf("item GLAccount = %v", got)
	}

	// Numbers are consecutive, per fiscal year and across company codes.
	second := defaultInvoice("INV-2026-002")
	second.CompanyCode, second.Currency = "1710", "USD"
	if resp, b = h.postInvoice(second.json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("second: status %d body %s", resp.StatusCode, b)
	}
	if got := dig(decodeJSON(t, b), "d", "SupplierInvoice"); got != "5105600002" {
		t.Errorf("second SupplierInvoice = %v", got)
	}
	// The previous month is still open; its fiscal year is the posting date's year.
	third := defaultInvoice("INV-2026-003")
	third.Posting = edmDateJSON(2026, 10, 31)
	if resp, b = h.postInvoice(third.json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("previous period: status %d body %s", resp.StatusCode, b)
	}

	ledger := h.sim.Ledger()
	if len(ledger) != 3 || ledger[0].Kind != KindSupplierInvoice || ledger[0].Reference != "SQ-INV-2026-001" ||
		ledger[0].Document != "5105600001" || ledger[0].FiscalYear != "2026" || ledger[0].CompanyCode != "1010" ||
		!ledger[0].PostedAt.Equal(testNow) {
		t.Errorf("ledger = %+v", ledger)
	}
	if n := h.sim.CountByReference("SQ-INV-2026-002"); n != 1 {
		t.Errorf("CountByReference = %d", n)
	}
}

func TestSupplierInvoiceValidation(t *testing.T) {
	cases := []struct {
		name     string
		mod      func(*invoice)
		raw      string // used instead of the invoice when set
		status   int
		code     string
		textLike string
	}{
		{"unknown company code", func(i *invoice) { i.CompanyCode = "9999" }, "", 400, "F5/165", "Company code 9999 does not exist"},
		{"unknown supplier", func(i *invoice) { i.Supplier = "17399999" }, "", 400, "F5/104", "Vendor 17399999 is not defined in company code 1010"},
		{"unknown G/L account", func(i *invoice) { i.Items[0].GL = "99999999" }, "", 400, "F5/507", "G/L account 99999999 is not defined in chart of accounts YCOA"},
		{"unknown cost center", func(i *invoice) { i.Items[0].CostCenter = "10109999" }, "", 400, "KI/248", "Cost center A000/10109999 does not exist on 22.11.2026"},
		{"closed period", func(i *invoice) { i.Posting = edmDateJSON(2024, 11, 5) }, "", 400, "F5/201", "Posting period 011 2024 is not open"},
		{"future period", func(i *invoice) { i.Posting = edmDateJSON(2026, 12, 1) }, "", 400, "F5/201", "Posting period 012 2026 is not open"},
		{"items do not sum to gross", func(i *invoice) { i.Gross = "120.00" }, "", 400, "F5/702", "Balance in transaction currency"},
		{"bad currency", func(i *invoice) { i.Currency = "EU" }, "", 400, "SG/105", "Currency EU is not defined"},
		{"missing supplier", func(i *invoice) { i.Supplier = "" }, "", 400, "00/055", "InvoicingParty"},
		{"malformed JSON", nil, `{"CompanyCode":"1010",`, 400, "SY/530", "The server is refusing to process the request because the entity has a syntax error"},
		{"amount as number", nil, `{"CompanyCode":"1010","InvoiceGrossAmount":119.0}`, 400, "SY/530", "syntax error"},
		{"reference too long", func(i *invoice) { i.Ref = strings.Repeat("X", 17) }, "", 400, "SY/530", "too long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			body := c.raw
			if body == "" {
				inv := defaultInvoice("INV-VAL")
				c.mod(&inv)
				body = inv.json()
			}
			resp, b := h.postInvoice(body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, b)
			}
			m := decodeJSON(t, b)
			if got := dig(m, "error", "code"); got != c.code {
				t.Errorf("code = %v, want %s (body %s)", got, c.code, b)
			}
			if text, _ := dig(m, "error", "message", "value").(string); !strings.Contains(text, c.textLike) {
				t.Errorf("message = %q, want it to contain %q", text, c.textLike)
			}
			if got := dig(m, "error", "message", "lang"); got != "en" {
				t.Errorf("lang = %v", got)
			}
			if got := dig(m, "error", "innererror", "errordetails", 0, "code"); got != c.code {
				t.Errorf("errordetails[0].code = %v", got)
			}
			if got := dig(m, "error", "innererror", "errordetails", 0, "severity"); got != "error" {
				t.Errorf("errordetails[0].severity = %v", got)
			}
			if id, _ := dig(m, "error", "innererror", "transactionid").(string); !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(id) {
				t.Errorf("transactionid = %q", id)
			}
			if ts := dig(m, "error", "innererror", "timestamp"); ts != "20261125101500.0000000" {
				t.Errorf("timestamp = %v", ts)
			}
			if got := dig(m, "error", "innererror", "application", "service_id"); got != "API_SUPPLIERINVOICE_PROCESS_SRV" {
				t.Errorf("service_id = %v", got)
			}
			if n := len(h.sim.Ledger()); n != 0 {
				t.Errorf("%d documents posted", n)
			}
		})
	}
}

func TestSupplierInvoiceDuplicate(t *testing.T) {
	h := newHarness(t, Options{})
	inv := defaultInvoice("INV-DUP")
	if resp, b := h.postInvoice(inv.json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", resp.StatusCode, b)
	}
	resp, b := h.postInvoice(inv.json())
	if resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "M8/108" {
		t.Fatalf("duplicate: status %d body %s", resp.StatusCode, b)
	}
	if text := dig(decodeJSON(t, b), "error", "message", "value"); text != "Check if invoice already entered under accounting document 5105600001 2026" {
		t.Errorf("text = %v", text)
	}
	// A different amount is a different invoice for SAP's check.
	inv.Gross, inv.Items[0].Amount = "200.00", "200.00"
	if resp, b := h.postInvoice(inv.json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("different amount: %d %s", resp.StatusCode, b)
	}
	if n := h.sim.CountByReference("SQ-INV-DUP"); n != 2 {
		t.Errorf("CountByReference = %d, want 2", n)
	}
	if got := h.sim.Stats().Rejected[KindSupplierInvoice]; got != 1 {
		t.Errorf("rejected = %d", got)
	}
}

func TestSupplierInvoiceLookup(t *testing.T) {
	h := newHarness(t, Options{})
	for _, ref := range []string{"INV-A", "O'Brien-7", "INV-C"} {
		if resp, b := h.postInvoice(defaultInvoice(ref).json()); resp.StatusCode != http.StatusCreated {
			t.Fatalf("post %s: %d %s", ref, resp.StatusCode, b)
		}
	}
	lookup := func(filter string, extra url.Values) (int, map[string]any) {
		v := url.Values{"$format": {"json"}, "$select": {"SupplierInvoice,FiscalYear,CompanyCode"}, "$filter": {filter}}
		for k, vs := range extra {
			v[k] = vs
		}
		return h.getJSON(siColl + query(v))
	}

	// SAP keeps the reference in upper case: a filter on the value as sent
	// misses it.
	if _, m := lookup("CompanyCode eq '1010' and SupplierInvoiceIDByInvcgParty eq 'O''Brien-7'", nil); len(results(m)) != 0 {
		t.Errorf("lower-case filter matched: %v", m)
	}
	code, m := lookup("CompanyCode eq '1010' and InvoicingParty eq '17300001' and SupplierInvoiceIDByInvcgParty eq 'O''BRIEN-7'", nil)
	if code != http.StatusOK || len(results(m)) != 1 {
		t.Fatalf("found: status %d body %v", code, m)
	}
	row := results(m)[0].(map[string]any)
	if row["SupplierInvoice"] != "5105600002" || row["FiscalYear"] != "2026" || row["CompanyCode"] != "1010" {
		t.Errorf("row = %v", row)
	}
	if _, ok := row["InvoiceGrossAmount"]; ok {
		t.Error("$select not applied")
	}
	if row["__metadata"] == nil {
		t.Error("__metadata missing")
	}

	// Parenthesised clauses work too.
	if _, m := lookup("(CompanyCode eq '1010') and (SupplierInvoiceIDByInvcgParty eq 'INV-C')", nil); len(results(m)) != 1 {
		t.Errorf("parenthesised: %v", m)
	}
	if code, m := lookup("CompanyCode eq '1010' and SupplierInvoiceIDByInvcgParty eq 'NOPE'", nil); code != 200 || results(m) == nil || len(results(m)) != 0 {
		t.Errorf("not found: status %d body %v", code, m)
	}
	if _, m := lookup("SupplierInvoiceIDByInvcgParty eq 'O''BRIEN-7' and CompanyCode eq '1710'", nil); len(results(m)) != 0 {
		t.Errorf("other company code matched: %v", m)
	}
	if _, m := lookup("CompanyCode eq '1010'", url.Values{"$top": {"1"}, "$skip": {"1"}, "$inlinecount": {"allpages"}}); len(results(m)) != 1 ||
		dig(results(m)[0], "SupplierInvoice") != "5105600002" || dig(m, "d", "__count") != "3" {
		t.Errorf("$top/$skip: %v", m)
	}
	if _, m := lookup("InvoiceGrossAmount eq 119 and PostingDate eq datetime'2026-11-22T00:00:00'", nil); len(results(m)) != 3 {
		t.Errorf("decimal/datetime literals: %v", m)
	}

	for _, bad := range []string{"CompanyCode gt '1010'", "CompanyCode eq '1010' or CompanyCode eq '1710'", "Nope eq 'x'", "CompanyCode eq 'unterminated"} {
		if code, m := lookup(bad, nil); code != http.StatusBadRequest || dig(m, "error", "code") == nil {
			t.Errorf("filter %q: status %d body %v", bad, code, m)
		}
	}

	// Read by key, with and without $expand.
	code, m = h.getJSON(siColl + "(SupplierInvoice='5105600001',FiscalYear='2026')?$format=json")
	if code != http.StatusOK || dig(m, "d", "SupplierInvoiceIDByInvcgParty") != "INV-A" {
		t.Fatalf("by key: %d %v", code, m)
	}
	if dig(m, "d", "to_SupplierInvoiceItemGLAcct", "__deferred", "uri") == nil {
		t.Errorf("navigation not deferred: %v", m)
	}
	_, m = h.getJSON(siColl + "(SupplierInvoice='5105600001',FiscalYear='2026')?$expand=to_SupplierInvoiceItemGLAcct")
	if dig(m, "d", "to_SupplierInvoiceItemGLAcct", "results", 0, "SupplierInvoiceItemAmount") != "119.00" {
		t.Errorf("$expand: %v", m)
	}
	if code, m := h.getJSON(siColl + "(SupplierInvoice='5105609999',FiscalYear='2026')"); code != http.StatusNotFound || dig(m, "error", "code") == nil {
		t.Errorf("missing by key: %d %v", code, m)
	}
}

func TestSupplierInvoiceItemsAsArrayAndISODates(t *testing.T) {
	h := newHarness(t, Options{})
	body := `{"CompanyCode":"1010","DocumentDate":"2026-11-20T00:00:00","PostingDate":"/Date(1795737600000+0000)/",
	"InvoicingParty":"0017300002","SupplierInvoiceIDByInvcgParty":"INV-ARR","DocumentCurrency":"EUR","InvoiceGrossAmount":"50.5",
	"to_SupplierInvoiceItemGLAcct":[{"GLAccount":"65008000","SupplierInvoiceItemAmount":"60.5","DebitCreditCode":"S"},
	{"GLAccount":"65008000","SupplierInvoiceItemAmount":"10","DebitCreditCode":"H"}]}`
	resp, b := h.postInvoice(body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	m := decodeJSON(t, b)
	if want := edmDateJSON(2026, 11, 20); dig(m, "d", "DocumentDate") != want {
		t.Errorf("DocumentDate = %v, want %s", dig(m, "d", "DocumentDate"), want)
	}
	if got := time.UnixMilli(1795737600000).UTC(); got.Month() != time.November || dig(m, "d", "PostingDate") != edmDateJSON(2026, 11, got.Day()) {
		t.Errorf("PostingDate = %v", dig(m, "d", "PostingDate"))
	}
	if dig(m, "d", "InvoiceGrossAmount") != "50.50" {
		t.Errorf("InvoiceGrossAmount = %v", dig(m, "d", "InvoiceGrossAmount"))
	}
}

func TestODataRouting(t *testing.T) {
	h := newHarness(t, Options{})
	if code, m := h.getJSON(SupplierInvoiceServicePath + "/A_Nope"); code != http.StatusNotFound || dig(m, "error", "code") == nil {
		t.Errorf("unknown entity set: %d %v", code, m)
	}
	if code, m := h.getJSON(siRoot); code != http.StatusOK || dig(m, "d", "EntitySets", 0) != "A_SupplierInvoice" {
		t.Errorf("service document: %d %v", code, m)
	}
	resp, b := h.mustRequest(http.MethodGet, SupplierInvoiceServicePath+"/$metadata", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `EntityType Name="A_SupplierInvoiceType"`) {
		t.Errorf("$metadata: %d %s", resp.StatusCode, b)
	}
	h.fetchToken()
	resp, b = h.mustRequest(http.MethodDelete, siColl+"(SupplierInvoice='5105600001',FiscalYear='2026')", nil, map[string]string{"X-CSRF-Token": h.tok})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d %s", resp.StatusCode, b)
	}
	resp, b = h.mustRequest(http.MethodPost, siColl, []byte(defaultInvoice("X").json()), map[string]string{"X-CSRF-Token": h.tok, "Content-Type": "application/atom+xml"})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("atom body: %d %s", resp.StatusCode, b)
	}
}
