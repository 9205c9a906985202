package sim

import "net/http"

// glAccountLineItemSet is the read-only entity set of API_GLACCOUNTLINEITEM: one row
// per posted line item. Clients use it to find a journal entry by company code and
// AssignmentReference after an ambiguous outcome.
var glAccountLineItemSet = &entitySet{
	name:     "GLAccountLineItem",
	typeName: "GLAccountLineItemType",
	keys:     []string{"ID"},
	props: []string{"ID", "SourceLedger", "CompanyCode", "FiscalYear", "AccountingDocument", "LedgerGLLineItem",
		"Ledger", "ChartOfAccounts", "GLAccount", "BusinessTransactionType", "ReferenceDocumentType",
		"ReferenceDocument", "CostCenter", "TransactionCurrency", "AmountInTransactionCurrency",
		"CompanyCodeCurrency", "AmountInCompanyCodeCurrency", "DebitCreditCode", "FiscalPeriod", "PostingDate",
		"DocumentDate", "AccountingDocumentType", "AccountingDocumentItem", "AssignmentReference",
		"DocumentItemText", "AccountingDocCreatedByUser", "CreationDateTime", "Supplier",
		"IsReversal", "IsReversed", "ReversalReferenceDocument"},
}

func (s *Server) serveGLAccountLineItems(w http.ResponseWriter, r *http.Request, pred string) {
	svc := s.glLineItemSvc
	rows := func(queryOptions) []object {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make([]object, len(s.books.lines))
		for i, l := range s.books.lines {
			out[i] = l.properties()
		}
		return out
	}
	s.serveReadOnly(w, r, svc, glAccountLineItemSet, pred, rows)
}
