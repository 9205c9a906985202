package sim

import "fmt"

// The messages of sales documents (class V1) and billing (class VF). The
// classes are SAP's and the texts follow SAP's short texts; V1/311 ("...
// has been saved") is SAP's own number, the other numbers are as best known
// without SAP's message table at hand (T100), which is why sapq classifies
// the billing duplicate by its text as well as by its code.

func msgSalesOrderSaved(document string) sapMessage {
	return sapMessage{Code: "V1/311", Text: fmt.Sprintf("Standard Order %s has been saved", document)}
}

func msgSalesAreaUnknown(org, channel, division string) sapMessage {
	return sapMessage{Code: "V1/316", Text: fmt.Sprintf("Sales area %s %s %s is not defined", org, channel, division), Target: "SalesOrganization"}
}

func msgOrderTypeNotAllowed(orderType, org, channel, division string) sapMessage {
	return sapMessage{Code: "V1/212", Text: fmt.Sprintf("Sales document type %s is not allowed in sales area %s %s %s", orderType, org, channel, division), Target: "SalesOrderType"}
}

func msgSoldToNotInSalesArea(customer, org, channel, division string) sapMessage {
	return sapMessage{Code: "V1/390", Text: fmt.Sprintf("Sold-to party %s not maintained for sales area %s %s %s", customer, org, channel, division), Target: "SoldToParty"}
}

func msgMaterialNotInSalesArea(material, org, channel string) sapMessage {
	return sapMessage{Code: "V1/188", Text: fmt.Sprintf("Material %s is not defined for sales org.%s, distr.chan.%s, language EN", material, org, channel), Target: "Material"}
}

func msgQuantityMissing(item string) sapMessage {
	return sapMessage{Code: "V1/349", Text: fmt.Sprintf("Item %s: enter an order quantity greater than zero", item), Target: "RequestedQuantity"}
}

func msgUnitNotDefined(unit, material string) sapMessage {
	return sapMessage{Code: "V1/102", Text: fmt.Sprintf("Unit %s is not defined for material %s", unit, material), Target: "RequestedQuantityUnit"}
}

// msgOrderCurrency refuses a document currency other than the sales area's:
// the simulator keeps no exchange rates to price in another one.
func msgOrderCurrency(currency, areaCurrency string) sapMessage {
	return sapMessage{Code: "V1/534", Text: fmt.Sprintf("Document currency %s cannot be priced: the sales area prices in %s", currency, areaCurrency), Target: "TransactionCurrency"}
}

func msgBillingSaved(document string) sapMessage {
	return sapMessage{Code: "V1/311", Text: fmt.Sprintf("Invoice %s has been saved", document)}
}

func msgSDDocumentUnknown(document string) sapMessage {
	return sapMessage{Code: "VF/010", Text: fmt.Sprintf("Document %s does not exist", document), Target: "SDDocument"}
}

// msgAlreadyBilled is SAP's refusal to bill an order a second time.
func msgAlreadyBilled(document, billedBy string) sapMessage {
	return sapMessage{Code: "VF/016", Text: fmt.Sprintf("Document %s has already been billed (billing document %s)", document, billedBy), Target: "SDDocument"}
}

func msgBillingTypeUnknown(billingType string) sapMessage {
	return sapMessage{Code: "VF/051", Text: fmt.Sprintf("Billing type %s is not defined", billingType), Target: "DefaultBillingDocumentType"}
}

func msgAlreadyCancelled(document string) sapMessage {
	return sapMessage{Code: "VF/009", Text: fmt.Sprintf("Billing document %s has already been cancelled", document)}
}

func msgCancellationSaved(document string) sapMessage {
	return sapMessage{Code: "V1/311", Text: fmt.Sprintf("Cancel. Invoice %s has been saved", document)}
}
