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
	// Reference is SupplierInvoiceIDByInvcgParty for supplier invoices and the
	// AssignmentReference of the first item that carries one for journal entries.
	Reference string    `json:"reference"`
	PostedAt  time.Time `json:"posted_at"`
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
	invoices    []*supplierInvoice
	lines       []*glLine // GLAccountLineItem rows in posting order
	ledger      []LedgerDocument
	numbers     map[string]int64  // number range -> last number issued
	soapReplies map[string][]byte // request MessageHeader/UUID -> original response
}

func newBooks() books {
	return books{
		numbers:     map[string]int64{},
		soapReplies: map[string][]byte{},
	}
}

// Number range intervals, as in a best-practice S/4HANA system.
const (
	firstSupplierInvoice = 5105600001 // MM invoice documents (RBKP)
	firstInvoiceFIDoc    = 5100000001 // FI documents of supplier invoices (type RE)
	firstJournalEntry    = 100000001  // FI documents of type SA
)

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
		{"Supplier", l.Supplier},
	}
}

// Ledger returns every document posted so far, oldest first.
func (s *Server) Ledger() []LedgerDocument {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.books.ledger)
}

// CountByReference returns how many posted documents carry ref as their reference
// (see LedgerDocument.Reference). Exactly-once tests assert it is 1.
func (s *Server) CountByReference(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.books.ledger {
		if d.Reference == ref {
			n++
		}
	}
	return n
}

// Stats returns a snapshot of the simulator's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}
