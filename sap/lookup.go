package sap

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

const (
	glAccountLineItemSet = odataRoot + "API_GLACCOUNTLINEITEM/GLAccountLineItem"

	opFindSupplierInvoice = "find supplier invoice"
	opFindJournalEntry    = "find journal entry"
)

// FindSupplierInvoice looks for the invoice a supplier numbered invoiceRef
// (SupplierInvoiceIDByInvcgParty) in the company code. It returns
// (doc, true, nil) when found, (Document{}, false, nil) when SAP answered and
// has none, and an error when SAP could not be read; the caller must then
// not post.
func (c *Client) FindSupplierInvoice(ctx context.Context, companyCode, supplier, invoiceRef string) (Document, bool, error) {
	v := validator{op: opFindSupplierInvoice}
	v.required("companyCode", companyCode, 4)
	v.required("supplier", supplier, 10)
	v.required("invoiceRef", invoiceRef, 16)
	if err := v.err(c); err != nil {
		return Document{}, false, err
	}
	filter := "CompanyCode eq " + quote(companyCode) +
		" and InvoicingParty eq " + quote(supplier) +
		" and SupplierInvoiceIDByInvcgParty eq " + quote(invoiceRef)
	var row struct{ SupplierInvoice, FiscalYear, CompanyCode string }
	found, err := c.findOne(ctx, opFindSupplierInvoice, supplierInvoiceSet, url.Values{
		"$select": {"SupplierInvoice,FiscalYear,CompanyCode"},
		"$filter": {filter},
	}, &row)
	if err != nil || !found {
		return Document{}, false, err
	}
	if row.SupplierInvoice == "" {
		return Document{}, false, c.noNumber(opFindSupplierInvoice)
	}
	return Document{Number: row.SupplierInvoice, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode}, true, nil
}

// FindJournalEntry looks for a journal entry carrying sapq's reference in
// AssignmentReference (PostJournalEntry writes it on every item). Results are
// as for FindSupplierInvoice.
func (c *Client) FindJournalEntry(ctx context.Context, companyCode, reference string) (Document, bool, error) {
	v := validator{op: opFindJournalEntry}
	v.required("companyCode", companyCode, 4)
	// An empty reference would match every line without assignment.
	v.required("reference", reference, 18)
	if err := v.err(c); err != nil {
		return Document{}, false, err
	}
	var row struct{ CompanyCode, AccountingDocument, FiscalYear string }
	found, err := c.findOne(ctx, opFindJournalEntry, glAccountLineItemSet, url.Values{
		"$select": {"CompanyCode,AccountingDocument,FiscalYear"},
		"$top":    {"1"}, // SAP returns one row per line item (and ledger)
		"$filter": {"CompanyCode eq " + quote(companyCode) + " and AssignmentReference eq " + quote(reference)},
	}, &row)
	if err != nil || !found {
		return Document{}, false, err
	}
	if row.AccountingDocument == "" {
		return Document{}, false, c.noNumber(opFindJournalEntry)
	}
	return Document{Number: row.AccountingDocument, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode}, true, nil
}

// findOne runs an OData V2 query and decodes the first result into row.
func (c *Client) findOne(ctx context.Context, op, path string, query url.Values, row any) (bool, error) {
	query.Set("$format", "json")
	r, err := c.do(ctx, call{
		op:     op,
		method: http.MethodGet,
		path:   path,
		query:  query,
		header: http.Header{"Accept": {"application/json"}},
	})
	if err != nil {
		return false, err
	}
	if r.status != http.StatusOK {
		return false, c.httpError(op, r)
	}
	var res struct {
		D *struct {
			Results []json.RawMessage `json:"results"`
		} `json:"d"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.D == nil {
		return false, c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: r.status,
			Message: "unreadable answer from SAP", Err: err})
	}
	if len(res.D.Results) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(res.D.Results[0], row); err != nil {
		return false, c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: r.status,
			Message: "unreadable answer from SAP", Err: err})
	}
	return true, nil
}

// noNumber reports a hit without a document number: something is there, but
// we cannot say what, so "not found" would be a lie.
func (c *Client) noNumber(op string) error {
	return c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: http.StatusOK,
		Message: "SAP returned a match without a document number"})
}
