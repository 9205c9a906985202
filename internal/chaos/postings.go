package chaos

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

// Flaw is what makes SAP refuse a posting permanently, through its data:
// the harness plants a few so that the checker sees failures that must end
// as clear failures carrying SAP's message, with nothing posted.
type Flaw int

const (
	Sound            Flaw = iota // SAP accepts it
	UnknownGLAccount             // a G/L account missing from the simulator's master data: F5/507
	ClosedPeriod                 // a posting date three months back, outside the open periods: F5/201
)

// Code is the SAP message a flawed posting must fail with ("" when sound).
func (f Flaw) Code() string {
	switch f {
	case UnknownGLAccount:
		return "F5/507"
	case ClosedPeriod:
		return "F5/201"
	}
	return ""
}

func (f Flaw) String() string {
	switch f {
	case UnknownGLAccount:
		return "unknown_gl_account"
	case ClosedPeriod:
		return "closed_period"
	}
	return "sound"
}

// flaws are the flaws planted, in turn.
var flaws = []Flaw{UnknownGLAccount, ClosedPeriod}

// kindSpec is how the harness makes postings of one kind. A kind sapq learns
// (goods movements, sales orders, billing documents) is one more entry in
// kinds; TestEveryKindHasAGenerator fails until it is there.
type kindSpec struct {
	kind tasks.Kind
	tool string // the MCP tool that submits it
	// make returns a posting under key with the given flaw. The posting is
	// the tool's arguments: the tasks types are the tools' input schemas.
	make func(g *generator, key string, flaw Flaw) tasks.Posting
}

var kinds = []kindSpec{
	{tasks.KindSupplierInvoice, toolOf(tasks.KindSupplierInvoice), (*generator).supplierInvoice},
	{tasks.KindJournalEntry, toolOf(tasks.KindJournalEntry), (*generator).journalEntry},
}

// toolOf is the submit tool of a kind, as its spec names it.
func toolOf(k tasks.Kind) string {
	spec, ok := tasks.SpecOf(k)
	if !ok {
		panic("chaos: no spec of kind " + string(k))
	}
	return spec.Tool
}

// Master data of the simulator's default company codes (sap/sim
// DefaultMasterData) that sound postings use.
var (
	companyCodes    = []struct{ code, currency string }{{"1010", "EUR"}, {"1710", "USD"}}
	suppliers       = []string{"17300001", "17300002"}
	expenseAccounts = []string{"61003000", "65008000"}
	costCenters     = []string{"", "10101101", "10101102"}
	// offsetAccount is the credit side of journal entries.
	offsetAccount = "11001000"
	// missingAccount is in no chart of accounts of the simulator.
	missingAccount = "69999999"
)

// generator makes postings from a seeded random source and a date. Dates
// come from the clock: the simulator's open posting periods are the current
// and the previous month (UTC), so sound postings fall in the current month
// up to today (still open if the run crosses a month end) and postings with
// a ClosedPeriod flaw three months back (still closed after one).
type generator struct {
	rng   *rand.Rand
	today time.Time // UTC midnight
	salt  string    // distinguishes runs' invoice numbers
}

func newGenerator(seed uint64, now time.Time) *generator {
	now = now.UTC()
	return &generator{
		rng:   rand.New(rand.NewPCG(seed, seed^0xc4a05)),
		today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC),
		salt:  fmt.Sprint(seed),
	}
}

func (g *generator) pick(from []string) string { return from[g.rng.IntN(len(from))] }

// postingDate is a day of the current month up to today, or of the month
// three months back for ClosedPeriod.
func (g *generator) postingDate(flaw Flaw) time.Time {
	if flaw == ClosedPeriod {
		first := time.Date(g.today.Year(), g.today.Month()-3, 1, 0, 0, 0, 0, time.UTC)
		return first.AddDate(0, 0, g.rng.IntN(28))
	}
	return g.today.AddDate(0, 0, -g.rng.IntN(g.today.Day()))
}

// documentDate is the posting date or up to a week before it; document
// dates are not checked against posting periods.
func (g *generator) documentDate(posting time.Time) string {
	return posting.AddDate(0, 0, -g.rng.IntN(8)).Format(time.DateOnly)
}

// amount is a random amount between 1.00 and 50,000.00, in cents: money is
// never a float.
func (g *generator) amount() decimal.Decimal {
	return decimal.New(100+g.rng.Int64N(5_000_000), -2)
}

// split divides total into n positive parts of whole cents.
func (g *generator) split(total decimal.Decimal, n int) []decimal.Decimal {
	cents := total.Shift(2).IntPart()
	parts := make([]decimal.Decimal, n)
	for i := range n - 1 {
		share := int64(1)
		if rest := cents - int64(n-1-i); rest > 1 {
			share = 1 + g.rng.Int64N(rest/2+1)
		}
		parts[i] = decimal.New(share, -2)
		cents -= share
	}
	parts[n-1] = decimal.New(cents, -2)
	return parts
}

// invoiceNumber is the supplier's invoice number: distinct per key and run,
// so that SAP's duplicate invoice check (M8/108) can only ever be hit by a
// second posting of the same key.
func (g *generator) invoiceNumber(key string) string {
	sum := sha256.Sum256([]byte(g.salt + "\x00" + key))
	return "INV" + base32.StdEncoding.EncodeToString(sum[:])[:tasks.LenInvoiceReference-3]
}

func (g *generator) supplierInvoice(key string, flaw Flaw) tasks.Posting {
	cc := companyCodes[g.rng.IntN(len(companyCodes))]
	posting := g.postingDate(flaw)
	gross := g.amount()
	lines := g.split(gross, 1+g.rng.IntN(3))
	items := make([]tasks.SupplierInvoiceItem, len(lines))
	for i, amt := range lines {
		items[i] = tasks.SupplierInvoiceItem{
			GLAccount: g.pick(expenseAccounts), Amount: amt.StringFixed(2),
			CostCenter: g.pick(costCenters), Text: fmt.Sprintf("chaos line %d", i+1),
		}
	}
	if flaw == UnknownGLAccount {
		items[g.rng.IntN(len(items))].GLAccount = missingAccount
	}
	return &tasks.SupplierInvoice{
		Key:              key,
		CompanyCode:      cc.code,
		Supplier:         g.pick(suppliers),
		InvoiceReference: g.invoiceNumber(key),
		DocumentDate:     g.documentDate(posting),
		PostingDate:      posting.Format(time.DateOnly),
		Currency:         cc.currency,
		GrossAmount:      gross.StringFixed(2),
		HeaderText:       "sapq chaos",
		Items:            items,
	}
}

func (g *generator) journalEntry(key string, flaw Flaw) tasks.Posting {
	cc := companyCodes[g.rng.IntN(len(companyCodes))]
	posting := g.postingDate(flaw)
	total := g.amount()
	debits := g.split(total, 1+g.rng.IntN(3))
	items := make([]tasks.JournalEntryItem, 0, len(debits)+1)
	for i, amt := range debits {
		items = append(items, tasks.JournalEntryItem{
			GLAccount: g.pick(expenseAccounts), Amount: amt.StringFixed(2),
			CostCenter: g.pick(costCenters), Text: fmt.Sprintf("chaos debit %d", i+1),
		})
	}
	items = append(items, tasks.JournalEntryItem{GLAccount: offsetAccount, Amount: total.Neg().StringFixed(2), Text: "chaos credit"})
	if flaw == UnknownGLAccount {
		items[g.rng.IntN(len(items))].GLAccount = missingAccount
	}
	return &tasks.JournalEntry{
		Key:          key,
		CompanyCode:  cc.code,
		DocumentDate: g.documentDate(posting),
		PostingDate:  posting.Format(time.DateOnly),
		Currency:     cc.currency,
		HeaderText:   "sapq chaos",
		Items:        items,
	}
}
