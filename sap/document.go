package sap

// Document identifies a document SAP created (or that a look-up found).
type Document struct {
	Number, FiscalYear, CompanyCode string
	// Messages are SAP's informational and warning messages about the
	// posting (sap-message header, SOAP log); empty for look-ups.
	Messages []Message
}

// Message is one SAP message: Code is the T100 class/number ("F5/201"),
// Severity one of "error", "warning", "info", "success".
type Message struct {
	Code, Text, Severity string
}

// Match is what a look-up by a posting's reference found in SAP.
type Match struct {
	// Found is true when SAP holds a document carrying the reference.
	Found    bool
	Document Document
	// ReversedBy is the document that reversed it, when SAP reversed it
	// (by its number; "" when not reversed). A reversed document is not
	// adopted: the posting it stood for is undone in SAP's books.
	ReversedBy string
	// Unproven is set when nothing SAP holds ties the document found to
	// the posting (a supplier invoice's reversal carries no reference):
	// it is the posting's only if a call of the posting may have made it.
	Unproven bool
	// TakenBy names the document that SAP holds in the posting's place and
	// that is provably not the posting's: a reversal's original reversed
	// by another. Found is false then, and the posting cannot be made.
	// TakenByUser is the SAP user who created it, when SAP says.
	TakenBy, TakenByUser string
}

// Reversed reports whether the document found was reversed.
func (m Match) Reversed() bool { return m.Found && m.ReversedBy != "" }
