package chaos

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

// Flaw is what makes SAP refuse a posting permanently, through its data:
// the harness plants a few so that the checker sees failures that must end
// as clear failures carrying SAP's message, with nothing posted.
type Flaw int

const (
	Sound             Flaw = iota // SAP accepts it
	UnknownGLAccount              // a G/L account missing from the simulator's master data: F5/507
	ClosedPeriod                  // a posting (or billing) date three months back, outside the open periods: F5/201
	UnknownMaterial               // a material missing from the simulator's master data: V1/188
	UnknownSalesOrder             // billing of a sales order the simulator does not hold: VF/010
	StockDeficit                  // a goods issue of more than the simulator's stock can ever hold: M7/021
)

// Code is the SAP message a flawed posting must fail with ("" when sound).
func (f Flaw) Code() string {
	switch f {
	case UnknownGLAccount:
		return "F5/507"
	case ClosedPeriod:
		return "F5/201"
	case UnknownMaterial:
		return "V1/188"
	case UnknownSalesOrder:
		return "VF/010"
	case StockDeficit:
		return "M7/021"
	}
	return ""
}

func (f Flaw) String() string {
	switch f {
	case UnknownGLAccount:
		return "unknown_gl_account"
	case ClosedPeriod:
		return "closed_period"
	case UnknownMaterial:
		return "unknown_material"
	case UnknownSalesOrder:
		return "unknown_sales_order"
	case StockDeficit:
		return "stock_deficit"
	}
	return "sound"
}

// flawPairs are the kinds and flaws planted, in turn: every flaw each kind
// can carry.
var flawPairs = func() []struct {
	spec *kindSpec
	flaw Flaw
} {
	var out []struct {
		spec *kindSpec
		flaw Flaw
	}
	for i := range kinds {
		for _, f := range kinds[i].flaws {
			out = append(out, struct {
				spec *kindSpec
				flaw Flaw
			}{&kinds[i], f})
		}
	}
	return out
}()

// kindSpec is how the harness makes postings of one kind. A kind sapq learns
// (goods movements, sales orders, billing documents) is one more entry in
// kinds; TestEveryKindHasAGenerator fails until it is there.
type kindSpec struct {
	kind tasks.Kind
	tool string // the MCP tool that submits it
	// make returns a posting under key with the given flaw. The posting is
	// the tool's arguments: the tasks types are the tools' input schemas.
	make func(g *generator, key string, flaw Flaw) tasks.Posting
	// flaws are the flaws the kind's postings can carry.
	flaws []Flaw
}

var kinds = []kindSpec{
	{tasks.KindSupplierInvoice, toolOf(tasks.KindSupplierInvoice), (*generator).supplierInvoice, []Flaw{UnknownGLAccount, ClosedPeriod}},
	{tasks.KindJournalEntry, toolOf(tasks.KindJournalEntry), (*generator).journalEntry, []Flaw{UnknownGLAccount, ClosedPeriod}},
	{tasks.KindSalesOrder, toolOf(tasks.KindSalesOrder), (*generator).salesOrder, []Flaw{UnknownMaterial}},
	{tasks.KindBillingDocument, toolOf(tasks.KindBillingDocument), (*generator).billingDocument, []Flaw{UnknownSalesOrder, ClosedPeriod}},
	{tasks.KindGoodsMovement, toolOf(tasks.KindGoodsMovement), (*generator).goodsMovement, []Flaw{StockDeficit}},
	{tasks.KindReversePosting, toolOf(tasks.KindReversePosting), (*generator).reversal, []Flaw{ClosedPeriod}},
}

// reversible are the kinds whose sound postings a reversal key may reverse;
// one into a closed period reverses an FI document only (a material
// document's refusal is MM's M7/053, not F5/201).
var (
	reversible         = []tasks.Kind{tasks.KindSupplierInvoice, tasks.KindJournalEntry, tasks.KindGoodsMovement}
	reversibleInClosed = []tasks.Kind{tasks.KindSupplierInvoice, tasks.KindJournalEntry}
)

// laterJobID stands for the job_id of a reversal's original in the plan:
// the original's job is known only once the run submitted it (see
// agent.args).
const laterJobID = "(the original's job, named at run time)"

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
	// The sales area, customers and materials of sound sales orders;
	// missingMaterial is in no plant of the simulator.
	salesOrg, distributionChannel, division = "1010", "10", "00"
	soldToParties                           = []string{"10100001", "10100002"}
	materials                               = []string{"TG11", "TG12"}
	missingMaterial                         = "ZZ99"
	// missingSalesOrder is a number the simulator's order numbers never
	// reach in a run.
	missingSalesOrder = "999999999"
)

// Billing postings bill the open orders the simulator holds from the start
// (sim.Options.OpenSalesOrders, numbered from 1): each posting takes the
// next one or two, so that no order is billed by two keys (the second key
// would adopt the first one's billing document, by design, and the checker
// could not tell whose it is). The orders the run's sales order postings
// create are not billed: their numbers are known only once SAP answers,
// and a plan is fixed before the run.
const maxOrdersPerBilling = 2

// OpenSalesOrders is how many open orders the simulator must hold for a
// plan of n keys.
func OpenSalesOrders(n int) int { return n * maxOrdersPerBilling }

// generator makes postings from a seeded random source and a date. Dates
// come from the clock: the simulator's open posting periods are the current
// and the previous month (UTC), so sound postings fall in the current month
// up to today (still open if the run crosses a month end) and postings with
// a ClosedPeriod flaw three months back (still closed after one).
type generator struct {
	rng   *rand.Rand
	today time.Time // UTC midnight
	salt  string    // distinguishes runs' invoice numbers
	// billed is how many open sales orders billing postings took so far.
	billed int
	// issuable is the stock sound goods issues may still take, by
	// material in the plant and storage location they issue from: what
	// the simulator holds at start (goodsIssueStock), less what the plan
	// issued so far. Receipts are not counted, for the run may post them
	// after the issues: the plan never issues more than the start's stock.
	issuable map[string]decimal.Decimal
}

func newGenerator(seed uint64, now time.Time) *generator {
	now = now.UTC()
	return &generator{
		rng:   rand.New(rand.NewPCG(seed, seed^0xc4a05)),
		today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC),
		salt:  fmt.Sprint(seed),
	}
}

// The plant and storage locations of goods movements; sound issues take
// from goodsIssueLocation only, where the simulator holds stock at start
// (sap/sim DefaultMasterData). deficitQuantity is more than any run's
// receipts could bring there.
const (
	plant              = "1010"
	goodsIssueLocation = "101A"
	deficitQuantity    = "9999999"
	// maxIssue is the most one goods issue takes of a material: three
	// items of up to three pieces.
	maxIssue = 9
)

// warehouseStorageLocation is the storage location the run's simulator has
// a warehouse manage (sapsim --warehouse-storage-locations): SAP answers
// the goods movements of it 201 without a material document number, an
// unknown outcome the look-up must resolve. One receipt in warehouseEvery
// goes there: a job with an unknown outcome keeps its materials' locks
// until the outcome settles, and every goods movement of the run shares
// the same two materials.
const (
	warehouseStorageLocation = plant + "/" + warehouseLocation
	warehouseLocation        = "101B"
	warehouseEvery           = 40
)

var (
	// goodsIssueStock is the simulator's stock at start in
	// goodsIssueLocation.
	goodsIssueStock = map[string]int64{"TG11": 500, "TG12": 200}
)

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

func (g *generator) salesOrder(key string, flaw Flaw) tasks.Posting {
	items := make([]tasks.SalesOrderItem, 1+g.rng.IntN(3))
	for i := range items {
		items[i] = tasks.SalesOrderItem{Material: g.pick(materials), Quantity: fmt.Sprint(1 + g.rng.IntN(20)), Unit: "PC"}
	}
	if flaw == UnknownMaterial {
		items[g.rng.IntN(len(items))].Material = missingMaterial
	}
	o := &tasks.SalesOrder{
		Key:                 key,
		SalesOrderType:      "OR",
		SalesOrganization:   salesOrg,
		DistributionChannel: distributionChannel,
		Division:            division,
		SoldToParty:         g.pick(soldToParties),
		CustomerReference:   customerReference(key),
		Items:               items,
	}
	if g.rng.IntN(2) == 0 {
		o.RequestedDeliveryDate = g.today.AddDate(0, 0, 1+g.rng.IntN(30)).Format(time.DateOnly)
	}
	return o
}

func (g *generator) billingDocument(key string, flaw Flaw) tasks.Posting {
	b := &tasks.BillingDocument{Key: key}
	if flaw == UnknownSalesOrder {
		b.SalesDocuments = []string{missingSalesOrder}
		return b
	}
	for range 1 + g.rng.IntN(maxOrdersPerBilling) {
		g.billed++
		b.SalesDocuments = append(b.SalesDocuments, fmt.Sprint(g.billed))
	}
	switch {
	case flaw == ClosedPeriod:
		b.BillingDate = g.postingDate(flaw).Format(time.DateOnly)
	case g.rng.IntN(2) == 0:
		b.BillingDate = g.postingDate(flaw).Format(time.DateOnly)
	}
	return b
}

// goodsMovement is a receipt without purchase order (501), a receipt for
// a purchase order (101) or an issue to a cost center (201), with one to
// three items of the simulator's materials (one receipt in warehouseEvery:
// one item, into the warehouse's storage location). An issue takes one to three
// pieces while the plan's issues leave stock at start (issuable); after
// that the generator makes receipts, so that a sound issue never meets a
// deficit, whatever order the run posts them in. StockDeficit issues what
// no storage location holds.
func (g *generator) goodsMovement(key string, flaw Flaw) tasks.Posting {
	if g.issuable == nil {
		g.issuable = map[string]decimal.Decimal{}
		for m, q := range goodsIssueStock {
			g.issuable[m] = decimal.NewFromInt(q)
		}
	}
	posting := g.postingDate(flaw)
	gm := &tasks.GoodsMovement{
		Key:          key,
		PostingDate:  posting.Format(time.DateOnly),
		DocumentDate: g.documentDate(posting),
	}
	if g.rng.IntN(2) == 0 {
		gm.HeaderText = "chaos"
	}
	if g.rng.IntN(3) == 0 {
		gm.Reference = fmt.Sprintf("DN-%d", g.rng.IntN(100000))
	}
	n := 1 + g.rng.IntN(3)
	kind := g.rng.IntN(3)
	switch {
	case flaw == StockDeficit:
		kind = 2
	case kind == 2 && slices.ContainsFunc(materials, func(m string) bool { return g.issuable[m].LessThan(decimal.NewFromInt(maxIssue)) }):
		// The start's stock may not cover the issue: receive instead.
		kind = 0
	}
	switch kind {
	case 0:
		gm.GoodsMovementCode = "05"
		sloc := goodsIssueLocation
		if g.rng.IntN(warehouseEvery) == 0 {
			sloc, n = warehouseLocation, 1
		}
		for i := range n {
			gm.Items = append(gm.Items, tasks.GoodsMovementItem{Material: g.pick(materials), Plant: plant, StorageLocation: sloc,
				MovementType: "501", Quantity: fmt.Sprint(1 + g.rng.IntN(20)), Unit: "PC", Text: fmt.Sprintf("chaos receipt %d", i+1)})
		}
	case 1:
		gm.GoodsMovementCode = "01"
		po := fmt.Sprint(4500000000 + g.rng.IntN(1000))
		for i := range n {
			gm.Items = append(gm.Items, tasks.GoodsMovementItem{Material: g.pick(materials), Plant: plant, StorageLocation: goodsIssueLocation,
				MovementType: "101", Quantity: fmt.Sprint(1 + g.rng.IntN(20)), Unit: "PC", PurchaseOrder: po, PurchaseOrderItem: fmt.Sprint((i + 1) * 10)})
		}
	default:
		gm.GoodsMovementCode = "03"
		for i := range n {
			m := g.pick(materials)
			q := decimal.NewFromInt(int64(1 + g.rng.IntN(maxIssue/3)))
			g.issuable[m] = g.issuable[m].Sub(q)
			gm.Items = append(gm.Items, tasks.GoodsMovementItem{Material: m, Plant: plant, StorageLocation: goodsIssueLocation,
				MovementType: "201", Quantity: q.String(), Unit: "PC", CostCenter: g.pick(costCenters[1:]), Text: fmt.Sprintf("chaos issue %d", i+1)})
		}
		if flaw == StockDeficit {
			gm.Items[g.rng.IntN(len(gm.Items))].Quantity = deficitQuantity
		}
	}
	return gm
}

// reversal reverses an earlier sound supplier invoice, journal entry or goods movement of
// the same agent (makePlan picks it; the run names its job): on the
// original's date when the reversal gives none, on a day of the month up to
// today, or into a closed period for ClosedPeriod.
func (g *generator) reversal(key string, flaw Flaw) tasks.Posting {
	r := &tasks.ReversePosting{Key: key, JobID: laterJobID}
	if g.rng.IntN(2) == 0 {
		r.ReversalReason = "01"
	}
	if flaw == ClosedPeriod || g.rng.IntN(2) == 0 {
		r.PostingDate = g.postingDate(flaw).Format(time.DateOnly)
	}
	return r
}

// customerReference is the customer's purchase order number of a sales
// order: the key's end, as PurchaseOrderByCustomer holds 35 characters.
func customerReference(key string) string {
	const max = 35
	if len(key) > max {
		key = key[len(key)-max:]
	}
	return key
}
