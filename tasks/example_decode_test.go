package tasks_test

import (
	"fmt"
	"os"

	"github.com/sapq/sapq/tasks"
)

// Decode is the one way a posting enters sapq: strict JSON, then every rule,
// with one message per wrong field.
func ExampleDecode() {
	raw, _ := os.ReadFile("../testdata/postings/invalid_journal_entry.json")
	_, err := tasks.Decode(tasks.KindJournalEntry, raw)
	for _, f := range err.(*tasks.ValidationError).Fields {
		fmt.Println(f)
	}

	raw, _ = os.ReadFile("../testdata/postings/journal_entry.json")
	p, err := tasks.Decode(tasks.KindJournalEntry, raw)
	fmt.Println(p, err)
	// Output:
	// company_code: must be at most 4 characters, got 5 ("10100")
	// document_date: must be a real calendar date as YYYY-MM-DD, got "2026-02-30"
	// currency: must be the ISO 4217 code of a currency in use, in upper case, such as EUR or USD; got "EUX"
	// items[0].amount: must have at most 2 fraction digits, got "2500.001"
	// journal entry 1010 EUR 2 lines <nil>
}
