package sap

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/shopspring/decimal"
)

const (
	glAccountLineItemSet = odataRoot + "API_GLACCOUNTLINEITEM/GLAccountLineItem"

	opFindSupplierInvoice = "find supplier invoice"
	opFindJournalEntry    = "find journal entry"
)

// FindSupplierInvoice looks for inv in SAP: an invoice of the same supplier
// in the company code under the supplier's invoice number
// (SupplierInvoiceIDByInvcgParty) with the same gross amount, currency and
// document date, the fields SAP's own duplicate check compares. An invoice
// that shares only the number is another document, not this one. It returns
// (doc, true, nil) when found, (Document{}, false, nil) when SAP answered and
// has none, and an error when SAP could not be read; the caller must then not
// post.
func (c *Client) FindSupplierInvoice(ctx context.Context, inv SupplierInvoice) (Document, bool, error) {
	v := validator{op: opFindSupplierInvoice}
	v.required("CompanyCode", inv.CompanyCode, 4)
	v.required("InvoicingParty", inv.InvoicingParty, 10)
	v.required("SupplierInvoiceIDByInvcgParty", inv.SupplierInvoiceIDByInvcgParty, 16)
	if err := v.err(c); err != nil {
		return Document{}, false, err
	}
	filter := "CompanyCode eq " + quote(inv.CompanyCode) +
		" and InvoicingParty eq " + quote(inv.InvoicingParty) +
		" and SupplierInvoiceIDByInvcgParty eq " + quote(inv.SupplierInvoiceIDByInvcgParty)
	rows, err := c.query(ctx, opFindSupplierInvoice, supplierInvoiceSet, url.Values{
		"$select": {"SupplierInvoice,FiscalYear,CompanyCode,InvoiceGrossAmount,DocumentCurrency,DocumentDate"},
		"$filter": {filter},
	})
	if err != nil {
		return Document{}, false, err
	}
	for _, raw := range rows {
		var row struct {
			SupplierInvoice, FiscalYear, CompanyCode, DocumentCurrency string
			InvoiceGrossAmount                                         odataDecimal
			DocumentDate                                               odataDate
		}
		if err := json.Unmarshal(raw, &row); err != nil {
			return Document{}, false, c.unreadable(opFindSupplierInvoice, err)
		}
		same := decimal.Decimal(row.InvoiceGrossAmount).Equal(inv.InvoiceGrossAmount) &&
			row.DocumentCurrency == inv.DocumentCurrency &&
			time.Time(row.DocumentDate).Equal(calendarDay(inv.DocumentDate))
		if !same {
			continue
		}
		if row.SupplierInvoice == "" {
			return Document{}, false, c.noNumber(opFindSupplierInvoice)
		}
		return Document{Number: row.SupplierInvoice, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode}, true, nil
	}
	return Document{}, false, nil
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
	rows, err := c.query(ctx, opFindJournalEntry, glAccountLineItemSet, url.Values{
		"$select": {"CompanyCode,AccountingDocument,FiscalYear"},
		"$top":    {"1"}, // SAP returns one row per line item (and ledger)
		"$filter": {"CompanyCode eq " + quote(companyCode) + " and AssignmentReference eq " + quote(reference)},
	})
	if err != nil || len(rows) == 0 {
		return Document{}, false, err
	}
	var row struct{ CompanyCode, AccountingDocument, FiscalYear string }
	if err := json.Unmarshal(rows[0], &row); err != nil {
		return Document{}, false, c.unreadable(opFindJournalEntry, err)
	}
	if row.AccountingDocument == "" {
		return Document{}, false, c.noNumber(opFindJournalEntry)
	}
	return Document{Number: row.AccountingDocument, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode}, true, nil
}

// query runs an OData V2 query and returns its result rows.
func (c *Client) query(ctx context.Context, op, path string, query url.Values) ([]json.RawMessage, error) {
	query.Set("$format", "json")
	r, err := c.do(ctx, call{
		op:     op,
		method: http.MethodGet,
		path:   path,
		query:  query,
		header: http.Header{"Accept": {"application/json"}},
	})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, c.httpError(op, r)
	}
	var res struct {
		D *struct {
			Results []json.RawMessage `json:"results"`
		} `json:"d"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.D == nil {
		return nil, c.unreadable(op, err)
	}
	return res.D.Results, nil
}

// unreadable reports an answer that cannot be understood: whether the
// document exists stays unknown.
func (c *Client) unreadable(op string, err error) error {
	return c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: http.StatusOK, Message: "unreadable answer from SAP", Err: err})
}

// noNumber reports a hit without a document number: something is there, but
// we cannot say what, so "not found" would be a lie.
func (c *Client) noNumber(op string) error {
	return c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: http.StatusOK,
		Message: "SAP returned a match without a document number"})
}
