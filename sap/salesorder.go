package sap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

const (
	salesOrderService = odataRoot + "API_SALES_ORDER_SRV/"
	salesOrderSet     = salesOrderService + "A_SalesOrder"

	opPostSalesOrder = "post sales order"
	opFindSalesOrder = "find sales order"
)

// SalesOrder is a sales order with its items, created by deep insert of
// A_SalesOrder with to_Item. SAP prices the items; the order carries no
// amounts.
type SalesOrder struct {
	// AssignmentReference is the posting's own reference (at most 18
	// characters), where FindSalesOrder looks. SAP does not de-duplicate
	// sales order creates: a second request creates a second order, so the
	// look-up is the only guard against one.
	AssignmentReference                                                          string
	SalesOrderType, SalesOrganization, DistributionChannel, OrganizationDivision string
	SoldToParty, PurchaseOrderByCustomer                                         string
	// RequestedDeliveryDate is a calendar date; zero lets SAP propose one.
	RequestedDeliveryDate time.Time
	Items                 []SalesOrderItem
}

// SalesOrderItem is one item: a material and its quantity in a unit.
type SalesOrderItem struct {
	Material              string
	RequestedQuantity     decimal.Decimal
	RequestedQuantityUnit string
}

// salesOrderBody is the deep-insert payload of A_SalesOrder.
type salesOrderBody struct {
	SalesOrderType          string     `json:"SalesOrderType"`
	SalesOrganization       string     `json:"SalesOrganization"`
	DistributionChannel     string     `json:"DistributionChannel"`
	OrganizationDivision    string     `json:"OrganizationDivision"`
	SoldToParty             string     `json:"SoldToParty"`
	PurchaseOrderByCustomer string     `json:"PurchaseOrderByCustomer,omitempty"`
	RequestedDeliveryDate   *odataDate `json:"RequestedDeliveryDate,omitempty"`
	AssignmentReference     string     `json:"AssignmentReference"`
	Items                   struct {
		Results []salesOrderItemBody `json:"results"`
	} `json:"to_Item"`
}

type salesOrderItemBody struct {
	SalesOrderItem        string       `json:"SalesOrderItem"`
	Material              string       `json:"Material"`
	RequestedQuantity     odataDecimal `json:"RequestedQuantity"`
	RequestedQuantityUnit string       `json:"RequestedQuantityUnit"`
}

// maxSalesOrderItems is how many items SalesOrderItem (6 digits, numbered
// in steps of 10) can number.
const maxSalesOrderItems = 99999

// PostSalesOrder creates the order in SAP and returns its number. Invalid
// input fails as Permanent before anything is sent. After an Unknown error,
// call FindSalesOrder before anything else: sending the order again would
// create a second one.
func (c *Client) PostSalesOrder(ctx context.Context, o SalesOrder) (Document, error) {
	if err := c.validateSalesOrder(o); err != nil {
		return Document{}, err
	}
	body, err := json.Marshal(salesOrderPayload(o))
	if err != nil {
		return Document{}, c.scrub(&Error{Category: Permanent, Op: opPostSalesOrder, Message: "cannot encode sales order", Err: err})
	}
	r, err := c.postOData(ctx, opPostSalesOrder, salesOrderService, salesOrderSet, nil, body)
	if err != nil {
		return Document{}, err
	}
	var saved struct {
		D struct{ SalesOrder string } `json:"d"`
	}
	if err := json.Unmarshal(r.body, &saved); err != nil || saved.D.SalesOrder == "" {
		// SAP said yes without saying to what: the order most likely
		// exists, and only the look-up may tell.
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opPostSalesOrder, HTTPStatus: r.status,
			Message: "SAP accepted the sales order but its answer has no order number", Err: err})
	}
	return Document{Number: saved.D.SalesOrder, Messages: parseSAPMessage(r.header)}, nil
}

func salesOrderPayload(o SalesOrder) salesOrderBody {
	b := salesOrderBody{
		SalesOrderType:          o.SalesOrderType,
		SalesOrganization:       o.SalesOrganization,
		DistributionChannel:     o.DistributionChannel,
		OrganizationDivision:    o.OrganizationDivision,
		SoldToParty:             o.SoldToParty,
		PurchaseOrderByCustomer: o.PurchaseOrderByCustomer,
		AssignmentReference:     o.AssignmentReference,
	}
	if !o.RequestedDeliveryDate.IsZero() {
		d := odataDate(o.RequestedDeliveryDate)
		b.RequestedDeliveryDate = &d
	}
	b.Items.Results = make([]salesOrderItemBody, len(o.Items))
	for i, it := range o.Items {
		b.Items.Results[i] = salesOrderItemBody{
			SalesOrderItem:        strconv.Itoa((i + 1) * 10), // SAP's own numbering: 10, 20, ...
			Material:              it.Material,
			RequestedQuantity:     odataDecimal(it.RequestedQuantity),
			RequestedQuantityUnit: it.RequestedQuantityUnit,
		}
	}
	return b
}

// validateSalesOrder checks what API_SALES_ORDER_SRV declares (lengths)
// and what an order needs (items with positive quantities).
func (c *Client) validateSalesOrder(o SalesOrder) error {
	v := validator{op: opPostSalesOrder}
	v.required("AssignmentReference", o.AssignmentReference, 18)
	v.required("SalesOrderType", o.SalesOrderType, 4)
	v.required("SalesOrganization", o.SalesOrganization, 4)
	v.required("DistributionChannel", o.DistributionChannel, 2)
	v.required("OrganizationDivision", o.OrganizationDivision, 2)
	v.required("SoldToParty", o.SoldToParty, 10)
	v.optional("PurchaseOrderByCustomer", o.PurchaseOrderByCustomer, 35)
	switch n := len(o.Items); {
	case n == 0:
		v.fail("at least one item is required")
	case n > maxSalesOrderItems:
		v.fail("at most " + strconv.Itoa(maxSalesOrderItems) + " items are allowed")
	}
	for i, it := range o.Items {
		p := "Items[" + strconv.Itoa(i) + "]."
		v.required(p+"Material", it.Material, 40)
		v.required(p+"RequestedQuantityUnit", it.RequestedQuantityUnit, 3)
		if !it.RequestedQuantity.IsPositive() {
			v.fail(p + "RequestedQuantity must be greater than zero")
		}
	}
	return v.err(c)
}

// FindSalesOrder looks for the order that carries reference in its
// AssignmentReference in the sales organisation. Only the posting that
// wrote the reference finds the order by it; the customer's reference
// (PurchaseOrderByCustomer) is anyone's to enter. Should SAP hold several
// (which only a broken guard leaves behind), the first created is the
// posting's. A sales order is never reported reversed: SAP has no reversal
// document for orders. Rejecting its items (SalesDocumentRjcnReason) is a
// change of the order that can be undone, item by item, and deleting it
// leaves nothing to find; the order sapq created remains the posting's
// document either way, and sending it again would be wrong in both cases.
// Match.Found is false when SAP answered and holds none; an error means SAP
// could not be read, and the caller must then not post.
func (c *Client) FindSalesOrder(ctx context.Context, salesOrganization, reference string) (Match, error) {
	v := validator{op: opFindSalesOrder}
	v.required("salesOrganization", salesOrganization, 4)
	v.required("reference", reference, 18)
	if err := v.err(c); err != nil {
		return Match{}, err
	}
	rows, err := c.query(ctx, opFindSalesOrder, salesOrderSet, url.Values{
		"$select": {"SalesOrder,SalesOrganization,AssignmentReference"},
		"$filter": {"SalesOrganization eq " + quote(salesOrganization) + " and AssignmentReference eq " + quote(reference)},
	})
	if err != nil {
		return Match{}, err
	}
	var found []string
	for _, raw := range rows {
		var row struct{ SalesOrder, SalesOrganization, AssignmentReference string }
		if err := json.Unmarshal(raw, &row); err != nil {
			return Match{}, c.unreadable(opFindSalesOrder, err)
		}
		if row.AssignmentReference != reference || row.SalesOrganization != salesOrganization {
			// SAP ignored the filter: nothing can be concluded.
			return Match{}, c.unreadable(opFindSalesOrder, fmt.Errorf("order %s does not match the filter", row.SalesOrder))
		}
		if row.SalesOrder == "" {
			return Match{}, c.noNumber(opFindSalesOrder)
		}
		found = append(found, row.SalesOrder)
	}
	if len(found) == 0 {
		return Match{}, nil
	}
	slices.SortFunc(found, compareNumbers)
	return Match{Found: true, Document: Document{Number: found[0]}}, nil
}

// compareNumbers orders SAP document numbers numerically (shorter is
// smaller; numbers come without leading zeros or all with them).
func compareNumbers(a, b string) int {
	a, b = alphaNumber(a), alphaNumber(b)
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// alphaNumber drops a document number's leading zeros, as SAP's ALPHA
// conversion compares numbers ("0000000012" is "12").
func alphaNumber(s string) string {
	i := 0
	for i < len(s)-1 && s[i] == '0' {
		i++
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return s
		}
	}
	return s[i:]
}

// salesOrderRequest maps a sales order posting to A_SalesOrder.
func salesOrderRequest(p *tasks.SalesOrder) (Request, error) {
	o := SalesOrder{
		SalesOrderType:          p.SalesOrderType,
		SalesOrganization:       p.SalesOrganization,
		DistributionChannel:     p.DistributionChannel,
		OrganizationDivision:    p.Division,
		SoldToParty:             p.SoldToParty,
		PurchaseOrderByCustomer: p.CustomerReference,
	}
	if p.RequestedDeliveryDate != "" {
		d, err := tasks.ParseDate(p.RequestedDeliveryDate)
		if err != nil {
			return nil, fmt.Errorf("requested_delivery_date: %w", err)
		}
		o.RequestedDeliveryDate = d
	}
	for i, it := range p.Items {
		q, err := tasks.ParseQuantity(it.Quantity)
		if err != nil {
			return nil, fmt.Errorf("items[%d].quantity: %w", i, err)
		}
		o.Items = append(o.Items, SalesOrderItem{Material: it.Material, RequestedQuantity: q, RequestedQuantityUnit: it.Unit})
	}
	return salesOrderCall{o}, nil
}

// salesOrderCall is the Request of a sales order: the reference goes into
// the order's AssignmentReference.
type salesOrderCall struct{ o SalesOrder }

func (salesOrderCall) Kind() tasks.Kind { return tasks.KindSalesOrder }

// CompanyCode is "": a sales order belongs to a sales organisation, and
// A_SalesOrder names no company code.
func (salesOrderCall) CompanyCode() string { return "" }

func (r salesOrderCall) post(ctx context.Context, c *Client, s Send) (Document, error) {
	o := r.o
	o.AssignmentReference = s.Reference
	return c.PostSalesOrder(ctx, o)
}

func (r salesOrderCall) find(ctx context.Context, c *Client, reference string) (Match, error) {
	return c.FindSalesOrder(ctx, r.o.SalesOrganization, reference)
}
