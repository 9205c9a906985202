package sap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

const (
	glAccountLineItemSet = odataRoot + "API_GLACCOUNTLINEITEM/GLAccountLineItem"

	opFindSupplierInvoice = "find supplier invoice"
	opFindJournalEntry    = "find journal entry"
)

// FindSupplierInvoice looks for the invoice that carries reference in its
// AssignmentReference in the company code. Only the posting that wrote the
// reference finds the invoice by it: the supplier's invoice number, amount
// and date (the fields of SAP's duplicate check) can belong to an invoice
// that another caller, or a person in SAP, entered. A reversal document
// never matches; a reversed invoice is reported with ReversedBy. Match.Found
// is false when SAP answered and holds none; an error means SAP could not be
// read, and the caller must then not post.
func (c *Client) FindSupplierInvoice(ctx context.Context, companyCode, reference string) (Match, error) {
	if err := c.validateLookup(opFindSupplierInvoice, companyCode, reference); err != nil {
		return Match{}, err
	}
	rows, err := c.query(ctx, opFindSupplierInvoice, supplierInvoiceSet, url.Values{
		"$select": {"SupplierInvoice,FiscalYear,CompanyCode,AssignmentReference,ReverseDocument,ReverseDocumentFiscalYear,IsReversal,IsReversed"},
		"$filter": {"CompanyCode eq " + quote(companyCode) + " and AssignmentReference eq " + quote(reference)},
	})
	if err != nil {
		return Match{}, err
	}
	for _, raw := range rows {
		var row struct {
			SupplierInvoice, FiscalYear, CompanyCode, AssignmentReference string
			ReverseDocument                                               string
			IsReversal, IsReversed                                        bool
		}
		if err := json.Unmarshal(raw, &row); err != nil {
			return Match{}, c.unreadable(opFindSupplierInvoice, err)
		}
		if row.AssignmentReference != reference || row.IsReversal {
			continue
		}
		if row.SupplierInvoice == "" {
			return Match{}, c.noNumber(opFindSupplierInvoice)
		}
		return matchOf(Document{Number: row.SupplierInvoice, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode},
			row.IsReversed, row.ReverseDocument), nil
	}
	return Match{}, nil
}

// FindJournalEntry looks for the journal entry that carries reference in its
// lines' AssignmentReference (PostJournalEntry writes it on every line) in
// the company code, through the G/L line items. Lines of a reversal document
// never match; a reversed entry is reported with ReversedBy. Results are as
// for FindSupplierInvoice.
func (c *Client) FindJournalEntry(ctx context.Context, companyCode, reference string) (Match, error) {
	if err := c.validateLookup(opFindJournalEntry, companyCode, reference); err != nil {
		return Match{}, err
	}
	rows, err := c.query(ctx, opFindJournalEntry, glAccountLineItemSet, url.Values{
		"$select": {"CompanyCode,AccountingDocument,FiscalYear,AssignmentReference,IsReversal,IsReversed,ReversalReferenceDocument"},
		// One line of the original document is enough: SAP returns a row
		// per line item and ledger.
		"$top":    {"1"},
		"$filter": {"CompanyCode eq " + quote(companyCode) + " and AssignmentReference eq " + quote(reference) + " and IsReversal eq false"},
	})
	if err != nil || len(rows) == 0 {
		return Match{}, err
	}
	var row struct {
		CompanyCode, AccountingDocument, FiscalYear, AssignmentReference string
		ReversalReferenceDocument                                        string
		IsReversal, IsReversed                                           bool
	}
	if err := json.Unmarshal(rows[0], &row); err != nil {
		return Match{}, c.unreadable(opFindJournalEntry, err)
	}
	if row.AssignmentReference != reference || row.IsReversal {
		// SAP ignored the filter: nothing can be concluded.
		return Match{}, c.unreadable(opFindJournalEntry, fmt.Errorf("line of %s does not match the filter", row.AccountingDocument))
	}
	if row.AccountingDocument == "" {
		return Match{}, c.noNumber(opFindJournalEntry)
	}
	return matchOf(Document{Number: row.AccountingDocument, FiscalYear: row.FiscalYear, CompanyCode: row.CompanyCode},
		row.IsReversed, row.ReversalReferenceDocument), nil
}

func matchOf(doc Document, reversed bool, reversedBy string) Match {
	m := Match{Found: true, Document: doc, ReversedBy: reversedBy}
	if reversed && m.ReversedBy == "" {
		m.ReversedBy = "(number not given)"
	}
	return m
}

// validateLookup refuses a look-up that could not identify one posting: an
// empty reference would match every document without one.
func (c *Client) validateLookup(op, companyCode, reference string) error {
	v := validator{op: op}
	v.required("companyCode", companyCode, 4)
	v.required("reference", reference, 18)
	return v.err(c)
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
