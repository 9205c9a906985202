package tasks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidPostingsDecode(t *testing.T) {
	for _, p := range []tasks.Posting{taskstest.SupplierInvoice("k1"), taskstest.JournalEntry("k2")} {
		got, err := tasks.Decode(p.Kind(), encode(t, p))
		if err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		if got.IdempotencyKey() != p.IdempotencyKey() {
			t.Fatalf("%s: key %q", p.Kind(), got.IdempotencyKey())
		}
	}
}

// fieldErrors decodes raw as kind and returns the reported field errors.
func fieldErrors(t *testing.T, kind tasks.Kind, raw string) []tasks.FieldError {
	t.Helper()
	_, err := tasks.Decode(kind, []byte(raw))
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Decode(%s) = %v, want a validation error", raw, err)
	}
	return verr.Fields
}

func mutate(t *testing.T, p tasks.Posting, f func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	json.Unmarshal(encode(t, p), &m)
	f(m)
	return string(encode(t, m))
}

func item(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }

func TestInvalidPostingsNameTheField(t *testing.T) {
	si, je := taskstest.SupplierInvoice("k"), taskstest.JournalEntry("k")
	cases := []struct {
		name  string
		kind  tasks.Kind
		raw   string
		field string
		msg   string
	}{
		{"unknown field", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["discount"] = "1" }), "discount", "unknown field"},
		{"unknown field in a line", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { item(m, 1)["bogus"] = 1 }), "items[1].bogus", "unknown field"},
		{"amount as number", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["gross_amount"] = 1190.0 }), "gross_amount", "must be a string"},
		{"line amount as number", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { item(m, 1)["amount"] = -250 }), "items[1].amount", "must be a string"},
		{"items as object", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["items"] = map[string]any{} }), "items", "must be an array"},
		{"three fraction digits", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) {
			item(m, 0)["amount"] = "250.001"
			item(m, 1)["amount"] = "-250.001"
		}), "items[0].amount", "at most 2 fraction digits"},
		{"exponent", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { item(m, 0)["amount"] = "2.5e2" }), "items[0].amount", "decimal string"},
		{"unbalanced", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { item(m, 1)["amount"] = "-249.99" }), "items", "do not balance"},
		{"one line entry", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["items"] = m["items"].([]any)[:1] }), "items", "at least 2"},
		{"lines differ from gross", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["gross_amount"] = "1200.00" }), "items", "must be equal"},
		{"no items", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["items"] = []any{} }), "items", "at least 1"},
		{"february 30", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["document_date"] = "2026-02-30" }), "document_date", "real calendar date"},
		{"wrong date format", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["posting_date"] = "25.11.2026" }), "posting_date", "YYYY-MM-DD"},
		{"unknown currency", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "EUX" }), "currency", "ISO 4217"},
		{"precious metal", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "XAU" }), "currency", "in use"},
		{"testing currency", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "XTS" }), "currency", "in use"},
		{"no currency", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "XXX" }), "currency", "in use"},
		{"withdrawn currency", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "DEM" }), "currency", "in use"},
		{"currency withdrawn in 2023", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "HRK" }), "currency", "in use"},
		{"lower-case invoice reference", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["invoice_reference"] = "inv-2026/7" }), "invoice_reference", `send "INV-2026/7"`},
		{"invoice reference with a trailing blank", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["invoice_reference"] = "INV-1 " }), "invoice_reference", "blanks"},
		{"lower-case reference", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["reference"] = "accr-11" }), "reference", `send "ACCR-11"`},
		{"lower-case currency", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["currency"] = "eur" }), "currency", "upper case"},
		{"long company code", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["company_code"] = "10100" }), "company_code", "at most 4"},
		{"long supplier", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["supplier"] = "12345678901" }), "supplier", "at most 10"},
		{"long invoice reference", tasks.KindSupplierInvoice, mutate(t, si, func(m map[string]any) { m["invoice_reference"] = strings.Repeat("R", 17) }), "invoice_reference", "at most 16"},
		{"long header text", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["header_text"] = strings.Repeat("h", 26) }), "header_text", "at most 25"},
		{"long reference", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["reference"] = strings.Repeat("r", 17) }), "reference", "at most 16"},
		{"long gl account", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { item(m, 1)["gl_account"] = "12345678901" }), "items[1].gl_account", "at most 10"},
		{"missing key", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { delete(m, "idempotency_key") }), "idempotency_key", "is required"},
		{"long key", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["idempotency_key"] = strings.Repeat("k", 129) }), "idempotency_key", "at most 128"},
		{"control character in key", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) { m["idempotency_key"] = "a\nb" }), "idempotency_key", "printable"},
		{"zero line", tasks.KindJournalEntry, mutate(t, je, func(m map[string]any) {
			m["items"] = append(m["items"].([]any), map[string]any{"gl_account": "11001000", "amount": "0.00"})
		}), "items[2].amount", "must not be zero"},
		{"trailing data", tasks.KindJournalEntry, string(encode(t, je)) + "{}", "", "after the JSON object"},
		{"unknown kind", tasks.Kind("purchase_order"), "{}", "kind", "unknown posting kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := fieldErrors(t, c.kind, c.raw)
			for _, fe := range errs {
				if fe.Field == c.field && strings.Contains(fe.Message, c.msg) {
					return
				}
			}
			t.Fatalf("errors %v do not include %s: ...%s...", errs, c.field, c.msg)
		})
	}
}

func TestEveryViolationIsReported(t *testing.T) {
	errs := fieldErrors(t, tasks.KindSupplierInvoice, `{"idempotency_key":"k","company_code":"","supplier":"x","invoice_reference":"","document_date":"2026-13-01","posting_date":"","currency":"","gross_amount":"","items":[]}`)
	if len(errs) < 7 {
		t.Fatalf("got %d errors, want one per violation: %v", len(errs), errs)
	}
}

// Shape errors (unknown or misspelt fields, duplicates, wrong JSON types)
// are listed together, each with its path, so an agent fixes them in one
// round instead of one per call.
func TestEveryShapeErrorIsReported(t *testing.T) {
	raw := `{"idempotency_key":"k","Company_Code":"1010","company_code":"1010","company_code":"1710",
		"document_date":20261125,"posting_date":"2026-11-25","currency":"EUR","discount":{"pct":[1,2]},
		"items":[{"gl_account":"61003000","amount":250},{"gl_account":["x"],"amount":"-250.00","memo":"m"},"line"]}`
	got := map[string]string{}
	for _, fe := range fieldErrors(t, tasks.KindJournalEntry, raw) {
		got[fe.Field] = fe.Message
	}
	want := map[string]string{
		"Company_Code":        `did you mean "company_code"`,
		"company_code":        "more than once",
		"document_date":       "must be a string, got a number",
		"discount":            "unknown field",
		"items[0].amount":     "must be a string, got a number",
		"items[1].gl_account": "must be a string, got an array",
		"items[1].memo":       "unknown field",
		"items[2]":            "must be an object, got a string",
	}
	for field, msg := range want {
		if !strings.Contains(got[field], msg) {
			t.Errorf("%s: got %q, want ...%s...", field, got[field], msg)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d: %v", len(got), len(want), got)
	}
}

// Integers are checked exactly: a fraction or an out-of-range number is
// named, not silently truncated.
func TestIntegerFieldsAreExact(t *testing.T) {
	var v struct {
		Limit *int `json:"limit"`
	}
	for _, raw := range []string{`{"limit":1.5}`, `{"limit":1e99}`, `{"limit":"5"}`} {
		err := tasks.DecodeStrict([]byte(raw), &v)
		var verr *tasks.ValidationError
		if !errors.As(err, &verr) || verr.Fields[0].Field != "limit" || !strings.Contains(verr.Fields[0].Message, "must be an integer") {
			t.Errorf("%s: %v, want limit: must be an integer", raw, err)
		}
	}
	if err := tasks.DecodeStrict([]byte(`{"limit":null}`), &v); err != nil || v.Limit != nil {
		t.Errorf("null limit: %v, %v", err, v.Limit)
	}
	if err := tasks.DecodeStrict([]byte(`{"limit":7}`), &v); err != nil || *v.Limit != 7 {
		t.Errorf("limit 7: %v", err)
	}
}

func TestMalformedJSONIsNamedWithItsOffset(t *testing.T) {
	errs := fieldErrors(t, tasks.KindJournalEntry, `{"idempotency_key":"k",,}`)
	if !strings.Contains(errs[0].Message, "malformed JSON at byte") {
		t.Fatalf("got %v", errs)
	}
}

func TestOversizedInputIsRejected(t *testing.T) {
	raw := `{"idempotency_key":"` + strings.Repeat("x", tasks.MaxPayloadBytes) + `"}`
	errs := fieldErrors(t, tasks.KindJournalEntry, raw)
	if !strings.Contains(errs[0].Message, "limit") {
		t.Fatalf("oversized input: %v", errs)
	}
}

func TestZeroDecimalCurrencyRejectsFractions(t *testing.T) {
	je := taskstest.JournalEntry("k")
	je.Currency = "JPY"
	je.Items[0].Amount, je.Items[1].Amount = "250.50", "-250.50"
	if err := je.Validate(); err == nil || !strings.Contains(err.Error(), "at most 0 fraction digits") {
		t.Fatalf("JPY with fractions: %v", err)
	}
}

func TestFingerprintIgnoresFormattingButNotContent(t *testing.T) {
	a, _ := tasks.Decode(tasks.KindJournalEntry, encode(t, taskstest.JournalEntry("k")))
	var pretty []byte
	pretty, _ = json.MarshalIndent(taskstest.JournalEntry("k"), "", "   ")
	b, _ := tasks.Decode(tasks.KindJournalEntry, pretty)
	fa, _, _ := tasks.Fingerprint(a)
	fb, _, _ := tasks.Fingerprint(b)
	if fa != fb {
		t.Fatal("the same entry formatted differently has another fingerprint")
	}
	c := taskstest.JournalEntry("k")
	c.Items[0].Text = "changed"
	fc, _, _ := tasks.Fingerprint(c)
	if fc == fa {
		t.Fatal("a changed entry has the same fingerprint")
	}
}

func TestFieldNamesAreExactAndUnique(t *testing.T) {
	je := taskstest.JournalEntry("k")
	cases := []struct {
		name, raw, field, msg string
	}{
		{"other case", mutate(t, je, func(m map[string]any) { m["Company_Code"] = m["company_code"]; delete(m, "company_code") }), "Company_Code", `did you mean "company_code"`},
		{"other case in a line", mutate(t, je, func(m map[string]any) { item(m, 1)["GL_Account"] = "21100000"; delete(item(m, 1), "gl_account") }), "items[1].GL_Account", `did you mean "gl_account"`},
		{"duplicate key", strings.Replace(string(encode(t, je)), `"currency":"EUR"`, `"currency":"EUR","currency":"USD"`, 1), "currency", "more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := fieldErrors(t, tasks.KindJournalEntry, c.raw)
			if len(errs) != 1 || errs[0].Field != c.field || !strings.Contains(errs[0].Message, c.msg) {
				t.Fatalf("errors %v, want %s: ...%s...", errs, c.field, c.msg)
			}
		})
	}
}

// A job's stored payload is sent as it was accepted: rules tightened since
// (here, upper-case references) do not fail it.
func TestStoredPayloadIsNotValidatedAgain(t *testing.T) {
	old := taskstest.SupplierInvoice("INV-OLD")
	old.InvoiceReference = "inv-old" // accepted before references had to be upper case
	job := tasks.Job{Kind: tasks.KindSupplierInvoice, Payload: encode(t, old)}
	p, err := job.Posting()
	if err != nil || p.(*tasks.SupplierInvoice).InvoiceReference != "inv-old" {
		t.Fatalf("Posting() = %v, %v", p, err)
	}
	if _, err := tasks.Decode(tasks.KindSupplierInvoice, job.Payload); err == nil {
		t.Fatal("a new submission with a lower-case reference was accepted")
	}
}

// Currencies introduced in recent years are accepted, with their own
// number of fraction digits (JPY has none).
func TestCurrentCurrenciesAreAccepted(t *testing.T) {
	for _, code := range []string{"EUR", "USD", "VES", "MRU", "SLE", "ZWG"} {
		je := taskstest.JournalEntry("k")
		je.Currency = code
		if err := je.Validate(); err != nil {
			t.Errorf("%s: %v", code, err)
		}
	}
	je := taskstest.JournalEntry("k")
	je.Currency = "JPY"
	if err := je.Validate(); err == nil || !strings.Contains(err.Error(), "at most 0 fraction digits") {
		t.Errorf("JPY with cents: %v", err)
	}
}

// A megabyte of one repeated mistake gets a bounded answer, not half a
// million lines.
func TestViolationsAreCapped(t *testing.T) {
	raw := `{"items":[` + strings.Repeat(`1,`, 100000) + `1]}`
	errs := fieldErrors(t, tasks.KindJournalEntry, raw)
	if len(errs) != tasks.MaxFieldErrors+1 || !strings.Contains(errs[len(errs)-1].Message, "and 99951 more") {
		t.Fatalf("got %d errors, last %v", len(errs), errs[len(errs)-1])
	}
	if errs[0].Field != "items[0]" || !strings.Contains(errs[0].Message, "must be an object") {
		t.Fatalf("first error %v", errs[0])
	}
}
