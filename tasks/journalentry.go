package tasks

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// DefaultDocumentType is SAP's document type for G/L account documents.
const DefaultDocumentType = "SA"

// JournalEntry is a G/L journal entry. It maps to JournalEntryCreateRequest in
// SAP's SOAP service JournalEntryCreateRequestConfirmation_In.
type JournalEntry struct {
	Key          string             `json:"idempotency_key" jsonschema:"Your unique key for this business document (1-128 printable characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	CompanyCode  string             `json:"company_code" jsonschema:"SAP company code (up to 4 characters), for example 1010"`
	DocumentDate string             `json:"document_date" jsonschema:"Document date as YYYY-MM-DD"`
	PostingDate  string             `json:"posting_date" jsonschema:"Posting date as YYYY-MM-DD; must fall in an open posting period"`
	Currency     string             `json:"currency" jsonschema:"ISO 4217 currency code, for example EUR"`
	DocumentType string             `json:"document_type,omitempty" jsonschema:"SAP document type (2 characters); default SA"`
	Reference    string             `json:"reference,omitempty" jsonschema:"Optional external reference in upper case (up to 16 characters), stored as the document's reference"`
	HeaderText   string             `json:"header_text,omitempty" jsonschema:"Optional header text (up to 25 characters)"`
	Items        []JournalEntryItem `json:"items" jsonschema:"2 to 999 lines; positive amounts are debits, negative amounts credits, and they must add up to zero"`
}

// JournalEntryItem is one G/L line; a positive amount is a debit, a negative
// one a credit.
type JournalEntryItem struct {
	GLAccount  string `json:"gl_account" jsonschema:"G/L account (up to 10 characters), for example 61003000"`
	Amount     string `json:"amount" jsonschema:"Signed decimal string with at most 2 fraction digits: positive = debit, negative = credit"`
	CostCenter string `json:"cost_center,omitempty" jsonschema:"Optional cost center (up to 10 characters)"`
	Text       string `json:"text,omitempty" jsonschema:"Optional line text (up to 50 characters)"`
}

const minJournalEntryItems = 2

func (*JournalEntry) Kind() Kind               { return KindJournalEntry }
func (j *JournalEntry) IdempotencyKey() string { return j.Key }

// Validate checks every field and that debits equal credits.
func (j *JournalEntry) Validate() error {
	var c checker
	c.checkIdempotencyKey(j.Key)
	c.checkCode("company_code", j.CompanyCode, LenCompanyCode, true)
	c.checkDate("document_date", j.DocumentDate)
	c.checkDate("posting_date", j.PostingDate)
	digits := c.checkCurrency("currency", j.Currency)
	c.checkCode("document_type", j.DocumentType, LenDocumentType, false)
	c.checkReference("reference", j.Reference, LenReference, false)
	c.checkText("header_text", j.HeaderText, LenHeaderText, false)

	switch n := len(j.Items); {
	case n < minJournalEntryItems:
		c.add("items", "must have at least %d lines (a debit and a credit), got %d", minJournalEntryItems, n)
	case n > MaxItems:
		c.add("items", "must have at most %d lines, got %d", MaxItems, n)
	}
	sum, sumOK := decimal.Zero, true
	for i, it := range j.Items {
		c.checkCode(itemField(i, "gl_account"), it.GLAccount, LenGLAccount, true)
		c.checkCode(itemField(i, "cost_center"), it.CostCenter, LenCostCenter, false)
		c.checkText(itemField(i, "text"), it.Text, LenItemText, false)
		amt, ok := c.checkAmount(itemField(i, "amount"), it.Amount, digits)
		if ok && amt.IsZero() {
			c.add(itemField(i, "amount"), "must not be zero (positive = debit, negative = credit)")
		}
		sumOK = sumOK && ok
		sum = sum.Add(amt)
	}
	if sumOK && len(j.Items) >= minJournalEntryItems && !sum.IsZero() {
		c.add("items", "debits and credits do not balance: the amounts add up to %s instead of 0", sum.StringFixed(int32(digits)))
	}
	return c.err()
}

// DocType returns the document type, defaulting to SA.
func (j *JournalEntry) DocType() string {
	if j.DocumentType == "" {
		return DefaultDocumentType
	}
	return j.DocumentType
}

// Amounts returns the line amounts as exact decimals.
func (j *JournalEntry) Amounts() ([]decimal.Decimal, error) {
	out := make([]decimal.Decimal, len(j.Items))
	for i, it := range j.Items {
		var err error
		if out[i], err = parseAmount(itemField(i, "amount"), it.Amount); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (j *JournalEntry) String() string {
	return fmt.Sprintf("journal entry %s %s %d lines", j.CompanyCode, j.Currency, len(j.Items))
}
