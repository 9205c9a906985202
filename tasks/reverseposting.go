package tasks

import (
	"fmt"
	"slices"
	"strings"
)

// KindReversePosting reverses a document that sapq posted.
const KindReversePosting Kind = "reverse_posting"

var reversePostingSpec = Spec{
	Kind:        KindReversePosting,
	Tool:        "submit_reverse_posting",
	Title:       "Submit reverse posting",
	Summary:     "the reversal of a document that sapq posted for you",
	Description: `Submit the reversal of a document that sapq posted for you: name the job_id of that posting (status succeeded). SAP posts a reversal document with the opposite amounts and marks the original reversed; the answer's document is the reversal document. Only supplier invoices and journal entries can be reversed, each once: a job that is not yours, not succeeded, of another kind, or whose document SAP already shows reversed is refused, and a document that SAP shows reversed by someone else ends as a permanent failure naming the reversal, never as a second reversal.`,
	SAP:         "OData V2 API_SUPPLIERINVOICE_PROCESS_SRV, function import Cancel (supplier invoices); SOAP JournalEntryCreateRequestConfirmation_In with ReversalReferenceDocument (journal entries)",
	Reference:   "JournalEntry/Item/AssignmentReference of the reversal (journal entries); none for supplier invoices",
	Identity:    "the original document: the look-up reads it (A_SupplierInvoice ReverseDocument; GLAccountLineItem IsReversed and ReversalReferenceDocument) and adopts its reversal only when this job may have made it (a call of the job went out); a reversal of a journal entry also carries the job's reference",
	New:         func() Posting { return new(ReversePosting) },
}

// ReversibleKinds are the kinds whose documents a reverse posting reverses.
var ReversibleKinds = []Kind{KindSupplierInvoice, KindJournalEntry}

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
func (r *ReversePosting) Resolved() bool   { return r.Original != nil }

// Resolve takes the job's document as the one to reverse, if the job
// succeeded and its kind can be reversed.
func (r *ReversePosting) Resolve(job Job) error {
	var c checker
	res := job.Result
	switch {
	case job.Kind == KindReversePosting:
		c.add("job_id", "job %s is itself a reversal; a reversal is not reversed (post the document again instead)", job.ID)
	case !slices.Contains(ReversibleKinds, job.Kind):
		c.add("job_id", "job %s is a %s; only %s documents can be reversed", job.ID, job.Kind, kindList(ReversibleKinds))
	case job.Status != StatusSucceeded || res == nil || res.Document == "":
		c.add("job_id", "job %s is %s; only a succeeded posting has a document to reverse", job.ID, job.Status)
	case res.ReversedBy != "":
		c.add("job_id", "the document %s %s of job %s is already reversed by %s", res.Document, res.FiscalYear, job.ID, res.ReversedBy)
	case job.Destination == "":
		c.add("job_id", "job %s has no recorded SAP destination; it cannot be reversed through sapq", job.ID)
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

func kindList(ks []Kind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	return strings.Join(names, " and ")
}

// Facts: the original's company code and destination, and the original
// document as the object, so that two reversals of one document are never
// sent at the same time. A reversal moves no amount by itself: it undoes
// one that was judged when it was posted.
func (r *ReversePosting) Facts() Facts {
	if r.Original == nil {
		return Facts{}
	}
	o := r.Original
	return Facts{
		Units:       []OrgUnit{{UnitCompanyCode, "job_id", o.CompanyCode}},
		Objects:     []string{fmt.Sprintf("%s/%s/%s/%s", o.Kind, o.CompanyCode, o.FiscalYear, o.Document)},
		Destination: o.Destination,
	}
}

func (r *ReversePosting) String() string {
	if r.Original == nil {
		return "reversal of job " + r.JobID
	}
	return fmt.Sprintf("reversal of %s %s %s/%s (job %s)", r.Original.Kind, r.Original.CompanyCode, r.Original.Document, r.Original.FiscalYear, r.JobID)
}
