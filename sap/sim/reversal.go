package sim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Reversals of supplier invoices (function import Cancel of
// API_SUPPLIERINVOICE_PROCESS_SRV, as MR8M does it) and of journal entries
// (a JournalEntryCreateRequest naming the original in
// ReversalReferenceDocument, as FB08 does it), both on Server.reverse: a
// reversal document with the opposite amounts, the original marked
// reversed and naming its reversal; a document is reversed once.

// The simulator's messages for reversals. The codes are the simulator's
// rendering (SAP's texts for these cases vary by release); clients must
// read the original's state by look-up, not the code.
func msgAlreadyReversed(document, fiscalYear, reversal string) sapMessage {
	return sapMessage{Code: "M8/321", Text: fmt.Sprintf("Document %s %s has already been reversed (reversal document %s)", document, fiscalYear, reversal)}
}

func msgIsReversal(document string) sapMessage {
	return sapMessage{Code: "F5A/205", Text: fmt.Sprintf("Reversal not possible - document %s is a reversal document", document)}
}

func msgDocumentUnknown(document, companyCode, fiscalYear string) sapMessage {
	return sapMessage{Code: "F5/810", Text: fmt.Sprintf("Document %s %s %s does not exist", document, companyCode, fiscalYear)}
}

func init() {
	supplierInvoiceService.functions = map[string]func(*Server, http.ResponseWriter, *http.Request, []byte){
		"Cancel": (*Server).cancelSupplierInvoiceFunction,
	}
	supplierInvoiceService.functionKinds = map[string]Kind{"Cancel": KindSupplierInvoice}
}

// cancelSupplierInvoiceFunction serves Cancel: parameters are URI literals
// in the query; the answer is CancelInvoiceExportParameters.
func (s *Server) cancelSupplierInvoiceFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	svc := supplierInvoiceService
	q := r.URL.Query()
	lit := func(name string) string { return strings.TrimSuffix(strings.TrimPrefix(q.Get(name), "'"), "'") }
	no, fy := lit("SupplierInvoice"), lit("FiscalYear")
	for name, v := range map[string]string{"SupplierInvoice": no, "FiscalYear": fy} {
		if v == "" {
			s.writeODataError(w, http.StatusBadRequest, svc, msgRequired(name))
			return
		}
	}
	var postingDate time.Time
	if v := q.Get("PostingDate"); v != "" {
		d, err := parseEdmDateTime(strings.TrimSuffix(strings.TrimPrefix(v, "datetime'"), "'"))
		if err != nil {
			s.writeODataError(w, http.StatusBadRequest, svc, msgSyntax("PostingDate: "+err.Error()))
			return
		}
		postingDate = d
	}
	s.mu.Lock()
	var inv *supplierInvoice
	for _, i := range s.books.invoices {
		if i.SupplierInvoice == no && i.FiscalYear == fy {
			inv = i
		}
	}
	var rev string
	var msg *sapMessage
	if inv == nil {
		m := msgDocumentUnknown(no, "", fy)
		msg = &m
	} else {
		rev, msg = s.reverse(KindSupplierInvoice, inv.CompanyCode, no, fy, postingDate, s.opts.User)
	}
	if msg != nil {
		s.stats.Rejected[KindSupplierInvoice]++
	}
	s.mu.Unlock()
	if msg != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, *msg)
		return
	}
	writeJSON(w, http.StatusOK, object{{"d", object{{"Cancel", object{
		{"ReverseDocument", rev}, {"FiscalYear", fy}, {"Success", true},
	}}}}})
}

// ClerkUser is the SAP user of the person who reverses documents by hand
// (Reverse): not the communication user that sapq logs on as.
const ClerkUser = "AP_CLERK"

// Reverse reverses a posted document the way a person in SAP does (MR8M for
// a supplier invoice, FB08 for a journal entry, VF11 for a billing
// document, MBST for a material document, whose company code is not
// checked), outside sapq and as ClerkUser: a reversal document with the
// opposite amounts and the same assignment, and the original marked
// reversed. It returns the reversal document's number. Tests use it to
// reverse a document behind sapq's back; POST /sim/reverse is the same.
func (s *Server) Reverse(kind Kind, companyCode, document, fiscalYear string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == KindGoodsMovement {
		// MBST; a material document names no company code.
		c, msg := s.cancelMaterialDocument(document, fiscalYear, time.Time{}, ClerkUser)
		if msg != nil {
			return "", fmt.Errorf("sim: %s %s", msg.Code, msg.Text)
		}
		return c.MaterialDocument, nil
	}
	if kind == KindBillingDocument {
		d := s.books.sales.billingByNo[alpha(document)]
		if d == nil || d.CompanyCode != companyCode || d.FiscalYear != fiscalYear {
			return "", fmt.Errorf("sim: no %s %s %s/%s", kind, companyCode, document, fiscalYear)
		}
		c, msg := s.cancelBilling(document)
		if msg != nil {
			return "", fmt.Errorf("sim: %s %s", msg.Code, msg.Text)
		}
		return c.BillingDocument, nil
	}
	rev, msg := s.reverse(kind, companyCode, document, fiscalYear, time.Time{}, ClerkUser)
	if msg != nil {
		return "", fmt.Errorf("sim: %s %s", msg.Code, msg.Text)
	}
	return rev, nil
}

// ledgerEntry is the ledger's entry of a document. Callers hold s.mu.
func (s *Server) ledgerEntry(kind Kind, companyCode, document, fiscalYear string) *LedgerDocument {
	for i := range s.books.ledger {
		d := &s.books.ledger[i]
		if d.Kind == kind && d.CompanyCode == companyCode && d.Document == document && d.FiscalYear == fiscalYear {
			return d
		}
	}
	return nil
}

// reverse reverses a supplier invoice or a journal entry whose lines SAP
// writes itself (the opposite of the original's), as user: the reversal's
// FI document names its creator (AccountingDocCreatedByUser), as SAP's
// does. Callers hold s.mu.
func (s *Server) reverse(kind Kind, companyCode, document, fiscalYear string, postingDate time.Time, user string) (string, *sapMessage) {
	entry := s.ledgerEntry(kind, companyCode, document, fiscalYear)
	if msg := reversible(entry, document, companyCode, fiscalYear); msg != nil {
		return "", msg
	}
	// The reversal posts on its own date, or on the original's: either
	// must be in an open period.
	date := postingDate
	if date.IsZero() {
		date = s.postingDateOf(companyCode, fiscalYear, document, kind)
	}
	if !date.IsZero() && !s.periodOpen(date) {
		m := msgPeriodClosed(date)
		return "", &m
	}
	now := s.opts.Now()
	var reversal string
	switch kind {
	case KindSupplierInvoice:
		var inv *supplierInvoice
		for _, i := range s.books.invoices {
			if i.SupplierInvoice == document && i.FiscalYear == fiscalYear {
				inv = i
			}
		}
		rev := *inv
		rev.SupplierInvoice = s.books.nextNumber("RBKP/"+fiscalYear, firstSupplierInvoice)
		rev.AccountingDocument = s.books.nextNumber("RE/"+companyCode+"/"+fiscalYear, firstInvoiceFIDoc)
		rev.IsReversal, rev.ReverseDocument, rev.ReverseDocumentFiscalYear = true, "", ""
		rev.CreationDate = now
		if !postingDate.IsZero() {
			rev.PostingDate = postingDate
		}
		inv.IsReversed, inv.ReverseDocument, inv.ReverseDocumentFiscalYear = true, rev.SupplierInvoice, fiscalYear
		s.books.addInvoice(&rev)
		reversal = rev.SupplierInvoice
		s.reverseLines(companyCode, fiscalYear, inv.AccountingDocument, rev.AccountingDocument, reversalLine{
			at: now, user: user, postingDate: postingDate, referenceDocument: rev.SupplierInvoice})
	case KindJournalEntry:
		reversal = s.books.nextNumber("SA/"+companyCode+"/"+fiscalYear, firstJournalEntry)
		s.reverseLines(companyCode, fiscalYear, document, reversal, reversalLine{at: now, user: user, postingDate: postingDate})
	default:
		m := sapMessage{Code: "F5/360", Text: fmt.Sprintf("%s documents are not reversible here", kind)}
		return "", &m
	}
	s.markReversed(entry, reversal, now)
	return reversal, nil
}

// reversible says why a document cannot be reversed, or nil.
func reversible(entry *LedgerDocument, document, companyCode, fiscalYear string) *sapMessage {
	var m sapMessage
	switch {
	case entry == nil:
		m = msgDocumentUnknown(document, companyCode, fiscalYear)
	case entry.Reverses != "":
		m = msgIsReversal(document)
	case entry.ReversedBy != "":
		m = msgAlreadyReversed(document, fiscalYear, entry.ReversedBy)
	default:
		return nil
	}
	return &m
}

// markReversed books the reversal of entry in the ledger. Callers hold s.mu.
func (s *Server) markReversed(entry *LedgerDocument, reversal string, now time.Time) {
	entry.ReversedBy = reversal
	s.books.ledger = append(s.books.ledger, LedgerDocument{Kind: entry.Kind, Document: reversal, FiscalYear: entry.FiscalYear,
		CompanyCode: entry.CompanyCode, Reference: entry.Reference, PostedAt: now, Reverses: entry.Document})
}

// postingDateOf is the posting date of a posted document (zero if SAP holds
// none). Callers hold s.mu.
func (s *Server) postingDateOf(companyCode, fiscalYear, document string, kind Kind) time.Time {
	if kind == KindSupplierInvoice {
		for _, i := range s.books.invoices {
			if i.SupplierInvoice == document && i.FiscalYear == fiscalYear {
				return i.PostingDate
			}
		}
		return time.Time{}
	}
	for _, l := range s.books.lines {
		if l.CompanyCode == companyCode && l.FiscalYear == fiscalYear && l.AccountingDocument == document {
			return l.PostingDate
		}
	}
	return time.Time{}
}
