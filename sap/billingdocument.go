package sap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sapq/sapq/tasks"
)

const (
	billingV4Service     = odata4Root + "api_billingdocument/srvd_a2x/sap/billingdocument/0001/"
	billingCreateAction  = billingV4Service + "BillingDocument/SAP__self.CreateFromSDDocument"
	billingV2Service     = odataRoot + "API_BILLING_DOCUMENT_SRV/"
	billingDocumentSet   = billingV2Service + "A_BillingDocument"
	billingDocumentItems = billingV2Service + "A_BillingDocumentItem"

	opPostBillingDocument = "post billing document"
	opFindBillingDocument = "find billing document"

	// proFormaCategory is the SD document category of pro forma invoices,
	// which bill nothing: SAP bills an order for real after one.
	proFormaCategory = "U"
	// maxBilledDocuments bounds one billing request's sales documents.
	maxBilledDocuments = 1000
)

// BillingDocument is a request to bill sales documents in full, through the
// OData V4 action CreateFromSDDocument.
//
// The action has no field that SAP stores with the billing document for the
// caller: a billing document is identified by the sales documents it bills.
// SAP bills a document only once while its billing document stands (a
// second request is refused with VF/016, "already billed", Category
// Duplicate), so at most one billing document bills an order at a time.
type BillingDocument struct {
	// SalesDocuments are the documents to bill, as SAP numbers them.
	SalesDocuments []string
	// BillingDocumentType is optional; SAP derives it from the sales
	// document type (F2 for a standard order).
	BillingDocumentType string
	// BillingDate is a calendar date; zero lets SAP take today.
	BillingDate time.Time
}

type billingBody struct {
	Control struct {
		DefaultBillingDocumentDate string `json:"DefaultBillingDocumentDate,omitempty"` // Edm.Date
		DefaultBillingDocumentType string `json:"DefaultBillingDocumentType,omitempty"`
		// AutomPostingToAcctgIsDisabled false: the invoice is posted to
		// accounting at once, as a billing run does.
		AutomPostingToAcctgIsDisabled bool `json:"AutomPostingToAcctgIsDisabled"`
	} `json:"_Control"`
	Reference []billingReference `json:"_Reference"`
}

type billingReference struct {
	SDDocument string `json:"SDDocument"`
}

// PostBillingDocument bills the sales documents and returns the billing
// document. Should SAP split the billing into several documents (different
// payers, dates, ...), the first is returned and the others are named in
// its messages. After an Unknown or Duplicate error, call
// FindBillingDocument before anything else.
func (c *Client) PostBillingDocument(ctx context.Context, b BillingDocument) (Document, error) {
	v := validator{op: opPostBillingDocument}
	if n := len(b.SalesDocuments); n == 0 || n > maxBilledDocuments {
		v.fail("1 to " + strconv.Itoa(maxBilledDocuments) + " sales documents are required")
	}
	for i, sd := range b.SalesDocuments {
		v.required("SalesDocuments["+strconv.Itoa(i)+"]", sd, 10)
	}
	v.optional("BillingDocumentType", b.BillingDocumentType, 4)
	if err := v.err(c); err != nil {
		return Document{}, err
	}
	var body billingBody
	body.Control.DefaultBillingDocumentType = b.BillingDocumentType
	if !b.BillingDate.IsZero() {
		body.Control.DefaultBillingDocumentDate = calendarDay(b.BillingDate).Format(time.DateOnly)
	}
	for _, sd := range b.SalesDocuments {
		body.Reference = append(body.Reference, billingReference{SDDocument: sd})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Document{}, c.scrub(&Error{Category: Permanent, Op: opPostBillingDocument, Message: "cannot encode billing request", Err: err})
	}
	r, err := c.postOData(ctx, opPostBillingDocument, billingV4Service, billingCreateAction, nil, raw)
	if err != nil {
		return Document{}, err
	}
	var res struct {
		Value []billingResult `json:"value"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || len(res.Value) == 0 || slices.ContainsFunc(res.Value, func(d billingResult) bool { return d.BillingDocument == "" }) {
		// SAP answered yes without naming what it created: the billing
		// document most likely exists, and only the look-up may tell.
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opPostBillingDocument, HTTPStatus: r.status,
			Message: "SAP accepted the billing request but its answer names no billing document", Err: err})
	}
	slices.SortFunc(res.Value, func(a, b billingResult) int { return compareNumbers(a.BillingDocument, b.BillingDocument) })
	first := res.Value[0]
	doc := Document{Number: first.BillingDocument, CompanyCode: first.CompanyCode, FiscalYear: first.FiscalYear, Messages: parseSAPMessages(r.header)}
	for _, other := range res.Value[1:] {
		doc.Messages = append(doc.Messages, splitMessage(other.BillingDocument))
	}
	return doc, nil
}

// billingResult is what the client reads of each billing document the
// action returns.
type billingResult struct{ BillingDocument, CompanyCode, FiscalYear string }

// splitMessage names a further billing document of a split billing.
func splitMessage(document string) Message {
	return Message{Code: "sapq/billing_split", Severity: "info",
		Text: fmt.Sprintf("SAP split the billing: billing document %s bills the rest of the sales documents", document)}
}

// FindBillingDocument looks for the billing document of these sales
// documents: the one, or the ones of a split, that are neither cancelled
// nor cancellations nor pro forma invoices (unless billingType asks for
// one) and that bill exactly these documents, no fewer and no others. A
// cancelled billing document does not count: cancelling it opens its orders
// for billing again, so a billing document is never reported reversed. A
// billing document of other orders besides these, or of only some of them,
// is not this posting's; sending it then meets SAP's refusal to bill an
// order twice. Match.Found is false when SAP answered and holds none; an
// error means SAP could not be read, and the caller must then not post.
func (c *Client) FindBillingDocument(ctx context.Context, salesDocuments []string, billingType string) (Match, error) {
	v := validator{op: opFindBillingDocument}
	if len(salesDocuments) == 0 || len(salesDocuments) > maxBilledDocuments {
		v.fail("1 to " + strconv.Itoa(maxBilledDocuments) + " sales documents are required")
	}
	want := map[string]bool{}
	for i, sd := range salesDocuments {
		v.required("salesDocuments["+strconv.Itoa(i)+"]", sd, 10)
		want[alphaNumber(sd)] = true
	}
	if err := v.err(c); err != nil {
		return Match{}, err
	}
	// The billing documents whose items refer to one of the sales
	// documents.
	var candidates []string
	for _, sd := range salesDocuments {
		rows, err := c.query(ctx, opFindBillingDocument, billingDocumentItems, url.Values{
			"$select": {"BillingDocument,ReferenceSDDocument"},
			"$filter": {"ReferenceSDDocument eq " + quote(sd)},
		})
		if err != nil {
			return Match{}, err
		}
		for _, raw := range rows {
			var row struct{ BillingDocument, ReferenceSDDocument string }
			if err := json.Unmarshal(raw, &row); err != nil {
				return Match{}, c.unreadable(opFindBillingDocument, err)
			}
			if alphaNumber(row.ReferenceSDDocument) != alphaNumber(sd) {
				return Match{}, c.unreadable(opFindBillingDocument, fmt.Errorf("item of %s does not match the filter", row.BillingDocument))
			}
			if row.BillingDocument == "" {
				return Match{}, c.noNumber(opFindBillingDocument)
			}
			if !slices.Contains(candidates, row.BillingDocument) {
				candidates = append(candidates, row.BillingDocument)
			}
		}
	}
	slices.SortFunc(candidates, compareNumbers)
	// The standing ones, and what each bills.
	var standing []Document
	billed := map[string]bool{}
	for _, number := range candidates {
		rows, err := c.query(ctx, opFindBillingDocument, billingDocumentSet, url.Values{
			"$select": {"BillingDocument,BillingDocumentType,SDDocumentCategory,CompanyCode,FiscalYear,BillingDocumentIsCancelled,CancelledBillingDocument,to_Item"},
			"$filter": {"BillingDocument eq " + quote(number)},
			"$expand": {"to_Item"},
		})
		if err != nil {
			return Match{}, err
		}
		if len(rows) != 1 {
			// An item without its document: SAP's answer is inconsistent.
			return Match{}, c.unreadable(opFindBillingDocument, fmt.Errorf("billing document %s: %d headers", number, len(rows)))
		}
		var hdr struct {
			BillingDocument, BillingDocumentType, SDDocumentCategory string
			CompanyCode, FiscalYear, CancelledBillingDocument        string
			BillingDocumentIsCancelled                               bool
			Items                                                    struct {
				Results []struct{ ReferenceSDDocument string } `json:"results"`
			} `json:"to_Item"`
		}
		if err := json.Unmarshal(rows[0], &hdr); err != nil {
			return Match{}, c.unreadable(opFindBillingDocument, err)
		}
		if hdr.BillingDocument != number {
			return Match{}, c.unreadable(opFindBillingDocument, fmt.Errorf("billing document %s answered for %s", hdr.BillingDocument, number))
		}
		switch {
		case hdr.BillingDocumentIsCancelled || hdr.CancelledBillingDocument != "":
			continue
		case billingType != "" && hdr.BillingDocumentType != billingType:
			continue
		case billingType == "" && hdr.SDDocumentCategory == proFormaCategory:
			continue
		}
		for _, it := range hdr.Items.Results {
			sd := alphaNumber(it.ReferenceSDDocument)
			if !want[sd] {
				return Match{}, nil // it bills other documents too: not this posting's
			}
			billed[sd] = true
		}
		standing = append(standing, Document{Number: hdr.BillingDocument, CompanyCode: hdr.CompanyCode, FiscalYear: hdr.FiscalYear})
	}
	if len(standing) == 0 || len(billed) != len(want) {
		return Match{}, nil
	}
	return Match{Found: true, Document: standing[0]}, nil
}

// billingDocumentRequest maps a billing posting to CreateFromSDDocument.
// The sales documents go as SAP numbers them, without leading zeros, so
// that the look-up's filter on ReferenceSDDocument matches what SAP stores.
func billingDocumentRequest(p *tasks.BillingDocument) (Request, error) {
	b := BillingDocument{SalesDocuments: p.BilledDocuments(), BillingDocumentType: p.BillingDocumentType}
	if p.BillingDate != "" {
		d, err := tasks.ParseDate(p.BillingDate)
		if err != nil {
			return nil, fmt.Errorf("billing_date: %w", err)
		}
		b.BillingDate = d
	}
	return billingDocumentCall{b}, nil
}

// billingDocumentCall is the Request of a billing document. It carries no
// reference into SAP (the action has no field for it); its look-up is by
// the billed sales documents.
type billingDocumentCall struct{ b BillingDocument }

func (billingDocumentCall) Kind() tasks.Kind { return tasks.KindBillingDocument }

// CompanyCode is "": SAP determines the billing document's company code
// from the orders' sales organisation.
func (billingDocumentCall) CompanyCode() string { return "" }

func (r billingDocumentCall) post(ctx context.Context, c *Client, _ Send) (Document, error) {
	return c.PostBillingDocument(ctx, r.b)
}

func (r billingDocumentCall) find(ctx context.Context, c *Client, _ string) (Match, error) {
	return c.FindBillingDocument(ctx, r.b.SalesDocuments, r.b.BillingDocumentType)
}
