package tasks_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// fieldMessage returns the message reported for field, failing the test
// when the field has none.
func fieldMessage(t *testing.T, errs []tasks.FieldError, field string) string {
	t.Helper()
	for _, fe := range errs {
		if fe.Field == field {
			return fe.Message
		}
	}
	t.Fatalf("no error for %s in %v", field, errs)
	return ""
}

// Look-alike letters from other scripts and full-width forms would make two
// references a person reads as one: they are refused, naming the character.
func TestLookAlikesAreRefusedByName(t *testing.T) {
	si := taskstest.SupplierInvoice("k")
	cases := []struct {
		name, field, value, want string
		kind                     tasks.Kind
	}{
		{"cyrillic invoice reference", "invoice_reference", "РЕ-2026-11-0042", "U+0420 CYRILLIC CAPITAL LETTER ER at character 1", tasks.KindSupplierInvoice},
		{"full-width invoice reference", "invoice_reference", "ＲＥ-2026-11-0042", `U+FF32 FULLWIDTH LATIN CAPITAL LETTER R (a look-alike of "R") at character 1`, tasks.KindSupplierInvoice},
		{"greek omicron in a key", "idempotency_key", "INV-2026-\u039f42", "U+039F GREEK CAPITAL LETTER OMICRON at character 10", tasks.KindSupplierInvoice},
		{"zero-width space in a key", "idempotency_key", "INV-42\u200b", "U+200B ZERO WIDTH SPACE", tasks.KindSupplierInvoice},
		{"cyrillic company code", "company_code", "1О10", "U+041E CYRILLIC CAPITAL LETTER O at character 2", tasks.KindSupplierInvoice},
		{"cyrillic journal reference", "reference", "АCCR-11", "U+0410 CYRILLIC CAPITAL LETTER A", tasks.KindJournalEntry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p tasks.Posting = si
			if c.kind == tasks.KindJournalEntry {
				p = taskstest.JournalEntry("k")
			}
			raw := mutate(t, p, func(m map[string]any) { m[c.field] = c.value })
			msg := fieldMessage(t, fieldErrors(t, c.kind, raw), c.field)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("%s: %q lacks %q", c.field, msg, c.want)
			}
		})
	}
	// Free text may hold any printable character.
	si.HeaderText, si.Items[0].Text = "Büromaterial", "Papier für Büro – A4"
	if _, err := tasks.Decode(tasks.KindSupplierInvoice, encode(t, si)); err != nil {
		t.Fatalf("non-ASCII text refused: %v", err)
	}
}

// Invalid UTF-8 is refused where it is, not replaced by U+FFFD: "K\xff"
// and "K\xfe" must never become one idempotency key.
func TestInvalidUTF8IsRefusedNotRepaired(t *testing.T) {
	good := string(encode(t, taskstest.JournalEntry("K")))
	for _, bad := range []string{"\xff", "\xfe", "\xc3"} {
		raw := strings.Replace(good, `"idempotency_key":"K"`, `"idempotency_key":"K`+bad+`"`, 1)
		msg := fieldMessage(t, fieldErrors(t, tasks.KindJournalEntry, raw), "idempotency_key")
		if !strings.Contains(msg, "not valid UTF-8") || !strings.Contains(msg, "0x") {
			t.Fatalf("%q: %q", bad, msg)
		}
	}
	// In a line, in an unknown field, and twice: each is named.
	raw := strings.Replace(good, `"text":"Accrued liabilities"`, "\"text\":\"Accrued \xffliabilities\",\"memo\":\"\xfe\"", 1)
	raw = strings.Replace(raw, `"header_text":"Accrual"`, "\"header_text\":\"Accr\xe9al\"", 1)
	errs := fieldErrors(t, tasks.KindJournalEntry, raw)
	for _, f := range []string{"items[1].text", "header_text"} {
		if msg := fieldMessage(t, errs, f); !strings.Contains(msg, "not valid UTF-8") {
			t.Errorf("%s: %q", f, msg)
		}
	}
	if msg := fieldMessage(t, errs, "items[1].memo"); !strings.Contains(msg, "unknown field") {
		t.Errorf("memo: %q", msg)
	}
	// The same bytes written as JSON escapes are valid (U+FFFD is a
	// character like any other), and then refused in a key only as non-ASCII.
	raw = strings.Replace(good, `"idempotency_key":"K"`, `"idempotency_key":"K\ufffd"`, 1)
	if msg := fieldMessage(t, fieldErrors(t, tasks.KindJournalEntry, raw), "idempotency_key"); !strings.Contains(msg, "U+FFFD REPLACEMENT CHARACTER") {
		t.Errorf("escaped U+FFFD: %q", msg)
	}
}

// An error quotes a rejected value only by a short prefix: a 960 KB
// argument must not produce a multi-megabyte answer.
func TestQuotedValuesAreCut(t *testing.T) {
	huge := strings.Repeat("Ж", 480_000) // 960 KB
	cases := []struct {
		name, field, want string
		change            func(m map[string]any)
	}{
		{"code", "company_code", `"ЖЖЖЖ`, func(m map[string]any) { m["company_code"] = huge }},
		{"reference", "invoice_reference", "at most 16 characters", func(m map[string]any) { m["invoice_reference"] = huge }},
		{"date", "document_date", "characters)", func(m map[string]any) { m["document_date"] = huge }},
		{"amount", "items[0].amount", "characters)", func(m map[string]any) { item(m, 0)["amount"] = "1." + strings.Repeat("5", 900_000) }},
		{"gross amount", "gross_amount", "characters)", func(m map[string]any) { m["gross_amount"] = strings.Repeat("0", 900_000) }},
		{"unknown field name", "Ж", "unknown field", func(m map[string]any) { m[huge] = "x" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := mutate(t, taskstest.SupplierInvoice("k"), c.change)
			if len(raw) < 900_000 || len(raw) > tasks.MaxPayloadBytes {
				t.Fatalf("test input is %d bytes", len(raw))
			}
			errs := fieldErrors(t, tasks.KindSupplierInvoice, raw)
			answer, _ := json.Marshal(errs)
			if len(answer) > 1024 {
				t.Fatalf("answer of %d bytes to a %d byte request:\n%.2000s", len(answer), len(raw), answer)
			}
			for _, fe := range errs {
				if strings.HasPrefix(fe.Field, c.field) && strings.Contains(fe.Message, c.want) {
					return
				}
			}
			t.Fatalf("errors %v lack %s: ...%s...", errs, c.field, c.want)
		})
	}
}

// Shape and content are reported in one answer: an unknown field and a
// number for an amount do not hide a wrong currency or a missing supplier.
func TestShapeAndContentInOnePass(t *testing.T) {
	raw := mutate(t, taskstest.SupplierInvoice("k"), func(m map[string]any) {
		m["vendor"] = "17300001"
		delete(m, "supplier")
		m["currency"] = "EUX"
		item(m, 0)["amount"] = 1000
		m["posting_date"] = "2026-02-30"
	})
	got := map[string]string{}
	for _, fe := range fieldErrors(t, tasks.KindSupplierInvoice, raw) {
		got[fe.Field] = fe.Message
	}
	for field, want := range map[string]string{
		"vendor":          "unknown field",
		"items[0].amount": "must be a string, got a number",
		"supplier":        "is required",
		"currency":        "ISO 4217",
		"posting_date":    "real calendar date",
	} {
		if !strings.Contains(got[field], want) {
			t.Errorf("%s: %q, want ...%s...", field, got[field], want)
		}
	}
	if len(got) != 5 {
		t.Errorf("got %d fields, want 5 (nothing twice): %v", len(got), got)
	}
}
