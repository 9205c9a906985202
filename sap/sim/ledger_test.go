package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGLAccountLineItemLookup(t *testing.T) {
	h := newHarness(t, Options{})
	h.postJE(defaultJE("SQ-GL-1").xml())
	h.postJE(defaultJE("SQ-GL-2").xml())
	h.postInvoice(defaultInvoice("INV-GL").json())

	v := url.Values{
		"$format": {"json"}, "$select": {"CompanyCode,AccountingDocument,FiscalYear"}, "$top": {"1"},
		"$filter": {"CompanyCode eq '1010' and AssignmentReference eq 'SQ-GL-2'"},
	}
	code, m := h.getJSON(glColl + query(v))
	rows := results(m)
	if code != http.StatusOK || len(rows) != 1 {
		t.Fatalf("lookup: %d %v", code, m)
	}
	if dig(rows[0], "AccountingDocument") != "0100000002" || dig(rows[0], "FiscalYear") != "2026" || dig(rows[0], "CompanyCode") != "1010" {
		t.Errorf("row = %v", rows[0])
	}
	if dig(rows[0], "GLAccount") != nil {
		t.Errorf("$select not applied: %v", rows[0])
	}

	// Without $top: one row per line item.
	v.Del("$top")
	v.Del("$select")
	_, m = h.getJSON(glColl + query(v))
	if rows = results(m); len(rows) != 2 || dig(rows[1], "AmountInTransactionCurrency") != "-100.00" || dig(rows[1], "DebitCreditCode") != "H" {
		t.Errorf("rows = %v", rows)
	}
	// Filter by document and G/L account.
	v.Set("$filter", "AccountingDocument eq '0100000001' and FiscalYear eq '2026' and GLAccount eq '61003000'")
	if _, m = h.getJSON(glColl + query(v)); len(results(m)) != 1 || dig(results(m)[0], "CostCenter") != "10101101" {
		t.Errorf("by document: %v", m)
	}
	// Supplier invoices show up with their FI document: vendor line plus items.
	v.Set("$filter", "ReferenceDocument eq '5105600001'")
	if _, m = h.getJSON(glColl + query(v)); len(results(m)) != 2 || dig(results(m)[0], "AccountingDocument") != "5100000001" {
		t.Errorf("invoice lines: %v", m)
	}
	v.Set("$filter", "CompanyCode eq '1010' and AssignmentReference eq 'SQ-NONE'")
	if code, m = h.getJSON(glColl + query(v)); code != http.StatusOK || len(results(m)) != 0 {
		t.Errorf("not found: %d %v", code, m)
	}
}

func TestLedgerEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	get := func() []map[string]string {
		resp, err := http.Get(h.srv.URL + "/sim/ledger")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Documents []map[string]string `json:"documents"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Documents == nil {
			t.Fatalf("decode: %v %+v", err, body)
		}
		return body.Documents
	}
	if docs := get(); len(docs) != 0 {
		t.Fatalf("empty ledger: %v", docs)
	}
	h.postInvoice(defaultInvoice("INV-L").json())
	h.postJE(defaultJE("SQ-L").xml())
	docs := get()
	want := []map[string]string{
		{"kind": "supplier_invoice", "document": "5105600001", "fiscal_year": "2026", "company_code": "1010", "reference": "SQ-INV-L", "posted_at": testNow.Format(time.RFC3339)},
		{"kind": "journal_entry", "document": "0100000001", "fiscal_year": "2026", "company_code": "1010", "reference": "SQ-L", "posted_at": testNow.Format(time.RFC3339)},
	}
	if fmt.Sprint(docs) != fmt.Sprint(want) {
		t.Errorf("ledger =\n%v\nwant\n%v", docs, want)
	}
}

func TestConcurrentPosting(t *testing.T) {
	h := newHarness(t, Options{})
	h.fetchToken()
	const n = 25
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if resp, b := h.postInvoice(defaultInvoice(fmt.Sprintf("INV-C-%d", i)).json()); resp.StatusCode != http.StatusCreated {
				t.Errorf("invoice %d: %d %s", i, resp.StatusCode, b)
			}
		}()
		go func() {
			defer wg.Done()
			if resp, b := h.postJE(defaultJE(fmt.Sprintf("SQ-C-%d", i)).xml()); resp.StatusCode != http.StatusOK {
				t.Errorf("journal entry %d: %d %s", i, resp.StatusCode, b)
			}
			h.getJSON(glColl + "?$top=1")
		}()
	}
	wg.Wait()
	var invoices, entries []string
	for _, d := range h.sim.Ledger() {
		if d.Kind == KindSupplierInvoice {
			invoices = append(invoices, d.Document)
		} else {
			entries = append(entries, d.Document)
		}
	}
	sort.Strings(invoices)
	sort.Strings(entries)
	if len(invoices) != n || invoices[0] != "5105600001" || invoices[n-1] != fmt.Sprintf("%010d", 5105600000+n) {
		t.Errorf("invoice numbers = %v", invoices)
	}
	if len(entries) != n || entries[0] != "0100000001" || entries[n-1] != fmt.Sprintf("%010d", 100000000+n) {
		t.Errorf("journal entry numbers = %v", entries)
	}
	if st := h.sim.Stats(); st.Posted[KindSupplierInvoice] != n || st.Posted[KindJournalEntry] != n {
		t.Errorf("stats = %+v", st)
	}
}

func TestMasterDataIsCopied(t *testing.T) {
	md := DefaultMasterData()
	md.Suppliers["1010"]["17300099"] = true
	h := newHarness(t, Options{MasterData: md})
	md.Suppliers["1010"]["17300098"] = true // after New: no effect
	inv := defaultInvoice("INV-MD")
	inv.Supplier = "17300099"
	if resp, b := h.postInvoice(inv.json()); resp.StatusCode != http.StatusCreated {
		t.Errorf("added supplier: %d %s", resp.StatusCode, b)
	}
	inv.Supplier, inv.Ref = "17300098", "INV-MD-2"
	if resp, b := h.postInvoice(inv.json()); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "F5/104" {
		t.Errorf("supplier added after New: %d %s", resp.StatusCode, b)
	}
}

// A reversed document stays findable by its assignment and says it is
// reversed; the reversal document carries the same assignment, marked as a
// reversal, and is not counted as a posting of the reference.
func TestReverse(t *testing.T) {
	h := newHarness(t, Options{})
	if resp, b := h.postInvoice(defaultInvoice("INV-R").json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("invoice: %d %s", resp.StatusCode, b)
	}
	_, b := h.postJE(defaultJE("SQ-JE-R").xml())
	je := decodeJE(t, b).Body.Conf.Confirmations[0].Doc

	rev, err := h.sim.Reverse(KindSupplierInvoice, "1010", "5105600001", "2026")
	if err != nil || rev != "5105600002" {
		t.Fatalf("reverse invoice: %q %v", rev, err)
	}
	if _, err := h.sim.Reverse(KindSupplierInvoice, "1010", "5105600001", "2026"); err == nil {
		t.Error("an invoice was reversed twice")
	}
	jeRev, err := h.sim.Reverse(KindJournalEntry, "1010", je.AccountingDocument, je.FiscalYear)
	if err != nil {
		t.Fatalf("reverse journal entry: %v", err)
	}

	code, m := h.getJSON(siColl + query(url.Values{"$filter": {"CompanyCode eq '1010' and AssignmentReference eq 'SQ-INV-R'"},
		"$select": {"SupplierInvoice,IsReversal,IsReversed,ReverseDocument"}}))
	rows := results(m)
	if code != http.StatusOK || len(rows) != 2 ||
		dig(rows[0], "SupplierInvoice") != "5105600001" || dig(rows[0], "IsReversed") != true || dig(rows[0], "ReverseDocument") != "5105600002" ||
		dig(rows[1], "SupplierInvoice") != "5105600002" || dig(rows[1], "IsReversal") != true {
		t.Errorf("invoices: %d %v", code, m)
	}
	code, m = h.getJSON(glColl + query(url.Values{"$filter": {"AssignmentReference eq 'SQ-JE-R' and IsReversal eq false"},
		"$select": {"AccountingDocument,IsReversed,ReversalReferenceDocument"}}))
	rows = results(m)
	if code != http.StatusOK || len(rows) != 2 || dig(rows[0], "IsReversed") != true || dig(rows[0], "ReversalReferenceDocument") != jeRev {
		t.Errorf("journal entry lines: %d %v", code, m)
	}
	if h.sim.CountByReference("SQ-INV-R") != 1 || h.sim.CountByReference("SQ-JE-R") != 1 {
		t.Errorf("reversal documents counted as postings: %+v", h.sim.Ledger())
	}
	for _, d := range h.sim.Ledger() {
		if d.Document == "5105600001" && d.ReversedBy != "5105600002" {
			t.Errorf("ledger entry of the reversed invoice: %+v", d)
		}
	}
}

// A closed period refuses postings until finance opens it.
func TestOpenPeriod(t *testing.T) {
	h := newHarness(t, Options{})
	old := defaultInvoice("INV-OLD")
	old.Posting = edmDateJSON(2026, 8, 14)
	if resp, b := h.postInvoice(old.json()); resp.StatusCode != http.StatusBadRequest || odataCode(t, b) != "F5/201" {
		t.Fatalf("closed period: %d %s", resp.StatusCode, b)
	}
	resp, err := http.Post(h.srv.URL+"/sim/periods", "application/json", strings.NewReader(`{"open":"2026-08"}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("open the period: %v %v", resp, err)
	}
	if resp, b := h.postInvoice(old.json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after opening the period: %d %s", resp.StatusCode, b)
	}
	if err := h.sim.OpenPeriod("August"); err == nil {
		t.Fatal("a period that is not a month was accepted")
	}
}
