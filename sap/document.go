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
