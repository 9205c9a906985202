package sim

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// The T100 messages the simulator raises. Codes and texts are SAP's own (message
// class/number, English short text with the placeholders filled in) so that a client's
// classification of transient versus permanent errors can be tested against them.

func msgCompanyCodeUnknown(cc string) sapMessage {
	return sapMessage{Code: "F5/165", Text: fmt.Sprintf("Company code %s does not exist", cc), Target: "CompanyCode"}
}

func msgPeriodClosed(postingDate time.Time) sapMessage {
	return sapMessage{Code: "F5/201", Text: fmt.Sprintf("Posting period %03d %d is not open", int(postingDate.Month()), postingDate.Year()), Target: "PostingDate"}
}

func msgVendorUnknown(supplier, cc string) sapMessage {
	return sapMessage{Code: "F5/104", Text: fmt.Sprintf("Vendor %s is not defined in company code %s", supplier, cc), Target: "InvoicingParty"}
}

func msgCustomerUnknown(customer, cc string) sapMessage {
	return sapMessage{Code: "F5/102", Text: fmt.Sprintf("Customer %s is not defined in company code %s", customer, cc), Target: "Debtor"}
}

func msgGLAccountUnknown(account, chart string) sapMessage {
	return sapMessage{Code: "F5/507", Text: fmt.Sprintf("G/L account %s is not defined in chart of accounts %s", account, chart), Target: "GLAccount"}
}

func msgCostCenterUnknown(area, costCenter string, on time.Time) sapMessage {
	return sapMessage{Code: "KI/248", Text: fmt.Sprintf("Cost center %s/%s does not exist on %s", area, costCenter, on.Format("02.01.2006")), Target: "CostCenter"}
}

func msgBalance(balance decimal.Decimal, currency string) sapMessage {
	return sapMessage{Code: "F5/702", Text: fmt.Sprintf("Balance in transaction currency %s %s", formatAmount(balance), currency)}
}

// msgDebitCredit reports a line whose debit/credit code contradicts its amount's
// sign. SAP derives the posting key from the sign, so the contradiction surfaces as
// a balance error; the text says which item.
func msgDebitCredit(item, code string, amount decimal.Decimal) sapMessage {
	return sapMessage{Code: "F5/702", Text: fmt.Sprintf("Balance in transaction currency: item %s has debit/credit code %s but amount %s", item, code, formatAmount(amount)), Target: "DebitCreditCode"}
}

func msgDuplicateInvoice(document, fiscalYear string) sapMessage {
	return sapMessage{Code: "M8/108", Text: fmt.Sprintf("Check if invoice already entered under accounting document %s %s", document, fiscalYear), Target: "SupplierInvoiceIDByInvcgParty"}
}

func msgRequired(fieldName string) sapMessage {
	return sapMessage{Code: "00/055", Text: fmt.Sprintf("Fill in all required entry fields (%s)", fieldName), Target: fieldName}
}

func msgCurrencyUnknown(currency string) sapMessage {
	return sapMessage{Code: "SG/105", Text: fmt.Sprintf("Currency %s is not defined", currency), Target: "DocumentCurrency"}
}

// lockedBy is the user the lock fault pretends holds the lock.
const lockedBy = "BATCH_01"

func msgLocked() sapMessage {
	return sapMessage{Code: "MC/601", Text: "Object requested is currently locked by user " + lockedBy}
}

func msgInvoiceCreated(document string) sapMessage {
	return sapMessage{Code: "M8/060", Text: fmt.Sprintf("Document no. %s created", document)}
}

func msgJournalEntryPosted(document, cc, fiscalYear, logicalSystem string) sapMessage {
	return sapMessage{Code: "RW/605", Text: fmt.Sprintf("Document posted successfully: BKPFF %s %s %s %s", document, cc, fiscalYear, logicalSystem)}
}

func msgJournalEntryError(logicalSystem string) sapMessage {
	return sapMessage{Code: "RW/609", Text: "Error in document: BKPFF $ " + logicalSystem}
}

// msgJournalEntryChecked answers a test run (TestDataIndicator) that found
// no error, as the accounting interface's document check does.
func msgJournalEntryChecked() sapMessage {
	return sapMessage{Code: "RW/614", Text: "Document check without errors"}
}

func msgRuntimeError() sapMessage {
	return sapMessage{Code: "/IWBEP/CM_MGW_RT/004", Text: "Runtime error: the service could not complete the request"}
}
