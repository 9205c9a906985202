package sap

import (
	"context"
	"fmt"

	"github.com/sapq/sapq/tasks"
)

// A Request is one posting turned into what SAP is sent for it, built before
// anything is sent (NewRequest), so that a posting that cannot be turned
// into a request fails without SAP ever being called. Client.Post sends it,
// Client.Find looks for the document it made.
type Request interface {
	// Kind is the posting's kind.
	Kind() tasks.Kind
	// CompanyCode is where the document is looked for.
	CompanyCode() string
	post(ctx context.Context, c *Client, s Send) (Document, error)
	find(ctx context.Context, c *Client, reference string) (Match, error)
}

// checker is a Request that SAP can check without posting (journal
// entries: a test run; sales orders: the simulation service).
type checker interface {
	check(ctx context.Context, c *Client, s Send) (CheckResult, error)
}

// CheckResult is SAP's verdict on a posting it checked without posting it.
type CheckResult struct {
	// Checked is false when SAP offers no check without posting for the
	// posting's kind; then nothing was sent.
	Checked bool
	// Passed is true when SAP found no error; Messages are SAP's log.
	Passed   bool
	Messages []Message
}

// Check has SAP check the request's posting without posting it, where SAP
// offers a check; s.MessageUUID is not used (a check sends its own).
func (c *Client) Check(ctx context.Context, r Request, s Send) (CheckResult, error) {
	ch, ok := r.(checker)
	if !ok {
		return CheckResult{}, nil
	}
	return ch.check(ctx, c, s)
}

// Send identifies one call of a posting in SAP.
type Send struct {
	// Reference is the posting's reference (tasks.Identity.Reference),
	// written into a field SAP stores with the document, where Find looks.
	Reference string
	// MessageUUID is the SOAP message UUID of this call's generation
	// (tasks.Identity.MessageUUID); unused by OData services.
	MessageUUID string
}

// kind is one posting kind's mapping to SAP: how its request is built from
// the posting, in the kind's own file. kinds lists them.
type kind interface {
	request(p tasks.Posting) (Request, error)
}

// kinds is every posting kind the client can post: one line per kind.
var kinds = map[tasks.Kind]kind{
	tasks.KindSupplierInvoice: builder(supplierInvoiceRequest),
	tasks.KindJournalEntry:    builder(journalEntryRequest),
	tasks.KindSalesOrder:      builder(salesOrderRequest),
	tasks.KindBillingDocument: builder(billingDocumentRequest),
	tasks.KindGoodsMovement:   builder(goodsMovementRequest),
	tasks.KindReversePosting:  builder(reversePostingRequest),
}

// builder adapts a request builder over the kind's posting type to kind.
func builder[T tasks.Posting](build func(p T) (Request, error)) kind { return typedKind[T](build) }

type typedKind[T tasks.Posting] func(p T) (Request, error)

func (b typedKind[T]) request(p tasks.Posting) (Request, error) {
	t, ok := p.(T)
	if !ok {
		return nil, fmt.Errorf("sap: %s posting is a %T", p.Kind(), p)
	}
	return b(t)
}

// NewRequest builds the SAP request for a valid posting.
func NewRequest(p tasks.Posting) (Request, error) {
	k, ok := kinds[p.Kind()]
	if !ok {
		return nil, fmt.Errorf("sap: no mapping to SAP for postings of kind %s", p.Kind())
	}
	return k.request(p)
}

// Supports reports whether the client can post postings of kind k.
func Supports(k tasks.Kind) bool {
	_, ok := kinds[k]
	return ok
}

// Post sends the request's call to SAP.
func (c *Client) Post(ctx context.Context, r Request, s Send) (Document, error) {
	return r.post(ctx, c, s)
}

// Find looks for the document that carries reference, the one the request
// makes. Match.Found is false when SAP answered and holds none; an error
// means SAP could not be read, and the caller must not post.
func (c *Client) Find(ctx context.Context, r Request, reference string) (Match, error) {
	return r.find(ctx, c, reference)
}
