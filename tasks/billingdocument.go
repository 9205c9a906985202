package tasks

import (
	"fmt"
	"slices"
	"strings"
)

// KindBillingDocument is a billing document (an invoice to a customer)
// created from sales orders.
const KindBillingDocument Kind = "billing_document"

var billingDocumentSpec = Spec{
	Kind:        KindBillingDocument,
	Tool:        "submit_billing_document",
	Title:       "Submit billing document",
	Summary:     "a billing document (customer invoice) for sales orders",
	Description: `Submit a billing document for creation in SAP: SAP bills the listed sales orders (the document numbers submit_sales_order returned) in full, prices them as the orders did and posts the invoice to accounting. SAP bills an order only once: an order that is already billed is answered with the billing document that bills it when that document bills exactly the listed orders, and refused otherwise.`,
	SAP:         "OData V4 api_billingdocument, action BillingDocument/SAP__self.CreateFromSDDocument",
	Reference:   "none",
	Identity:    "the billed sales documents: the look-up (API_BILLING_DOCUMENT_SRV, A_BillingDocumentItem by ReferenceSDDocument) adopts the billing document that is not cancelled and bills exactly these orders; the action has no field for sapq's reference",
	New:         func() Posting { return new(BillingDocument) },
}

// MaxBillingSalesDocuments bounds the sales documents of one billing
// posting: the look-up reads SAP once per document.
const MaxBillingSalesDocuments = 20

// BillingDocument bills sales documents. It maps to the OData V4 action
// CreateFromSDDocument of api_billingdocument: each sales document is one
// _Reference entry, type and date go into _Control. Lengths are SAP's
// (SDDocument 10, BillingDocumentType 4).
type BillingDocument struct {
	Key                 string   `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this business document (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	SalesDocuments      []string `json:"sales_documents" sapq:"list,1,20,number,10" sap:"_Reference/SDDocument" jsonschema:"1 to 20 sales order numbers to bill, each as SAP returned it (digits, up to 10), for example 1"`
	BillingDocumentType string   `json:"billing_document_type,omitempty" sapq:"code,4" sap:"_Control/DefaultBillingDocumentType" jsonschema:"Optional SAP billing type (up to 4 characters), for example F2 (invoice); SAP derives it from the sales document type when omitted"`
	BillingDate         string   `json:"billing_date,omitempty" sapq:"date" sap:"_Control/DefaultBillingDocumentDate" jsonschema:"Optional billing date as YYYY-MM-DD, which is also the invoice's posting date and must fall in an open posting period; SAP takes today when omitted"`
	Destination         string   `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system that holds the sales orders, by its configured name; omit it for the default destination"`
}

func (*BillingDocument) Kind() Kind               { return KindBillingDocument }
func (b *BillingDocument) IdempotencyKey() string { return b.Key }

// Validate checks every field and that no sales document is listed twice
// (SAP's document numbers ignore leading zeros: "12" and "0000000012" are
// one order).
func (b *BillingDocument) Validate() error {
	var c checker
	c.checkFields(b)
	first := map[string]int{}
	for i, d := range b.SalesDocuments {
		n := alphaNumber(d)
		if n == "" {
			continue
		}
		if j, seen := first[n]; seen {
			c.add(fmt.Sprintf("sales_documents[%d]", i), "lists sales document %s a second time (first at sales_documents[%d]); list each document once", quote(d), j)
			continue
		}
		first[n] = i
	}
	return c.err()
}

// BilledDocuments are the sales documents the posting bills, as SAP keeps
// them internally (leading zeros dropped), sorted: the identity of a
// billing document in SAP's eyes, since the document carries no reference
// of sapq's.
func (b *BillingDocument) BilledDocuments() []string {
	out := make([]string, 0, len(b.SalesDocuments))
	for _, d := range b.SalesDocuments {
		if n := alphaNumber(d); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(x, y string) int {
		if len(x) != len(y) {
			return len(x) - len(y)
		}
		return strings.Compare(x, y)
	})
	return out
}

// alphaNumber is a document number without its leading zeros, as SAP's
// ALPHA conversion compares numbers; "" for what is not a number.
func alphaNumber(s string) string {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return ""
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}

// Facts: the sales orders, which SAP locks while it bills them (message
// V1/042 for a second process). No organisational unit and no amount:
// which sales organisation the orders belong to and what the invoice
// amounts to are SAP's to know (the orders' data and their pricing), not
// the posting's, so sales organisation and amount rules cannot judge it.
func (b *BillingDocument) Facts() Facts {
	f := Facts{Destination: b.Destination}
	for _, d := range b.BilledDocuments() {
		f.Objects = append(f.Objects, "salesorder/"+d)
	}
	return f
}

func (b *BillingDocument) String() string {
	return fmt.Sprintf("billing document for sales documents %s", strings.Join(b.SalesDocuments, ", "))
}
