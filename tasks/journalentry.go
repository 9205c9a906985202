package tasks

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// KindJournalEntry is a journal entry: G/L lines, and customer and supplier
// lines for payments.
const KindJournalEntry Kind = "journal_entry"

var journalEntrySpec = Spec{
	Kind:        KindJournalEntry,
	Tool:        "submit_journal_entry",
	Title:       "Submit journal entry",
	Summary:     "a journal entry of G/L, customer and supplier lines",
	Description: `Submit a journal entry for posting into SAP: G/L lines (items), and customer and supplier lines (customer_items, supplier_items) for incoming and outgoing payments, at least two lines in all, whose signed amounts add up to zero (positive = debit, negative = credit). An outgoing payment of a supplier invoice: a supplier line with the positive amount (debit: the payable is settled) and a G/L line of the bank account with the negative amount.`,
	SAP:         "SOAP JournalEntryCreateRequestConfirmation_In",
	Reference:   "JournalEntry/Item/AssignmentReference (every line), beside MessageHeader/UUID",
	New:         func() Posting { return new(JournalEntry) },
}

// DefaultDocumentType is SAP's document type for G/L account documents.
const DefaultDocumentType = "SA"

// JournalEntry is a journal entry. It maps to JournalEntryCreateRequest in
// SAP's SOAP service JournalEntryCreateRequestConfirmation_In: G/L lines in
// Item, customer lines in DebtorItem, supplier lines in CreditorItem.
type JournalEntry struct {
	Key           string                     `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this business document (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	CompanyCode   string                     `json:"company_code" sapq:"code,4" sap:"CompanyCode" jsonschema:"SAP company code (up to 4 characters), for example 1010"`
	DocumentDate  string                     `json:"document_date" sapq:"date" sap:"DocumentDate" jsonschema:"Document date as YYYY-MM-DD"`
	PostingDate   string                     `json:"posting_date" sapq:"date" sap:"PostingDate" jsonschema:"Posting date as YYYY-MM-DD; must fall in an open posting period"`
	Currency      string                     `json:"currency" sapq:"currency" sap:"AmountInTransactionCurrency/@currencyCode" jsonschema:"ISO 4217 currency code, for example EUR"`
	DocumentType  string                     `json:"document_type,omitempty" sapq:"code,2" default:"SA" sap:"AccountingDocumentType" jsonschema:"SAP document type (2 characters); default SA (G/L account document); KZ for a payment to a supplier, DZ for a payment from a customer"`
	Reference     string                     `json:"reference,omitempty" sapq:"reference,16" sap:"DocumentReferenceID" jsonschema:"Optional external reference in upper case (up to 16 characters), stored as the document's reference"`
	HeaderText    string                     `json:"header_text,omitempty" sapq:"text,25" sap:"DocumentHeaderText" jsonschema:"Optional header text (up to 25 characters)"`
	Items         []JournalEntryItem         `json:"items,omitempty" sapq:"list,0,999" sap:"Item" jsonschema:"G/L lines: positive amounts are debits, negative amounts credits"`
	CustomerItems []JournalEntryCustomerItem `json:"customer_items,omitempty" sapq:"list,0,999" sap:"DebtorItem" jsonschema:"Customer lines: a negative amount credits the customer's account (an incoming payment), a positive one debits it"`
	SupplierItems []JournalEntrySupplierItem `json:"supplier_items,omitempty" sapq:"list,0,999" sap:"CreditorItem" jsonschema:"Supplier lines: a positive amount debits the supplier's account (an outgoing payment), a negative one credits it"`
	Destination   string                     `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system to post to, by its configured name; omit it to let sapq choose by company code"`
}

// JournalEntryItem is one G/L line; a positive amount is a debit, a negative
// one a credit.
type JournalEntryItem struct {
	GLAccount  string `json:"gl_account" sapq:"code,10" sap:"GLAccount" jsonschema:"G/L account (up to 10 characters), for example 61003000"`
	Amount     string `json:"amount" sapq:"amount" sap:"AmountInTransactionCurrency, DebitCreditCode" jsonschema:"Signed decimal string with at most 2 fraction digits: positive = debit, negative = credit"`
	CostCenter string `json:"cost_center,omitempty" sapq:"code,10" sap:"AccountAssignment/CostCenter" jsonschema:"Optional cost center (up to 10 characters)"`
	Text       string `json:"text,omitempty" sapq:"text,50" sap:"DocumentItemText" jsonschema:"Optional line text (up to 50 characters)"`
}

// JournalEntryCustomerItem is one line on a customer's account.
type JournalEntryCustomerItem struct {
	Customer string `json:"customer" sapq:"code,10" sap:"Debtor" jsonschema:"SAP customer number (up to 10 characters), for example 10100001"`
	Amount   string `json:"amount" sapq:"amount" sap:"AmountInTransactionCurrency, DebitCreditCode" jsonschema:"Signed decimal string with at most 2 fraction digits: positive = debit, negative = credit"`
	Text     string `json:"text,omitempty" sapq:"text,50" sap:"DocumentItemText" jsonschema:"Optional line text (up to 50 characters)"`
}

// JournalEntrySupplierItem is one line on a supplier's account.
type JournalEntrySupplierItem struct {
	Supplier string `json:"supplier" sapq:"code,10" sap:"Creditor" jsonschema:"SAP supplier number (up to 10 characters), for example 17300001"`
	Amount   string `json:"amount" sapq:"amount" sap:"AmountInTransactionCurrency, DebitCreditCode" jsonschema:"Signed decimal string with at most 2 fraction digits: positive = debit, negative = credit"`
	Text     string `json:"text,omitempty" sapq:"text,50" sap:"DocumentItemText" jsonschema:"Optional line text (up to 50 characters)"`
}

// minJournalEntryLines is the fewest lines a journal entry has: a debit and
// a credit.
const minJournalEntryLines = 2

func (*JournalEntry) Kind() Kind               { return KindJournalEntry }
func (j *JournalEntry) IdempotencyKey() string { return j.Key }

// Validate checks every field and that debits equal credits.
func (j *JournalEntry) Validate() error {
	var c checker
	c.checkFields(j)
	lines := j.lines()
	if n := len(lines); n < minJournalEntryLines {
		c.add("items", "a journal entry needs at least %d lines in items, customer_items and supplier_items together (a debit and a credit), got %d", minJournalEntryLines, n)
	} else if n > maxItems {
		c.add("items", "a journal entry has at most %d lines in items, customer_items and supplier_items together, got %d", maxItems, n)
	}
	digits := currencyDigits(j.Currency)
	sum, sumOK := decimal.Zero, true
	for _, l := range lines {
		amt, ok := validAmount(l.amount, digits)
		if ok && amt.IsZero() {
			c.add(l.field, "must not be zero (positive = debit, negative = credit)")
		}
		sumOK = sumOK && ok
		sum = sum.Add(amt)
	}
	if sumOK && len(lines) >= minJournalEntryLines && !sum.IsZero() {
		c.add("items", "debits and credits do not balance: the amounts add up to %s instead of 0", sum.StringFixed(int32(digits)))
	}
	return c.err()
}

// line is one line of any of a journal entry's lists, for the checks
// across them.
type line struct{ field, amount string }

func (j *JournalEntry) lines() []line {
	var out []line
	for i, it := range j.Items {
		out = append(out, line{fmt.Sprintf("items[%d].amount", i), it.Amount})
	}
	for i, it := range j.CustomerItems {
		out = append(out, line{fmt.Sprintf("customer_items[%d].amount", i), it.Amount})
	}
	for i, it := range j.SupplierItems {
		out = append(out, line{fmt.Sprintf("supplier_items[%d].amount", i), it.Amount})
	}
	return out
}

// DocType returns the document type, defaulting to SA.
func (j *JournalEntry) DocType() string {
	if j.DocumentType == "" {
		return DefaultDocumentType
	}
	return j.DocumentType
}

// Facts: the total of the debits (which equals the total of the credits);
// SAP locks the customers' and suppliers' accounts while posting.
func (j *JournalEntry) Facts() Facts {
	debits := decimal.Zero
	for _, l := range j.lines() {
		if a, err := parseAmount(l.field, l.amount); err == nil && a.IsPositive() {
			debits = debits.Add(a)
		}
	}
	f := Facts{
		Amount: debits, Currency: j.Currency, AmountField: "items",
		Units:       []OrgUnit{{UnitCompanyCode, "company_code", j.CompanyCode}},
		Destination: j.Destination,
	}
	for _, it := range j.CustomerItems {
		f.Objects = append(f.Objects, "customer/"+j.CompanyCode+"/"+it.Customer)
	}
	for _, it := range j.SupplierItems {
		f.Objects = append(f.Objects, "supplier/"+j.CompanyCode+"/"+it.Supplier)
	}
	return f
}

func (j *JournalEntry) String() string {
	return fmt.Sprintf("journal entry %s %s %d lines", j.CompanyCode, j.Currency, len(j.lines()))
}
