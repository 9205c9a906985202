package tasks

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// SupplierInvoice is an incoming invoice from a supplier posted against G/L
// accounts (no purchase order). It maps to A_SupplierInvoice in
// API_SUPPLIERINVOICE_PROCESS_SRV with lines in to_SupplierInvoiceItemGLAcct.
type SupplierInvoice struct {
	Key              string                `json:"idempotency_key" jsonschema:"Your unique key for this business document (1-128 printable characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	CompanyCode      string                `json:"company_code" jsonschema:"SAP company code (up to 4 characters), for example 1010"`
	Supplier         string                `json:"supplier" jsonschema:"SAP supplier number (up to 10 characters), for example 17300001"`
	InvoiceReference string                `json:"invoice_reference" jsonschema:"The supplier's own invoice number as printed on the invoice, in upper case as SAP stores it (up to 16 characters)"`
	DocumentDate     string                `json:"document_date" jsonschema:"Invoice date as YYYY-MM-DD"`
	PostingDate      string                `json:"posting_date" jsonschema:"Posting date as YYYY-MM-DD; must fall in an open posting period"`
	Currency         string                `json:"currency" jsonschema:"ISO 4217 currency code, for example EUR"`
	GrossAmount      string                `json:"gross_amount" jsonschema:"Invoice gross amount as a decimal string with at most 2 fraction digits, for example 1190.00; must equal the sum of the item amounts"`
	HeaderText       string                `json:"header_text,omitempty" jsonschema:"Optional header text (up to 25 characters)"`
	Items            []SupplierInvoiceItem `json:"items" jsonschema:"1 to 999 G/L account lines; their amounts must add up to gross_amount (SAP calculates tax)"`
}

// SupplierInvoiceItem is one G/L account line of a supplier invoice.
type SupplierInvoiceItem struct {
	GLAccount  string `json:"gl_account" jsonschema:"G/L account (up to 10 characters), for example 61003000"`
	Amount     string `json:"amount" jsonschema:"Line amount as a decimal string with at most 2 fraction digits; negative for a credit line"`
	CostCenter string `json:"cost_center,omitempty" jsonschema:"Optional cost center (up to 10 characters)"`
	TaxCode    string `json:"tax_code,omitempty" jsonschema:"Optional tax code (2 characters), for example V1"`
	Text       string `json:"text,omitempty" jsonschema:"Optional line text (up to 50 characters)"`
}

const (
	minSupplierInvoiceItems = 1
	// MaxItems is the most lines a posting may have: SAP numbers a
	// document's line items with three digits (BUZEI).
	MaxItems = 999
)

func (*SupplierInvoice) Kind() Kind               { return KindSupplierInvoice }
func (s *SupplierInvoice) IdempotencyKey() string { return s.Key }

// Validate checks every field and the rule that the lines add up to the gross
// amount, reporting all violations at once.
func (s *SupplierInvoice) Validate() error {
	var c checker
	c.checkIdempotencyKey(s.Key)
	c.checkCode("company_code", s.CompanyCode, LenCompanyCode, true)
	c.checkCode("supplier", s.Supplier, LenSupplier, true)
	c.checkReference("invoice_reference", s.InvoiceReference, LenInvoiceReference, true)
	c.checkDate("document_date", s.DocumentDate)
	c.checkDate("posting_date", s.PostingDate)
	digits := c.checkCurrency("currency", s.Currency)
	gross, grossOK := c.checkAmount("gross_amount", s.GrossAmount, digits)
	if grossOK && !gross.IsPositive() {
		c.add("gross_amount", "must be greater than zero, got %s", quote(s.GrossAmount))
		grossOK = false
	}
	c.checkText("header_text", s.HeaderText, LenHeaderText, false)

	switch n := len(s.Items); {
	case n < minSupplierInvoiceItems:
		c.add("items", "must have at least %d line", minSupplierInvoiceItems)
	case n > MaxItems:
		c.add("items", "must have at most %d lines, got %d", MaxItems, n)
	}
	sum, sumOK := decimal.Zero, true
	for i, it := range s.Items {
		c.checkCode(itemField(i, "gl_account"), it.GLAccount, LenGLAccount, true)
		c.checkCode(itemField(i, "cost_center"), it.CostCenter, LenCostCenter, false)
		c.checkCode(itemField(i, "tax_code"), it.TaxCode, LenTaxCode, false)
		c.checkText(itemField(i, "text"), it.Text, LenItemText, false)
		amt, ok := c.checkAmount(itemField(i, "amount"), it.Amount, digits)
		if ok && amt.IsZero() {
			c.add(itemField(i, "amount"), "must not be zero")
		}
		sumOK = sumOK && ok
		sum = sum.Add(amt)
	}
	if grossOK && sumOK && len(s.Items) > 0 && !sum.Equal(gross) {
		c.add("items", "line amounts add up to %s but gross_amount is %s; they must be equal (SAP calculates tax from the tax codes)",
			sum.StringFixed(int32(digits)), gross.StringFixed(int32(digits)))
	}
	return c.err()
}

// Amounts returns the gross amount and the line amounts as exact decimals.
func (s *SupplierInvoice) Amounts() (gross decimal.Decimal, items []decimal.Decimal, err error) {
	if gross, err = parseAmount("gross_amount", s.GrossAmount); err != nil {
		return decimal.Decimal{}, nil, err
	}
	items = make([]decimal.Decimal, len(s.Items))
	for i, it := range s.Items {
		if items[i], err = parseAmount(itemField(i, "amount"), it.Amount); err != nil {
			return decimal.Decimal{}, nil, err
		}
	}
	return gross, items, nil
}

func (s *SupplierInvoice) String() string {
	return fmt.Sprintf("supplier invoice %s/%s/%s %s %s", s.CompanyCode, s.Supplier, s.InvoiceReference, s.GrossAmount, s.Currency)
}
