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
		"DocumentItemText", "AccountingDocCreatedByUser", "CreationDateTime", "Customer", "Supplier",
		"IsReversal", "IsReversed", "ReversalReferenceDocument"},
}

// GLAccountLineItemPath is where API_GLACCOUNTLINEITEM is served.
const GLAccountLineItemPath = "/sap/opu/odata/sap/API_GLACCOUNTLINEITEM"

var glAccountLineItemService = &odataService{
	name:        "API_GLACCOUNTLINEITEM",
	path:        GLAccountLineItemPath,
	componentID: "FI-GL-IS",
	entitySets:  []*entitySet{glAccountLineItemSet},
}

func init() {
	glAccountLineItemSet.rows = func(s *Server, _ *http.Request, _ *odataService, qo queryOptions) []object {
		lines := s.books.lines
		if ref, ok := qo.equals("AssignmentReference"); ok {
			lines = s.books.linesByAssignment[ref]
		}
		out := make([]object, len(lines))
		for i, l := range lines {
			out[i] = l.properties()
		}
		return out
	}
}
