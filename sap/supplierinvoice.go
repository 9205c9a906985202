package sap

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

const (
	supplierInvoiceService = odataRoot + "API_SUPPLIERINVOICE_PROCESS_SRV/"
	supplierInvoiceSet     = supplierInvoiceService + "A_SupplierInvoice"

	opPostSupplierInvoice = "post supplier invoice"
)

// SupplierInvoice is a supplier invoice without purchase order reference:
// header plus G/L account lines. Dates are calendar dates (use UTC midnight).
type SupplierInvoice struct {
	// AssignmentReference is the posting's own reference (at most 18
	// characters). SAP stores it with the invoice, and FindSupplierInvoice
	// looks for it: only the posting that wrote it can find the invoice by
	// it, unlike the supplier's invoice number, which anyone may enter.
	AssignmentReference                                                          string
	CompanyCode, InvoicingParty, SupplierInvoiceIDByInvcgParty, DocumentCurrency string
	DocumentDate, PostingDate                                                    time.Time
	InvoiceGrossAmount                                                           decimal.Decimal
	DocumentHeaderText                                                           string
	AccountingDocumentType                                                       string // default "RE"
	Items                                                                        []SupplierInvoiceGLItem
}

// SupplierInvoiceGLItem is one G/L account line. A positive Amount is a
// debit (S), a negative one a credit (H); SAP gets the absolute value.
type SupplierInvoiceGLItem struct {
	GLAccount                 string
	Amount                    decimal.Decimal
	CostCenter, TaxCode, Text string
}

// supplierInvoiceBody is the deep-insert payload of A_SupplierInvoice.
type supplierInvoiceBody struct {
	CompanyCode                   string       `json:"CompanyCode"`
	DocumentDate                  odataDate    `json:"DocumentDate"`
	PostingDate                   odataDate    `json:"PostingDate"`
	InvoicingParty                string       `json:"InvoicingParty"`
	SupplierInvoiceIDByInvcgParty string       `json:"SupplierInvoiceIDByInvcgParty"`
	DocumentCurrency              string       `json:"DocumentCurrency"`
	InvoiceGrossAmount            odataDecimal `json:"InvoiceGrossAmount"`
	TaxIsCalculatedAutomatically  bool         `json:"TaxIsCalculatedAutomatically"`
	AccountingDocumentType        string       `json:"AccountingDocumentType"`
	DocumentHeaderText            string       `json:"DocumentHeaderText,omitempty"`
	AssignmentReference           string       `json:"AssignmentReference"`
	GLItems                       struct {
		Results []supplierInvoiceGLBody `json:"results"`
	} `json:"to_SupplierInvoiceItemGLAcct"`
}

type supplierInvoiceGLBody struct {
	SupplierInvoiceItem       string       `json:"SupplierInvoiceItem"`
	CompanyCode               string       `json:"CompanyCode"`
	GLAccount                 string       `json:"GLAccount"`
	CostCenter                string       `json:"CostCenter,omitempty"`
	DocumentCurrency          string       `json:"DocumentCurrency"`
	SupplierInvoiceItemAmount odataDecimal `json:"SupplierInvoiceItemAmount"`
	TaxCode                   string       `json:"TaxCode,omitempty"`
	DebitCreditCode           string       `json:"DebitCreditCode"`
	SupplierInvoiceItemText   string       `json:"SupplierInvoiceItemText,omitempty"`
}

// PostSupplierInvoice creates the invoice in SAP and returns its number and
// fiscal year. Invalid input fails as Permanent before anything is sent.
//
// SAP does not de-duplicate OData creates by request; its duplicate-invoice
// check answers a second equal invoice with M8/108 (Category Duplicate).
// After an Unknown or Duplicate error, call FindSupplierInvoice before
// anything else.
func (c *Client) PostSupplierInvoice(ctx context.Context, inv SupplierInvoice) (Document, error) {
	if inv.AccountingDocumentType == "" {
		inv.AccountingDocumentType = "RE"
	}
	if err := c.validateSupplierInvoice(inv); err != nil {
		return Document{}, err
	}
	body, err := json.Marshal(supplierInvoicePayload(inv))
	if err != nil {
		return Document{}, c.scrub(&Error{Category: Permanent, Op: opPostSupplierInvoice,
			Message: "cannot encode invoice", Err: err})
	}

	r, err := c.postOData(ctx, opPostSupplierInvoice, supplierInvoiceService, supplierInvoiceSet, nil, body)
	if err != nil {
		return Document{}, err
	}

	var created struct {
		D struct {
			SupplierInvoice, FiscalYear, CompanyCode string
		} `json:"d"`
	}
	if err := json.Unmarshal(r.body, &created); err != nil || created.D.SupplierInvoice == "" {
		// SAP said yes but we cannot tell to what: the invoice most likely
		// exists, so the worker must look it up rather than post again.
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opPostSupplierInvoice, HTTPStatus: r.status,
			Message: "SAP accepted the invoice but its answer has no document number", Err: err})
	}
	doc := Document{
		Number:      created.D.SupplierInvoice,
		FiscalYear:  created.D.FiscalYear,
		CompanyCode: created.D.CompanyCode,
		Messages:    parseSAPMessage(r.header),
	}
	if doc.CompanyCode == "" {
		doc.CompanyCode = inv.CompanyCode
	}
	return doc, nil
}

func supplierInvoicePayload(inv SupplierInvoice) supplierInvoiceBody {
	b := supplierInvoiceBody{
		CompanyCode:                   inv.CompanyCode,
		DocumentDate:                  odataDate(inv.DocumentDate),
		PostingDate:                   odataDate(inv.PostingDate),
		InvoicingParty:                inv.InvoicingParty,
		SupplierInvoiceIDByInvcgParty: inv.SupplierInvoiceIDByInvcgParty,
		DocumentCurrency:              inv.DocumentCurrency,
		InvoiceGrossAmount:            odataDecimal(inv.InvoiceGrossAmount),
		TaxIsCalculatedAutomatically:  true,
		AccountingDocumentType:        inv.AccountingDocumentType,
		DocumentHeaderText:            inv.DocumentHeaderText,
		AssignmentReference:           inv.AssignmentReference,
	}
	b.GLItems.Results = make([]supplierInvoiceGLBody, 0, len(inv.Items))
	for i, it := range inv.Items {
		b.GLItems.Results = append(b.GLItems.Results, supplierInvoiceGLBody{
			SupplierInvoiceItem:       strconv.Itoa(i + 1),
			CompanyCode:               inv.CompanyCode,
			GLAccount:                 it.GLAccount,
			CostCenter:                it.CostCenter,
			DocumentCurrency:          inv.DocumentCurrency,
			SupplierInvoiceItemAmount: odataDecimal(it.Amount.Abs()),
			TaxCode:                   it.TaxCode,
			DebitCreditCode:           debitCredit(it.Amount),
			SupplierInvoiceItemText:   it.Text,
		})
	}
	return b
}

// debitCredit is SAP's debit/credit indicator: S (Soll) for debits, H (Haben)
// for credits.
func debitCredit(d decimal.Decimal) string {
	if d.IsNegative() {
		return "H"
	}
	return "S"
}

// validateSupplierInvoice checks what SAP's metadata declares (required
// fields, maximum lengths), so that obviously bad data fails fast and
// permanently instead of costing a round trip.
func (c *Client) validateSupplierInvoice(inv SupplierInvoice) error {
	v := validator{op: opPostSupplierInvoice}
	v.required("AssignmentReference", inv.AssignmentReference, 18)
	v.required("CompanyCode", inv.CompanyCode, 4)
	v.required("InvoicingParty", inv.InvoicingParty, 10)
	v.required("SupplierInvoiceIDByInvcgParty", inv.SupplierInvoiceIDByInvcgParty, 16)
	v.required("DocumentCurrency", inv.DocumentCurrency, 5)
	v.optional("DocumentHeaderText", inv.DocumentHeaderText, 25)
	v.optional("AccountingDocumentType", inv.AccountingDocumentType, 2)
	v.date("DocumentDate", inv.DocumentDate)
	v.date("PostingDate", inv.PostingDate)
	if len(inv.Items) == 0 {
		v.fail("at least one G/L item is required")
	}
	if len(inv.Items) > 9999 {
		v.fail("at most 9999 items are allowed") // SupplierInvoiceItem is 4 digits
	}
	for i, it := range inv.Items {
		p := "Items[" + strconv.Itoa(i) + "]."
		v.required(p+"GLAccount", it.GLAccount, 10)
		v.optional(p+"CostCenter", it.CostCenter, 10)
		v.optional(p+"TaxCode", it.TaxCode, 2)
		v.optional(p+"Text", it.Text, 50)
	}
	return v.err(c)
}

// supplierInvoiceRequest maps a supplier invoice posting to
// A_SupplierInvoice.
func supplierInvoiceRequest(p *tasks.SupplierInvoice) (Request, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("dates: %v %v", err1, err2)
	}
	gross, amounts, err := p.Amounts()
	if err != nil {
		return nil, err
	}
	items := make([]SupplierInvoiceGLItem, len(p.Items))
	for i, it := range p.Items {
		items[i] = SupplierInvoiceGLItem{GLAccount: it.GLAccount, Amount: amounts[i], CostCenter: it.CostCenter, TaxCode: it.TaxCode, Text: it.Text}
	}
	return supplierInvoiceCall{SupplierInvoice{
		CompanyCode:                   p.CompanyCode,
		InvoicingParty:                p.Supplier,
		SupplierInvoiceIDByInvcgParty: p.InvoiceReference,
		DocumentCurrency:              p.Currency,
		DocumentDate:                  docDate,
		PostingDate:                   postDate,
		InvoiceGrossAmount:            gross,
		DocumentHeaderText:            p.HeaderText,
		Items:                         items,
	}}, nil
}

// supplierInvoiceCall is the Request of a supplier invoice. OData has no
// message UUID: the reference in the invoice's AssignmentReference is what
// identifies it.
type supplierInvoiceCall struct{ inv SupplierInvoice }

func (supplierInvoiceCall) Kind() tasks.Kind      { return tasks.KindSupplierInvoice }
func (r supplierInvoiceCall) CompanyCode() string { return r.inv.CompanyCode }

func (r supplierInvoiceCall) post(ctx context.Context, c *Client, s Send) (Document, error) {
	inv := r.inv
	inv.AssignmentReference = s.Reference
	return c.PostSupplierInvoice(ctx, inv)
}

func (r supplierInvoiceCall) find(ctx context.Context, c *Client, reference string) (Match, error) {
	return c.FindSupplierInvoice(ctx, r.inv.CompanyCode, reference)
}
