package sim

import (
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	clauses, err := parseFilter(`CompanyCode eq '1010' and (SupplierInvoiceIDByInvcgParty eq 'O''Brien and ''x''') and Amount eq 1.50`)
	if err != nil {
		t.Fatal(err)
	}
	want := []filterClause{
		{"CompanyCode", literal{text: "1010"}},
		{"SupplierInvoiceIDByInvcgParty", literal{text: "O'Brien and 'x'"}},
		{"Amount", literal{typ: "bare", text: "1.50"}},
	}
	if len(clauses) != len(want) {
		t.Fatalf("clauses = %+v", clauses)
	}
	for i := range want {
		if clauses[i] != want[i] {
			t.Errorf("clause %d = %+v, want %+v", i, clauses[i], want[i])
		}
	}
	for _, bad := range []string{"A eq", "A ne 'x'", "A eq 'x' or B eq 'y'", "(A eq 'x'", "A eq 'x", "'x' eq A"} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseKeyPredicate(t *testing.T) {
	keys, err := parseKeyPredicate("(SupplierInvoice='5105600001',FiscalYear='2026')", supplierInvoiceSet)
	if err != nil || keys["SupplierInvoice"] != "5105600001" || keys["FiscalYear"] != "2026" {
		t.Errorf("keys = %v, %v", keys, err)
	}
	keys, err = parseKeyPredicate("('0L1010')", glAccountLineItemSet)
	if err != nil || keys["ID"] != "0L1010" {
		t.Errorf("single key = %v, %v", keys, err)
	}
	for _, bad := range []string{"(SupplierInvoice='1')", "(SupplierInvoice=1,FiscalYear='2026')", "SupplierInvoice='1'"} {
		if _, err := parseKeyPredicate(bad, supplierInvoiceSet); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseEdmDateTime(t *testing.T) {
	want := time.Date(2024, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"/Date(1732233600000)/", "/Date(1732233600000+0000)/", "2024-11-22T00:00:00", "2024-11-22T00:00:00Z", "/Date(1732233600000+0100)/"} {
		got, err := parseEdmDateTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, bad := range []string{"/Date(abc)/", "22.11.2024", "/Date(1)"} {
		if _, err := parseEdmDateTime(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
