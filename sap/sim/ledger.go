package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// Kind is the kind of a posted document.
type Kind string

// The document kinds.
const (
	KindSupplierInvoice Kind = "supplier_invoice"
	KindJournalEntry    Kind = "journal_entry"
)

// LedgerDocument is one document posted in the simulator, as listed by Ledger and
// GET /sim/ledger.
type LedgerDocument struct {
	Kind        Kind   `json:"kind"`
	Document    string `json:"document"`
	FiscalYear  string `json:"fiscal_year"`
	CompanyCode string `json:"company_code"`
	// Reference is the document's AssignmentReference: the header's for
	// supplier invoices and sales orders, the first line's that carries one
	// for journal entries. sapq writes its posting reference there.
	// Billing documents carry none.
	Reference string `json:"reference"`
	// SalesDocuments are the sales documents a billing document bills
	// (leading zeros dropped, sorted as numbers): what identifies it.
	SalesDocuments []string  `json:"sales_documents,omitempty"`
	PostedAt       time.Time `json:"posted_at"`
	// ReversedBy is the document that reversed this one; Reverses names the
	// document a reversal document reverses.
	ReversedBy string `json:"reversed_by,omitempty"`
	Reverses   string `json:"reverses,omitempty"`
}

// Stats counts what the simulator has seen since it started.
type Stats struct {
	// Attempts counts posting requests per kind that passed authentication and the
	// CSRF check (every retry counts, faulted ones included).
	Attempts map[Kind]int `json:"attempts"`
	// Posted counts documents actually posted per kind.
	Posted map[Kind]int `json:"posted"`
	// Rejected counts postings refused with a business error per kind.
	Rejected map[Kind]int `json:"rejected"`
	// Replayed counts SOAP requests answered from the message UUID store.
	Replayed int `json:"replayed"`
	// CSRFRejected counts modifying OData requests refused with 403 Required.
	CSRFRejected int `json:"csrf_rejected"`
	// Faults counts injected faults per kind.
	Faults map[FaultKind]int `json:"faults"`
	// LockCollisions counts posting requests that arrived while another
	// posting being processed held one of their objects (see
	// Options.EnqueueLocks): each is a lock conflict in a real SAP system.
	LockCollisions int `json:"lock_collisions"`
	// MaxInFlight is the most requests (reads, CSRF fetches and postings)
	// SAP was processing at once, counting a request until SAP finished it,
	// even if its client gave up earlier.
	MaxInFlight int `json:"max_in_flight"`
}

func newStats() Stats {
	return Stats{Attempts: map[Kind]int{}, Posted: map[Kind]int{}, Rejected: map[Kind]int{}, Faults: map[FaultKind]int{}}
}

func (st Stats) clone() Stats {
	st.Attempts = maps.Clone(st.Attempts)
	st.Posted = maps.Clone(st.Posted)
	st.Rejected = maps.Clone(st.Rejected)
	st.Faults = maps.Clone(st.Faults)
	return st
}

// books is everything the simulated SAP system has posted. Guarded by Server.mu.
type books struct {
	invoices     []*supplierInvoice
	lines        []*glLine // GLAccountLineItem rows in posting order
	ledger       []LedgerDocument
	numbers      map[string]int64  // number range -> last number issued
	soapReplies  map[string][]byte // request MessageHeader/UUID -> original response
	soapInFlight map[string]bool   // request UUIDs being processed
	// The look-ups clients make after every lost answer filter by
	// AssignmentReference: these indexes answer them without building every
	// row, as a database index would.
	linesByAssignment    map[string][]*glLine
	invoicesByAssignment map[string][]*supplierInvoice
	// openPeriods are months opened besides the current and the previous
	// one ("2026-11").
	openPeriods []string
	// sales are the sales orders and billing documents.
	sales salesBooks
	// materials are the material documents and the stock they move.
	materials materialBooks
}

func newBooks() books {
	return books{
		numbers:              map[string]int64{},
		soapReplies:          map[string][]byte{},
		soapInFlight:         map[string]bool{},
		linesByAssignment:    map[string][]*glLine{},
		invoicesByAssignment: map[string][]*supplierInvoice{},
		sales:                newSalesBooks(),
	}
}

// Number range intervals, as in a best-practice S/4HANA system.
const (
	firstSupplierInvoice = 5105600001 // MM invoice documents (RBKP)
	firstInvoiceFIDoc    = 5100000001 // FI documents of supplier invoices (type RE)
	firstJournalEntry    = 100000001  // FI documents of type SA
)

// addLines books G/L line items. Callers hold s.mu.
func (b *books) addLines(lines ...*glLine) {
	b.lines = append(b.lines, lines...)
	for _, l := range lines {
		if l.AssignmentReference != "" {
			b.linesByAssignment[l.AssignmentReference] = append(b.linesByAssignment[l.AssignmentReference], l)
		}
	}
}

// addInvoice books a supplier invoice. Callers hold s.mu.
func (b *books) addInvoice(inv *supplierInvoice) {
	b.invoices = append(b.invoices, inv)
	if inv.AssignmentReference != "" {
		b.invoicesByAssignment[inv.AssignmentReference] = append(b.invoicesByAssignment[inv.AssignmentReference], inv)
	}
}

// nextNumber draws the next 10-digit number from a number range. Numbers are never
// reused, and a document that fails validation does not consume one.
func (b *books) nextNumber(rangeKey string, first int64) string {
	n, ok := b.numbers[rangeKey]
	if !ok {
		n = first - 1
	}
	n++
	b.numbers[rangeKey] = n
	return fmt.Sprintf("%010d", n)
}

// glLine is one row of the universal journal as API_GLACCOUNTLINEITEM shows it.
type glLine struct {
	CompanyCode             string
	FiscalYear              string
	AccountingDocument      string
	LedgerGLLineItem        string
	GLAccount               string
	ChartOfAccounts         string
	CostCenter              string
	Customer                string
	Supplier                string
	DebitCreditCode         string
	TransactionCurrency     string
	Amount                  decimal.Decimal
	CompanyCodeCurrency     string
	PostingDate             time.Time
	DocumentDate            time.Time
	AccountingDocumentType  string
	AssignmentReference     string
	DocumentItemText        string
	ReferenceDocumentType   string
	ReferenceDocument       string
	BusinessTransactionType string
	CreatedByUser           string
	CreationDateTime        time.Time
	// IsReversal marks a line of a reversal document; IsReversed a line
	// whose document was reversed by ReversalReferenceDocument.
	IsReversal, IsReversed    bool
	ReversalReferenceDocument string
}

func (l *glLine) id() string {
	return "0L" + l.CompanyCode + l.FiscalYear + l.AccountingDocument + l.LedgerGLLineItem
}

// properties is the OData representation of the row. Amounts are only given in
// company code currency when the document was posted in it: the simulator keeps no
// exchange rates.
func (l *glLine) properties() object {
	amountCC := ""
	if l.TransactionCurrency == l.CompanyCodeCurrency {
		amountCC = formatAmount(l.Amount)
	}
	return object{
		{"ID", l.id()},
		{"SourceLedger", "0L"},
		{"CompanyCode", l.CompanyCode},
		{"FiscalYear", l.FiscalYear},
		{"AccountingDocument", l.AccountingDocument},
		{"LedgerGLLineItem", l.LedgerGLLineItem},
		{"Ledger", "0L"},
		{"ChartOfAccounts", l.ChartOfAccounts},
		{"GLAccount", l.GLAccount},
		{"BusinessTransactionType", l.BusinessTransactionType},
		{"ReferenceDocumentType", l.ReferenceDocumentType},
		{"ReferenceDocument", l.ReferenceDocument},
		{"CostCenter", l.CostCenter},
		{"TransactionCurrency", l.TransactionCurrency},
		{"AmountInTransactionCurrency", formatAmount(l.Amount)},
		{"CompanyCodeCurrency", l.CompanyCodeCurrency},
		{"AmountInCompanyCodeCurrency", amountCC},
		{"DebitCreditCode", l.DebitCreditCode},
		{"FiscalPeriod", fmt.Sprintf("%03d", int(l.PostingDate.Month()))},
		{"PostingDate", formatEdmDate(l.PostingDate)},
		{"DocumentDate", formatEdmDate(l.DocumentDate)},
		{"AccountingDocumentType", l.AccountingDocumentType},
		{"AccountingDocumentItem", l.LedgerGLLineItem[3:]},
		{"AssignmentReference", l.AssignmentReference},
		{"DocumentItemText", l.DocumentItemText},
		{"AccountingDocCreatedByUser", l.CreatedByUser},
		{"CreationDateTime", formatEdmDateTimeOffset(l.CreationDateTime)},
		{"Customer", l.Customer},
		{"Supplier", l.Supplier},
		{"IsReversal", l.IsReversal},
		{"IsReversed", l.IsReversed},
		{"ReversalReferenceDocument", l.ReversalReferenceDocument},
	}
}

// Ledger returns every document posted so far, oldest first.
func (s *Server) Ledger() []LedgerDocument {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.books.ledger)
}

// CountByReference returns how many posted documents carry ref as their reference
// (see LedgerDocument.Reference), reversal documents not counted. Exactly-once
// tests assert it is 1.
func (s *Server) CountByReference(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.books.ledger {
		if d.Reference == ref && d.Reverses == "" {
			n++
		}
	}
	return n
}

// reversalLine is what a reversal's lines take from the reversal rather
// than from the original: when and by whom it was made, its posting date
// (zero: the original's) and, for an invoice, the reversal invoice that
// its FI document belongs to.
type reversalLine struct {
	at                time.Time
	user              string
	postingDate       time.Time
	referenceDocument string
}

// reverseLines writes the reversal FI document of an FI document: each line
// with the opposite amount, the assignment kept. Callers hold s.mu.
func (s *Server) reverseLines(companyCode, fiscalYear, document, reversal string, rl reversalLine) {
	var added []*glLine
	for _, l := range s.books.lines {
		if l.CompanyCode != companyCode || l.FiscalYear != fiscalYear || l.AccountingDocument != document {
			continue
		}
		l.IsReversed, l.ReversalReferenceDocument = true, reversal
		r := *l
		r.AccountingDocument, r.Amount, r.CreationDateTime = reversal, l.Amount.Neg(), rl.at
		r.CreatedByUser = rl.user
		if !rl.postingDate.IsZero() {
			r.PostingDate = rl.postingDate
		}
		if rl.referenceDocument != "" {
			r.ReferenceDocument = rl.referenceDocument
		}
		r.DebitCreditCode = map[string]string{"S": "H", "H": "S"}[l.DebitCreditCode]
		r.IsReversed, r.IsReversal, r.ReversalReferenceDocument = false, true, document
		added = append(added, &r)
	}
	s.books.addLines(added...)
}

// Stats returns a snapshot of the simulator's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}
