package sap

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sapq/sapq/tasks"
)

const (
	supplierInvoiceCancel   = supplierInvoiceService + "Cancel"
	materialDocumentCancel  = materialDocumentService + "Cancel"
	materialDocumentItemSet = materialDocumentService + "A_MaterialDocumentItem"

	opCancelSupplierInvoice  = "cancel supplier invoice"
	opCancelMaterialDocument = "cancel material document"
	opFindReversal           = "find reversal"
)

// SupplierInvoiceCancel is the reversal of a supplier invoice through the
// function import Cancel of API_SUPPLIERINVOICE_PROCESS_SRV. A zero
// PostingDate leaves the reversal's posting date to SAP (the original's).
type SupplierInvoiceCancel struct {
	SupplierInvoice, FiscalYear string
	ReversalReason              string
	PostingDate                 time.Time
}

// CancelSupplierInvoice reverses an invoice and returns the reversal
// document. Cancel carries no field for a reference of the caller's: after
// an Unknown error, only the original's state (FindReversal) tells whether
// SAP reversed it, and not by whom.
func (c *Client) CancelSupplierInvoice(ctx context.Context, companyCode string, x SupplierInvoiceCancel) (Document, error) {
	v := validator{op: opCancelSupplierInvoice}
	v.required("SupplierInvoice", x.SupplierInvoice, 10)
	v.required("FiscalYear", x.FiscalYear, 4)
	v.optional("ReversalReason", x.ReversalReason, 2)
	if err := v.err(c); err != nil {
		return Document{}, err
	}
	// Function import parameters are URI literals in the query.
	q := url.Values{
		"SupplierInvoice": {quote(x.SupplierInvoice)},
		"FiscalYear":      {quote(x.FiscalYear)},
	}
	if x.ReversalReason != "" {
		q.Set("ReversalReason", quote(x.ReversalReason))
	}
	if !x.PostingDate.IsZero() {
		q.Set("PostingDate", "datetime'"+calendarDay(x.PostingDate).Format("2006-01-02T15:04:05")+"'")
	}
	r, err := c.postOData(ctx, opCancelSupplierInvoice, supplierInvoiceService, supplierInvoiceCancel, q, nil)
	if err != nil {
		return Document{}, err
	}
	// A complex type's result comes wrapped in the function's name.
	var res struct {
		D struct {
			Cancel struct {
				ReverseDocument, FiscalYear string
				Success                     bool
			}
		} `json:"d"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.D.Cancel.ReverseDocument == "" {
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opCancelSupplierInvoice, HTTPStatus: r.status,
			Message: "SAP accepted the reversal but its answer has no reversal document", Err: err})
	}
	return Document{Number: res.D.Cancel.ReverseDocument, FiscalYear: res.D.Cancel.FiscalYear, CompanyCode: companyCode,
		Messages: parseSAPMessage(r.header)}, nil
}

// CancelMaterialDocument cancels a whole material document through the
// function import Cancel of API_MATERIAL_DOCUMENT_SRV (MBST): SAP posts a
// cancellation document with the reversing movement types and answers it
// as an A_MaterialDocumentHeader. A zero postingDate leaves the date to SAP.
// Like a supplier invoice's Cancel it takes no reference of the caller's.
func (c *Client) CancelMaterialDocument(ctx context.Context, document, year string, postingDate time.Time) (Document, error) {
	v := validator{op: opCancelMaterialDocument}
	v.required("MaterialDocument", document, 10)
	v.required("MaterialDocumentYear", year, 4)
	if err := v.err(c); err != nil {
		return Document{}, err
	}
	q := url.Values{"MaterialDocument": {quote(document)}, "MaterialDocumentYear": {quote(year)}}
	if !postingDate.IsZero() {
		q.Set("PostingDate", "datetime'"+calendarDay(postingDate).Format("2006-01-02T15:04:05")+"'")
	}
	r, err := c.postOData(ctx, opCancelMaterialDocument, materialDocumentService, materialDocumentCancel, q, nil)
	if err != nil {
		return Document{}, err
	}
	var res struct {
		D struct{ MaterialDocument, MaterialDocumentYear string } `json:"d"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.D.MaterialDocument == "" {
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opCancelMaterialDocument, HTTPStatus: r.status,
			Message: "SAP accepted the cancellation but its answer has no material document", Err: err})
	}
	return Document{Number: res.D.MaterialDocument, FiscalYear: res.D.MaterialDocumentYear, Messages: parseSAPMessage(r.header)}, nil
}

// findMaterialDocumentCancellation reads the cancellation of a material
// document: the items that name it as reversed, and the cancellation's
// header, which names its creator. Attribution is as for a supplier
// invoice's reversal (see FindReversal).
func (c *Client) findMaterialDocumentCancellation(ctx context.Context, document, year string) (Match, error) {
	rows, err := c.query(ctx, opFindReversal, materialDocumentItemSet, url.Values{
		"$select": {"MaterialDocument,MaterialDocumentYear,ReversedMaterialDocument,ReversedMaterialDocumentYear"},
		"$filter": {"ReversedMaterialDocument eq " + quote(document) + " and ReversedMaterialDocumentYear eq " + quote(year)},
	})
	if err != nil || len(rows) == 0 {
		return Match{}, err
	}
	var item struct {
		MaterialDocument, MaterialDocumentYear, ReversedMaterialDocument, ReversedMaterialDocumentYear string
	}
	if err := json.Unmarshal(rows[0], &item); err != nil {
		return Match{}, c.unreadable(opFindReversal, err)
	}
	if alphaNumber(item.ReversedMaterialDocument) != alphaNumber(document) || item.ReversedMaterialDocumentYear != year {
		return Match{}, c.unreadable(opFindReversal, fmt.Errorf("item of %s does not match the filter", item.MaterialDocument))
	}
	if item.MaterialDocument == "" || item.MaterialDocumentYear == "" {
		return Match{}, c.noNumber(opFindReversal)
	}
	heads, err := c.query(ctx, opFindReversal, materialDocumentHeaderSet, url.Values{
		"$select": {"MaterialDocument,MaterialDocumentYear,CreatedByUser"},
		"$filter": {"MaterialDocument eq " + quote(item.MaterialDocument) + " and MaterialDocumentYear eq " + quote(item.MaterialDocumentYear)},
	})
	if err != nil {
		return Match{}, err
	}
	if len(heads) == 0 {
		return Match{}, c.unreadable(opFindReversal, fmt.Errorf("no header of cancellation %s %s", item.MaterialDocument, item.MaterialDocumentYear))
	}
	var head struct{ MaterialDocument, MaterialDocumentYear, CreatedByUser string }
	if err := json.Unmarshal(heads[0], &head); err != nil {
		return Match{}, c.unreadable(opFindReversal, err)
	}
	if !strings.EqualFold(head.CreatedByUser, c.cfg.User) {
		return Match{TakenBy: item.MaterialDocument, TakenByUser: head.CreatedByUser}, nil
	}
	return Match{Found: true, Unproven: true, Document: Document{Number: item.MaterialDocument, FiscalYear: item.MaterialDocumentYear}}, nil
}

// ReversalKey is the reference key of an FI document (AWKEY: document,
// company code, fiscal year), by which ReversalReferenceDocument names the
// journal entry a reversal reverses.
func ReversalKey(document, companyCode, fiscalYear string) string {
	return fmt.Sprintf("%010s%s%s", document, companyCode, fiscalYear)
}

// FindReversal reads the original of a reversal: Found when SAP shows it
// reversed by a reversal that may be the caller's, TakenBy when by one that
// provably is not. A journal entry's reversal, which sapq posts with its
// reference on every line, is the caller's when its lines carry reference.
// A supplier invoice's reversal carries nothing of the caller's (Cancel
// takes no reference): its FI document names the user who created it
// (GLAccountLineItem.AccountingDocCreatedByUser), and one created by
// another user than the client's is provably another's; one created by the
// client's own user is reported Unproven, the caller's only if a Cancel of
// the caller's may have made it. Found and TakenBy are both unset when SAP
// holds the original unreversed, or not at all (the reversal's call then
// fails with SAP's message).
func (c *Client) FindReversal(ctx context.Context, kind tasks.Kind, companyCode, document, fiscalYear, reference string) (Match, error) {
	v := validator{op: opFindReversal}
	if kind != tasks.KindGoodsMovement { // a material document has none
		v.required("companyCode", companyCode, 4)
	}
	v.required("document", document, 10)
	v.required("fiscalYear", fiscalYear, 4)
	if err := v.err(c); err != nil {
		return Match{}, err
	}
	switch kind {
	case tasks.KindGoodsMovement:
		return c.findMaterialDocumentCancellation(ctx, document, fiscalYear)
	case tasks.KindSupplierInvoice:
		rows, err := c.query(ctx, opFindReversal, supplierInvoiceSet, url.Values{
			"$select": {"SupplierInvoice,FiscalYear,CompanyCode,ReverseDocument,ReverseDocumentFiscalYear,IsReversal,IsReversed"},
			"$filter": {"SupplierInvoice eq " + quote(document) + " and FiscalYear eq " + quote(fiscalYear)},
		})
		if err != nil || len(rows) == 0 {
			return Match{}, err
		}
		var row struct {
			SupplierInvoice, FiscalYear, CompanyCode, ReverseDocument, ReverseDocumentFiscalYear string
			IsReversal, IsReversed                                                               bool
		}
		if err := json.Unmarshal(rows[0], &row); err != nil {
			return Match{}, c.unreadable(opFindReversal, err)
		}
		if row.SupplierInvoice != document || row.FiscalYear != fiscalYear {
			// SAP ignored the filter: nothing can be concluded.
			return Match{}, c.unreadable(opFindReversal, fmt.Errorf("invoice %s %s does not match the filter", row.SupplierInvoice, row.FiscalYear))
		}
		if !row.IsReversed || row.IsReversal {
			return Match{}, nil
		}
		if row.ReverseDocument == "" {
			return Match{}, c.noNumber(opFindReversal)
		}
		revYear := cmp.Or(row.ReverseDocumentFiscalYear, fiscalYear)
		rev := Document{Number: row.ReverseDocument, FiscalYear: revYear, CompanyCode: companyCode}
		// The reversal's FI document: its lines refer to the reversal
		// invoice (reference document type RMRP) and name their creator.
		line, err := c.glLine(ctx, "CompanyCode eq "+quote(companyCode)+" and FiscalYear eq "+quote(revYear)+
			" and ReferenceDocumentType eq 'RMRP' and ReferenceDocument eq "+quote(row.ReverseDocument)+" and IsReversal eq true")
		if err != nil {
			return Match{}, err
		}
		if line == nil {
			// A posted reversal always has its FI document; SAP may not
			// show it yet. Whose it is stays open: read again later.
			return Match{}, c.unreadable(opFindReversal, fmt.Errorf("no FI document of reversal %s %s", row.ReverseDocument, revYear))
		}
		if !strings.EqualFold(line.AccountingDocCreatedByUser, c.cfg.User) {
			return Match{TakenBy: row.ReverseDocument, TakenByUser: line.AccountingDocCreatedByUser}, nil
		}
		return Match{Found: true, Unproven: true, Document: rev}, nil
	case tasks.KindJournalEntry:
		line, err := c.glLine(ctx, "CompanyCode eq "+quote(companyCode)+" and AccountingDocument eq "+quote(document)+
			" and FiscalYear eq "+quote(fiscalYear)+" and IsReversal eq false")
		if err != nil || line == nil || !line.IsReversed {
			return Match{}, err
		}
		if line.ReversalReferenceDocument == "" {
			return Match{}, c.noNumber(opFindReversal)
		}
		rev := line.ReversalReferenceDocument
		ours, err := c.glLine(ctx, "CompanyCode eq "+quote(companyCode)+" and AccountingDocument eq "+quote(rev)+
			" and AssignmentReference eq "+quote(reference)+" and IsReversal eq true")
		if err != nil {
			return Match{}, err
		}
		if ours == nil {
			return Match{TakenBy: rev}, nil
		}
		return Match{Found: true, Document: Document{Number: rev, FiscalYear: ours.FiscalYear, CompanyCode: companyCode}}, nil
	}
	return Match{}, c.scrub(&Error{Category: Permanent, Op: opFindReversal, Message: fmt.Sprintf("%s documents are not reversed through sapq", kind)})
}

type glLineRow struct {
	CompanyCode, AccountingDocument, FiscalYear, AssignmentReference string
	ReversalReferenceDocument, AccountingDocCreatedByUser            string
	IsReversal, IsReversed                                           bool
}

// glLine reads one G/L line item matching filter, nil when there is none.
func (c *Client) glLine(ctx context.Context, filter string) (*glLineRow, error) {
	rows, err := c.query(ctx, opFindReversal, glAccountLineItemSet, url.Values{
		"$select": {"CompanyCode,AccountingDocument,FiscalYear,AssignmentReference,IsReversal,IsReversed,ReversalReferenceDocument,AccountingDocCreatedByUser"},
		"$top":    {"1"},
		"$filter": {filter},
	})
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	var row glLineRow
	if err := json.Unmarshal(rows[0], &row); err != nil {
		return nil, c.unreadable(opFindReversal, err)
	}
	return &row, nil
}

// reversePostingRequest maps a reverse posting to the reversal call of its
// original's kind.
func reversePostingRequest(p *tasks.ReversePosting) (Request, error) {
	o := p.Original
	if o == nil {
		return nil, fmt.Errorf("reverse posting of job %s holds no resolved original", p.JobID)
	}
	var postDate time.Time
	if p.PostingDate != "" {
		d, err := tasks.ParseDate(p.PostingDate)
		if err != nil {
			return nil, err
		}
		postDate = d
	}
	r := reversalCall{original: *o, reason: p.ReversalReason, postingDate: postDate}
	switch o.Kind {
	case tasks.KindSupplierInvoice, tasks.KindGoodsMovement:
	case tasks.KindJournalEntry:
		if o.JournalEntry == nil {
			return nil, fmt.Errorf("reverse posting of job %s holds no original journal entry", p.JobID)
		}
		req, err := journalEntryRequest(o.JournalEntry)
		if err != nil {
			return nil, err
		}
		je := req.(journalEntryCall).je
		for i := range je.Items {
			je.Items[i].Amount = je.Items[i].Amount.Neg()
		}
		for i := range je.CustomerItems {
			je.CustomerItems[i].Amount = je.CustomerItems[i].Amount.Neg()
		}
		for i := range je.SupplierItems {
			je.SupplierItems[i].Amount = je.SupplierItems[i].Amount.Neg()
		}
		je.DocumentReferenceID, je.HeaderText = "", ""
		je.ReversalReferenceDocument = ReversalKey(o.Document, o.CompanyCode, o.FiscalYear)
		je.ReversalReason = p.ReversalReason
		if !postDate.IsZero() {
			je.PostingDate, je.DocumentDate = postDate, postDate
		}
		r.je = je
	default:
		return nil, fmt.Errorf("%s documents are not reversed through sapq", o.Kind)
	}
	return r, nil
}

// reversalCall is the Request of a reverse posting.
type reversalCall struct {
	original    tasks.ReversedDocument
	reason      string
	postingDate time.Time
	je          JournalEntry // the reversal entry of a journal entry
}

func (reversalCall) Kind() tasks.Kind      { return tasks.KindReversePosting }
func (r reversalCall) CompanyCode() string { return r.original.CompanyCode }

func (r reversalCall) post(ctx context.Context, c *Client, s Send) (Document, error) {
	o := r.original
	if o.Kind == tasks.KindGoodsMovement {
		return c.CancelMaterialDocument(ctx, o.Document, o.FiscalYear, r.postingDate)
	}
	if o.Kind == tasks.KindSupplierInvoice {
		return c.CancelSupplierInvoice(ctx, o.CompanyCode, SupplierInvoiceCancel{
			SupplierInvoice: o.Document, FiscalYear: o.FiscalYear, ReversalReason: r.reason, PostingDate: r.postingDate})
	}
	je := r.je
	je.Reference, je.MessageUUID = s.Reference, s.MessageUUID
	return c.PostJournalEntry(ctx, je)
}

func (r reversalCall) find(ctx context.Context, c *Client, reference string) (Match, error) {
	o := r.original
	return c.FindReversal(ctx, o.Kind, o.CompanyCode, o.Document, o.FiscalYear, reference)
}
