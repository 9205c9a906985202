package worker

import (
	"context"
	"fmt"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// SAP is what the worker needs from SAP. *sap.Client implements it.
type SAP interface {
	PostSupplierInvoice(ctx context.Context, inv sap.SupplierInvoice) (sap.Document, error)
	PostJournalEntry(ctx context.Context, je sap.JournalEntry) (sap.Document, error)
	FindSupplierInvoice(ctx context.Context, companyCode, reference string) (sap.Match, error)
	FindJournalEntry(ctx context.Context, companyCode, reference string) (sap.Match, error)
}

// call is one job's request to SAP, built before anything is recorded as
// sent, so that a job that cannot be turned into a request fails without
// SAP ever being called. Both halves carry the posting's SAP-side identity:
// find looks for the document by its reference, post writes the reference
// into SAP and sends the message UUID of the given generation.
type call struct {
	post func(ctx context.Context, messageUUID string) (sap.Document, error)
	find func(ctx context.Context) (sap.Match, error)
}

// poster builds the call for a job of one posting kind with the job's
// reference. Adding a kind means adding a poster; the protocol around it
// stays the same.
type poster func(job tasks.Job, reference string) (call, error)

// typed adapts a builder over a concrete posting type, in the manner of
// River's generic workers: it decodes the job's stored payload into T.
func typed[T tasks.Posting](build func(job tasks.Job, p T, reference string) (call, error)) poster {
	return func(job tasks.Job, reference string) (call, error) {
		p, err := job.Posting()
		if err != nil {
			return call{}, err
		}
		t, ok := p.(T)
		if !ok {
			return call{}, fmt.Errorf("%s job carries %T", job.Kind, p)
		}
		return build(job, t, reference)
	}
}

func posters(s SAP, sapUser string) map[tasks.Kind]poster {
	return map[tasks.Kind]poster{
		tasks.KindSupplierInvoice: typed(func(_ tasks.Job, p *tasks.SupplierInvoice, ref string) (call, error) {
			inv, err := supplierInvoice(p, ref)
			return call{
				// OData has no message UUID: the reference in the invoice's
				// AssignmentReference is what identifies it.
				post: func(ctx context.Context, _ string) (sap.Document, error) { return s.PostSupplierInvoice(ctx, inv) },
				find: func(ctx context.Context) (sap.Match, error) { return s.FindSupplierInvoice(ctx, inv.CompanyCode, ref) },
			}, err
		}),
		tasks.KindJournalEntry: typed(func(_ tasks.Job, p *tasks.JournalEntry, ref string) (call, error) {
			je, err := journalEntry(p, ref, sapUser)
			return call{
				post: func(ctx context.Context, messageUUID string) (sap.Document, error) {
					je := je
					je.MessageUUID = messageUUID
					return s.PostJournalEntry(ctx, je)
				},
				// sapq writes the reference into every line's
				// AssignmentReference; the G/L line item API finds it.
				find: func(ctx context.Context) (sap.Match, error) { return s.FindJournalEntry(ctx, je.CompanyCode, ref) },
			}, err
		}),
	}
}

func supplierInvoice(p *tasks.SupplierInvoice, reference string) (sap.SupplierInvoice, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return sap.SupplierInvoice{}, fmt.Errorf("dates: %v %v", err1, err2)
	}
	gross, amounts, err := p.Amounts()
	if err != nil {
		return sap.SupplierInvoice{}, err
	}
	items := make([]sap.SupplierInvoiceGLItem, len(p.Items))
	for i, it := range p.Items {
		items[i] = sap.SupplierInvoiceGLItem{GLAccount: it.GLAccount, Amount: amounts[i], CostCenter: it.CostCenter, TaxCode: it.TaxCode, Text: it.Text}
	}
	return sap.SupplierInvoice{
		AssignmentReference:           reference,
		CompanyCode:                   p.CompanyCode,
		InvoicingParty:                p.Supplier,
		SupplierInvoiceIDByInvcgParty: p.InvoiceReference,
		DocumentCurrency:              p.Currency,
		DocumentDate:                  docDate,
		PostingDate:                   postDate,
		InvoiceGrossAmount:            gross,
		DocumentHeaderText:            p.HeaderText,
		Items:                         items,
	}, nil
}

func journalEntry(p *tasks.JournalEntry, reference, user string) (sap.JournalEntry, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return sap.JournalEntry{}, fmt.Errorf("dates: %v %v", err1, err2)
	}
	amounts, err := p.Amounts()
	if err != nil {
		return sap.JournalEntry{}, err
	}
	items := make([]sap.JournalEntryItem, len(p.Items))
	for i, it := range p.Items {
		items[i] = sap.JournalEntryItem{GLAccount: it.GLAccount, Amount: amounts[i], CostCenter: it.CostCenter, Text: it.Text}
	}
	return sap.JournalEntry{
		Reference:           reference,
		CompanyCode:         p.CompanyCode,
		DocumentType:        p.DocType(),
		DocumentReferenceID: p.Reference,
		HeaderText:          p.HeaderText,
		Currency:            p.Currency,
		CreatedByUser:       user,
		DocumentDate:        docDate,
		PostingDate:         postDate,
		Items:               items,
	}, nil
}
