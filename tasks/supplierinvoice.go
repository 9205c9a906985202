package tasks

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// KindSupplierInvoice is an incoming invoice from a supplier.
const KindSupplierInvoice Kind = "supplier_invoice"

var supplierInvoiceSpec = Spec{
	Kind:        KindSupplierInvoice,
	Tool:        "submit_supplier_invoice",
	Title:       "Submit supplier invoice",
	Summary:     "a supplier invoice posted against G/L account lines",
	Description: `Submit a supplier invoice for posting into SAP: an incoming invoice from a supplier, posted against G/L account lines (no purchase order). The line amounts must add up to gross_amount; SAP calculates tax from the lines' tax codes.`,
	SAP:         "OData V2 API_SUPPLIERINVOICE_PROCESS_SRV, A_SupplierInvoice (deep insert)",
	Reference:   "A_SupplierInvoice.AssignmentReference",
	New:         func() Posting { return new(SupplierInvoice) },
}

// SupplierInvoice is an incoming invoice from a supplier posted against G/L
// accounts (no purchase order). It maps to A_SupplierInvoice in
// API_SUPPLIERINVOICE_PROCESS_SRV with lines in to_SupplierInvoiceItemGLAcct.
type SupplierInvoice struct {
	Key              string                `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this business document (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	CompanyCode      string                `json:"company_code" sapq:"code,4" sap:"CompanyCode" jsonschema:"SAP company code (up to 4 characters), for example 1010"`
	Supplier         string                `json:"supplier" sapq:"code,10" sap:"InvoicingParty" jsonschema:"SAP supplier number (up to 10 characters), for example 17300001"`
	InvoiceReference string                `json:"invoice_reference" sapq:"reference,16" sap:"SupplierInvoiceIDByInvcgParty" jsonschema:"The supplier's own invoice number as printed on the invoice, in upper case as SAP stores it (up to 16 characters)"`
	DocumentDate     string                `json:"document_date" sapq:"date" sap:"DocumentDate" jsonschema:"Invoice date as YYYY-MM-DD"`
	PostingDate      string                `json:"posting_date" sapq:"date" sap:"PostingDate" jsonschema:"Posting date as YYYY-MM-DD; must fall in an open posting period"`
	Currency         string                `json:"currency" sapq:"currency" sap:"DocumentCurrency" jsonschema:"ISO 4217 currency code, for example EUR"`
	GrossAmount      string                `json:"gross_amount" sapq:"amount" sap:"InvoiceGrossAmount" jsonschema:"Invoice gross amount as a decimal string with at most 2 fraction digits, for example 1190.00; must equal the sum of the item amounts"`
	HeaderText       string                `json:"header_text,omitempty" sapq:"text,25" sap:"DocumentHeaderText" jsonschema:"Optional header text (up to 25 characters)"`
	Items            []SupplierInvoiceItem `json:"items" sapq:"list,1,999" sap:"to_SupplierInvoiceItemGLAcct" jsonschema:"1 to 999 G/L account lines; their amounts must add up to gross_amount (SAP calculates tax)"`
	Destination      string                `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system to post to, by its configured name; omit it to let sapq choose by company code"`
}

// SupplierInvoiceItem is one G/L account line of a supplier invoice.
type SupplierInvoiceItem struct {
	GLAccount  string `json:"gl_account" sapq:"code,10" sap:"GLAccount" jsonschema:"G/L account (up to 10 characters), for example 61003000"`
	Amount     string `json:"amount" sapq:"amount" sap:"SupplierInvoiceItemAmount, DebitCreditCode" jsonschema:"Line amount as a decimal string with at most 2 fraction digits; negative for a credit line"`
	CostCenter string `json:"cost_center,omitempty" sapq:"code,10" sap:"CostCenter" jsonschema:"Optional cost center (up to 10 characters)"`
	TaxCode    string `json:"tax_code,omitempty" sapq:"code,2" sap:"TaxCode" jsonschema:"Optional tax code (2 characters), for example V1"`
	Text       string `json:"text,omitempty" sapq:"text,50" sap:"SupplierInvoiceItemText" jsonschema:"Optional line text (up to 50 characters)"`
}

func (*SupplierInvoice) Kind() Kind               { return KindSupplierInvoice }
func (s *SupplierInvoice) IdempotencyKey() string { return s.Key }

// Validate checks every field and the rule that the lines add up to the gross
// amount, reporting all violations at once.
func (s *SupplierInvoice) Validate() error {
	var c checker
	c.checkFields(s)
	digits := currencyDigits(s.Currency)
	gross, grossOK := validAmount(s.GrossAmount, digits)
	if grossOK && !gross.IsPositive() {
		c.add("gross_amount", "must be greater than zero, got %s", s.GrossAmount)
	}
	sum, sumOK := decimal.Zero, true
	for i, it := range s.Items {
		amt, ok := validAmount(it.Amount, digits)
		if ok && amt.IsZero() {
			c.add(itemField(i, "amount"), "must not be zero")
		}
		sumOK = sumOK && ok
		sum = sum.Add(amt)
	}
	if grossOK && gross.IsPositive() && sumOK && len(s.Items) > 0 && !sum.Equal(gross) {
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

// Facts: the gross amount; SAP locks the supplier's account while posting.
func (s *SupplierInvoice) Facts() Facts {
	gross, _ := parseAmount("gross_amount", s.GrossAmount)
	return Facts{
		Amount: gross, Currency: s.Currency, AmountField: "gross_amount",
		Units:       []OrgUnit{{UnitCompanyCode, "company_code", s.CompanyCode}},
		Objects:     []string{"supplier/" + s.CompanyCode + "/" + s.Supplier},
		Destination: s.Destination,
	}
}

func (s *SupplierInvoice) String() string {
	return fmt.Sprintf("supplier invoice %s/%s/%s %s %s", s.CompanyCode, s.Supplier, s.InvoiceReference, s.GrossAmount, s.Currency)
}
