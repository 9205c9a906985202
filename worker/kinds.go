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
	FindSupplierInvoice(ctx context.Context, inv sap.SupplierInvoice) (sap.Document, bool, error)
	FindJournalEntry(ctx context.Context, companyCode, reference string) (sap.Document, bool, error)
}

// poster knows how one posting kind is sent to SAP and found again. Adding a
// kind means adding a poster; the protocol around it stays the same.
type poster interface {
	post(ctx context.Context, job tasks.Job, p tasks.Posting) (sap.Document, error)
	find(ctx context.Context, job tasks.Job, p tasks.Posting) (sap.Document, bool, error)
}

// typedPoster adapts functions over a concrete posting type, in the manner of
// River's generic workers.
type typedPoster[T tasks.Posting] struct {
	postFn func(ctx context.Context, job tasks.Job, p T) (sap.Document, error)
	findFn func(ctx context.Context, job tasks.Job, p T) (sap.Document, bool, error)
}

func (t typedPoster[T]) post(ctx context.Context, job tasks.Job, p tasks.Posting) (sap.Document, error) {
	typed, ok := p.(T)
	if !ok {
		return sap.Document{}, fmt.Errorf("worker: %s job carries %T", job.Kind, p)
	}
	return t.postFn(ctx, job, typed)
}

func (t typedPoster[T]) find(ctx context.Context, job tasks.Job, p tasks.Posting) (sap.Document, bool, error) {
	typed, ok := p.(T)
	if !ok {
		return sap.Document{}, false, fmt.Errorf("worker: %s job carries %T", job.Kind, p)
	}
	return t.findFn(ctx, job, typed)
}

func posters(s SAP, sapUser string) map[tasks.Kind]poster {
	return map[tasks.Kind]poster{
		tasks.KindSupplierInvoice: typedPoster[*tasks.SupplierInvoice]{
			postFn: func(ctx context.Context, job tasks.Job, p *tasks.SupplierInvoice) (sap.Document, error) {
				inv, err := supplierInvoice(p)
				if err != nil {
					return sap.Document{}, err
				}
				return s.PostSupplierInvoice(ctx, inv)
			},
			// SAP stores the supplier's invoice number with the invoice and
			// rejects a second one with the same amount and date (M8/108):
			// those fields find the document again.
			findFn: func(ctx context.Context, job tasks.Job, p *tasks.SupplierInvoice) (sap.Document, bool, error) {
				inv, err := supplierInvoice(p)
				if err != nil {
					return sap.Document{}, false, err
				}
				return s.FindSupplierInvoice(ctx, inv)
			},
		},
		tasks.KindJournalEntry: typedPoster[*tasks.JournalEntry]{
			postFn: func(ctx context.Context, job tasks.Job, p *tasks.JournalEntry) (sap.Document, error) {
				je, err := journalEntry(job, p, sapUser)
				if err != nil {
					return sap.Document{}, err
				}
				return s.PostJournalEntry(ctx, je)
			},
			// sapq writes the job's reference into every line's
			// AssignmentReference; the G/L line item API finds it.
			findFn: func(ctx context.Context, job tasks.Job, p *tasks.JournalEntry) (sap.Document, bool, error) {
				return s.FindJournalEntry(ctx, p.CompanyCode, job.Reference())
			},
		},
	}
}

func supplierInvoice(p *tasks.SupplierInvoice) (sap.SupplierInvoice, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return sap.SupplierInvoice{}, fmt.Errorf("worker: dates of a validated invoice: %v %v", err1, err2)
	}
	gross, amounts := p.Amounts()
	items := make([]sap.SupplierInvoiceGLItem, len(p.Items))
	for i, it := range p.Items {
		items[i] = sap.SupplierInvoiceGLItem{GLAccount: it.GLAccount, Amount: amounts[i], CostCenter: it.CostCenter, TaxCode: it.TaxCode, Text: it.Text}
	}
	return sap.SupplierInvoice{
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

func journalEntry(job tasks.Job, p *tasks.JournalEntry, user string) (sap.JournalEntry, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return sap.JournalEntry{}, fmt.Errorf("worker: dates of a validated entry: %v %v", err1, err2)
	}
	amounts := p.Amounts()
	items := make([]sap.JournalEntryItem, len(p.Items))
	for i, it := range p.Items {
		items[i] = sap.JournalEntryItem{GLAccount: it.GLAccount, Amount: amounts[i], CostCenter: it.CostCenter, Text: it.Text}
	}
	return sap.JournalEntry{
		// The job ID is a UUID: SAP's SOAP runtime processes a message UUID
		// once, so a resend of the same job is recognised by SAP too.
		MessageUUID:         job.ID,
		Reference:           job.Reference(),
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
