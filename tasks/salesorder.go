package tasks

import (
	"fmt"
)

// KindSalesOrder is a customer's order: items of materials, priced by SAP.
const KindSalesOrder Kind = "sales_order"

var salesOrderSpec = Spec{
	Kind:        KindSalesOrder,
	Tool:        "submit_sales_order",
	Title:       "Submit sales order",
	Summary:     "a sales order of materials for a customer",
	Description: `Submit a sales order for creation in SAP: a customer (sold_to_party) orders materials in a sales area (sales_organization, distribution_channel, division). SAP prices the items from its condition records; sapq sends no prices and does not know the order's value. The answer's document is the sales order number, which submit_billing_document bills.`,
	SAP:         "OData V2 API_SALES_ORDER_SRV, A_SalesOrder (deep insert of to_Item)",
	Reference:   "A_SalesOrder.AssignmentReference",
	New:         func() Posting { return new(SalesOrder) },
}

// SalesOrder is a sales order. It maps to A_SalesOrder in
// API_SALES_ORDER_SRV with items in to_Item. Lengths are the service's
// (SalesOrderType 4, SalesOrganization 4, DistributionChannel 2,
// OrganizationDivision 2, SoldToParty 10, PurchaseOrderByCustomer 35,
// Material 40).
type SalesOrder struct {
	Key                   string           `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this business document (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	SalesOrderType        string           `json:"sales_order_type" sapq:"code,4" sap:"SalesOrderType" jsonschema:"SAP sales document type (up to 4 characters), for example OR (standard order)"`
	SalesOrganization     string           `json:"sales_organization" sapq:"code,4" sap:"SalesOrganization" jsonschema:"SAP sales organization (up to 4 characters), for example 1010"`
	DistributionChannel   string           `json:"distribution_channel" sapq:"code,2" sap:"DistributionChannel" jsonschema:"SAP distribution channel (2 characters), for example 10"`
	Division              string           `json:"division" sapq:"code,2" sap:"OrganizationDivision" jsonschema:"SAP division (2 characters), for example 00"`
	SoldToParty           string           `json:"sold_to_party" sapq:"code,10" sap:"SoldToParty" jsonschema:"SAP customer number of the sold-to party (up to 10 characters), for example 10100001"`
	CustomerReference     string           `json:"customer_reference" sapq:"text,35" sap:"PurchaseOrderByCustomer" jsonschema:"The customer's own reference for the order, usually their purchase order number (up to 35 characters)"`
	RequestedDeliveryDate string           `json:"requested_delivery_date,omitempty" sapq:"date" sap:"RequestedDeliveryDate" jsonschema:"Optional requested delivery date as YYYY-MM-DD; SAP proposes one when omitted"`
	Items                 []SalesOrderItem `json:"items" sapq:"list,1,999" sap:"to_Item" jsonschema:"1 to 999 items"`
	Destination           string           `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system to post to, by its configured name; omit it to let sapq choose (orders carry no company code: the default destination)"`
}

// SalesOrderItem is one item of a sales order: a material and its
// quantity. SAP numbers the items 10, 20, ... and prices them.
type SalesOrderItem struct {
	Material string `json:"material" sapq:"code,40" sap:"Material" jsonschema:"SAP material number (up to 40 characters), for example TG11"`
	Quantity string `json:"quantity" sapq:"quantity" sap:"RequestedQuantity" jsonschema:"Ordered quantity as a decimal string with the unit's decimals, for example 10"`
	Unit     string `json:"unit" sapq:"unit" sap:"RequestedQuantityUnit" jsonschema:"Unit of measure of the quantity, for example PC"`
}

func (*SalesOrder) Kind() Kind               { return KindSalesOrder }
func (s *SalesOrder) IdempotencyKey() string { return s.Key }

// Validate checks every field. A sales order has no rules across fields:
// the same material may be ordered on several items, and whether the
// customer, the materials and the order type belong to the sales area is
// SAP's master data, which only SAP can judge.
func (s *SalesOrder) Validate() error {
	var c checker
	c.checkFields(s)
	return c.err()
}

// Facts: the sales organisation. A sales order moves no amount: it posts
// nothing to the books (revenue arises with the billing document), and its
// value is SAP's pricing of the items from condition records that sapq
// neither sends nor knows, so amount limits cannot judge it. SAP locks no
// shared object while it creates an order (only the new order itself; an
// availability check set to lock does so per material and plant, and the
// plant is SAP's choice), so the order names none.
func (s *SalesOrder) Facts() Facts {
	return Facts{Units: []OrgUnit{{UnitSalesOrganization, "sales_organization", s.SalesOrganization}}, Destination: s.Destination}
}

func (s *SalesOrder) String() string {
	return fmt.Sprintf("sales order %s %s/%s/%s for %s, %d items", s.SalesOrderType, s.SalesOrganization, s.DistributionChannel, s.Division, s.SoldToParty, len(s.Items))
}
