package tasks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// KindReversePosting reverses a document that sapq posted.
const KindReversePosting Kind = "reverse_posting"

var reversePostingSpec = Spec{
	Kind:        KindReversePosting,
	Tool:        "reverse_posting",
	Title:       "Submit reverse posting",
	Summary:     "the reversal of a document that sapq posted for you",
	Description: `Reverse a document that sapq posted for you: name the job_id of that posting (status succeeded). SAP posts a reversal document with the opposite amounts and marks the original reversed; the answer's document is the reversal document. Supplier invoices, journal entries and goods movements (material documents) can be reversed here, each once (sales orders and billing documents cannot: they are cancelled in SAP). A job_id that is not yours, not succeeded, of another kind, or already reversed through sapq is refused with nothing recorded; a document that SAP shows reversed by someone else ends as a permanent failure (sapq/already_reversed) naming that reversal, never as a second reversal. The reversal goes to the original's SAP system.`,
	SAP:         "OData V2 API_SUPPLIERINVOICE_PROCESS_SRV, function import Cancel (supplier invoices); SOAP JournalEntryCreateRequestConfirmation_In with ReversalReferenceDocument (journal entries); OData V2 API_MATERIAL_DOCUMENT_SRV, function import Cancel (material documents)",
	Reference:   "JournalEntry/Item/AssignmentReference of the reversal entry (journal entries); none for supplier invoices and material documents (Cancel takes no reference)",
	Identity:    "the original document: before every call the look-up reads it (A_SupplierInvoice ReverseDocument; GLAccountLineItem IsReversed and ReversalReferenceDocument; A_MaterialDocumentItem ReversedMaterialDocument). A journal entry's reversal is this job's when its lines carry the job's reference; a supplier invoice's or material document's only when it was created by sapq's SAP user (GLAccountLineItem AccountingDocCreatedByUser, A_MaterialDocumentHeader CreatedByUser) and a Cancel of this job may have made it (no other reversal job of the ledger could have). Any other reversal fails the job as sapq/already_reversed",
	New:         func() Posting { return new(ReversePosting) },
}

// ReversibleKinds are the kinds whose documents a reverse posting reverses.
// A kind is added here together with its reversal call and look-up in
// sap/reverseposting.go (reversePostingRequest, FindReversal). Sales orders
// and billing documents are not reversed by a posting: an order is
// rejected or deleted, a billing document cancelled (VF11), in SAP.
var ReversibleKinds = []Kind{KindSupplierInvoice, KindJournalEntry, KindGoodsMovement}

// ReversePosting reverses the document of an earlier, succeeded job of the
// same caller. The caller names the job; sapq resolves it from the ledger
// at submission (Resolve) and stores what it found in Original, so that the
// worker needs no ledger read and the posting means exactly the document
// the caller was shown. Lengths are SAP's (ReversalReason 2).
type ReversePosting struct {
	Key            string `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this reversal (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never reverses twice under one key."`
	JobID          string `json:"job_id" sapq:"text,64" jsonschema:"The job_id of your succeeded posting whose document is to be reversed"`
	ReversalReason string `json:"reversal_reason,omitempty" sapq:"code,2" sap:"ReversalReason" jsonschema:"Optional SAP reversal reason (2 characters), for example 01 (reversal in current period) or 02 (reversal in closed period)"`
	PostingDate    string `json:"posting_date,omitempty" sapq:"date" sap:"PostingDate" jsonschema:"Optional posting date of the reversal as YYYY-MM-DD, in an open posting period; SAP takes the original's posting date when omitted"`
	// Destination may only repeat the original's: a document is reversed
	// in the SAP system that holds it.
	Destination string `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system of the original posting, by its configured name; omit it (the reversal always goes to the original's system)"`
	// Original is what sapq resolved job_id to; never sent by the caller
	// (DecodeSubmission refuses it).
	Original *ReversedDocument `json:"original,omitempty"`
}

// ReversedDocument is the document a reverse posting reverses, as the
// ledger holds the job that posted it.
type ReversedDocument struct {
	Kind        Kind   `json:"kind"`
	Document    string `json:"document"`
	FiscalYear  string `json:"fiscal_year"`
	CompanyCode string `json:"company_code"`
	Destination string `json:"destination"`
	// JournalEntry is the original journal entry: its reversal repeats
	// the lines with the opposite signs.
	JournalEntry *JournalEntry `json:"journal_entry,omitempty"`
}

// Same reports whether d and o are the same document.
func (d ReversedDocument) Same(o ReversedDocument) bool {
	return d.Kind == o.Kind && d.Document == o.Document && d.FiscalYear == o.FiscalYear &&
		d.CompanyCode == o.CompanyCode && d.Destination == o.Destination
}

func (*ReversePosting) Kind() Kind               { return KindReversePosting }
func (r *ReversePosting) IdempotencyKey() string { return r.Key }

// Validate checks every field the caller sends.
func (r *ReversePosting) Validate() error {
	var c checker
	c.checkFields(r)
	return c.err()
}

// A Resolver is a posting that names an earlier job of the same caller,
// which sapq reads from the ledger when it is submitted.
type Resolver interface {
	Posting
	// NamedJob is the job the posting names.
	NamedJob() string
	// Resolve takes what the ledger holds for the named job into the
	// posting, or returns a *ValidationError saying why the job cannot be
	// taken.
	Resolve(job Job) error
	// Resolved reports whether the posting holds a resolution: a caller's
	// submission never does.
	Resolved() bool
}

func (r *ReversePosting) NamedJob() string { return r.JobID }

// identityJSON is the reversal without the job_id it was named by: what it
// reverses (the resolved original), how and where. A resubmission that
// names the original's job anew, after the ledger forgot the first one and
// the original was adopted again under another job ID, is the same
// reversal: a replay, with the same reference in SAP.
func (r *ReversePosting) identityJSON() ([]byte, error) {
	c := *r
	c.JobID = ""
	return json.Marshal(&c)
}
func (r *ReversePosting) Resolved() bool { return r.Original != nil }

// Resolve takes the job's document as the one to reverse, if the job
// succeeded and its kind can be reversed.
func (r *ReversePosting) Resolve(job Job) error {
	var c checker
	res := job.Result
	switch {
	case job.Kind == KindReversePosting:
		c.add("job_id", "job %s is itself a reversal; a reversal is not reversed (post the document again instead)", job.ID)
	case job.Kind == KindSalesOrder || job.Kind == KindBillingDocument:
		c.add("job_id", "job %s is a %s, which reverse_posting cannot reverse: only %s documents can be reversed (sales orders are rejected and billing documents cancelled in SAP)", job.ID, job.Kind, kindList(ReversibleKinds))
	case !slices.Contains(ReversibleKinds, job.Kind):
		c.add("job_id", "job %s is a %s; only %s documents can be reversed", job.ID, job.Kind, kindList(ReversibleKinds))
	case !HoldsDocument(job):
		c.add("job_id", "job %s is %s; only a succeeded posting has a document to reverse", job.ID, job.Status)
	case job.Destination == "":
		c.add("job_id", "job %s has no recorded SAP destination; it cannot be reversed through sapq", job.ID)
	case r.Destination != "" && r.Destination != job.Destination:
		c.add("destination", "the document of job %s is in SAP destination %s; a reversal goes there: omit destination or name %s", job.ID, quote(job.Destination), quote(job.Destination))
	}
	if err := c.err(); err != nil {
		return err
	}
	r.Original = &ReversedDocument{Kind: job.Kind, Document: res.Document, FiscalYear: res.FiscalYear,
		CompanyCode: res.CompanyCode, Destination: job.Destination}
	if job.Kind == KindJournalEntry {
		p, err := job.Posting()
		je, ok := p.(*JournalEntry)
		if err != nil || !ok {
			return fmt.Errorf("tasks: journal entry of job %s: %v", job.ID, err)
		}
		r.Original.JournalEntry = je
	}
	return nil
}

// HoldsDocument reports whether the job's document stands in SAP's books as
// the ledger knows it: the job succeeded, or (a job of the same submission
// that found it reversed after the ledger forgot the first) failed as
// reversed, keeping it. A reversal names such a job: whether SAP reversed
// the document, and by whom, the reversal's look-up in SAP decides, which
// adopts only the reversal's own (a replay of a reversal whose job the
// ledger forgot).
func HoldsDocument(job Job) bool {
	res := job.Result
	if res == nil || res.Document == "" {
		return false
	}
	return job.Status == StatusSucceeded ||
		(job.Status == StatusFailed && job.Error != nil && job.Error.Category == CategoryReversed)
}

func kindList(ks []Kind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Facts: the original's company code and destination, and the original
// document as the object, so that two reversals of one document are never
// sent at the same time. A reversal moves no amount by itself: it undoes
// one that was judged when it was posted.
func (r *ReversePosting) Facts() Facts {
	if r.Original == nil {
		return Facts{Destination: r.Destination}
	}
	o := r.Original
	var units []OrgUnit
	if o.CompanyCode != "" { // a material document names none
		units = []OrgUnit{{UnitCompanyCode, "job_id", o.CompanyCode}}
	}
	return Facts{
		Units:   units,
		Objects: []string{fmt.Sprintf("%s/%s/%s/%s", o.Kind, o.CompanyCode, o.FiscalYear, o.Document)},
		// Resolve refused a destination other than the original's.
		Destination: cmp.Or(r.Destination, o.Destination),
	}
}

func (r *ReversePosting) String() string {
	if r.Original == nil {
		return "reversal of job " + r.JobID
	}
	return fmt.Sprintf("reversal of %s %s %s/%s (job %s)", r.Original.Kind, r.Original.CompanyCode, r.Original.Document, r.Original.FiscalYear, r.JobID)
}
