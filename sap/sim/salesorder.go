package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// KindSalesOrder is a sales order (API_SALES_ORDER_SRV).
const KindSalesOrder Kind = "sales_order"

var salesOrderSet = &entitySet{
	name:     "A_SalesOrder",
	typeName: "A_SalesOrderType",
	keys:     []string{"SalesOrder"},
	navs:     []string{"to_Item"},
	props: []string{"SalesOrder", "SalesOrderType", "SalesOrganization", "DistributionChannel", "OrganizationDivision",
		"SoldToParty", "CreationDate", "CreatedByUser", "LastChangeDateTime", "PurchaseOrderByCustomer", "SalesOrderDate",
		"TotalNetAmount", "TransactionCurrency", "SDDocumentReason", "RequestedDeliveryDate", "AssignmentReference",
		"OverallSDProcessStatus", "OverallTotalDeliveryStatus", "OverallSDDocumentRejectionSts"},
}

var salesOrderItemSet = &entitySet{
	name:     "A_SalesOrderItem",
	typeName: "A_SalesOrderItemType",
	keys:     []string{"SalesOrder", "SalesOrderItem"},
	props: []string{"SalesOrder", "SalesOrderItem", "SalesOrderItemCategory", "Material", "RequestedQuantity",
		"RequestedQuantityUnit", "TransactionCurrency", "NetAmount", "ProductionPlant", "SDProcessStatus",
		"OrderRelatedBillingStatus", "SalesDocumentRjcnReason"},
}

// SalesOrderServicePath is where API_SALES_ORDER_SRV is served.
const SalesOrderServicePath = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"

var salesOrderService = &odataService{
	name:        "API_SALES_ORDER_SRV",
	path:        SalesOrderServicePath,
	componentID: "SD-SLS",
	entitySets:  []*entitySet{salesOrderSet, salesOrderItemSet},
}

// salesOrder is a standard order as the simulator keeps it.
type salesOrder struct {
	SalesOrder, SalesOrderType                               string
	SalesOrganization, DistributionChannel, Division, SoldTo string
	PurchaseOrderByCustomer, AssignmentReference             string
	Currency                                                 string
	RequestedDeliveryDate, SalesOrderDate                    time.Time
	CreatedAt                                                time.Time
	Items                                                    []salesOrderItem
	// CompanyCode is the sales organisation's company code: where the
	// order's billing documents post.
	CompanyCode string
	// BilledBy is the billing document that bills the order ("" while it
	// is open for billing; a cancelled billing frees it again).
	BilledBy string
}

type salesOrderItem struct {
	Item, Material, Unit, Plant string
	Quantity, NetAmount         decimal.Decimal
}

// salesArea names the order's sales area as the master data keys it.
func (o *salesOrder) salesArea() string {
	return o.SalesOrganization + "/" + o.DistributionChannel + "/" + o.Division
}

func (o *salesOrder) total() decimal.Decimal {
	sum := decimal.Zero
	for _, it := range o.Items {
		sum = sum.Add(it.NetAmount)
	}
	return sum
}

func (o *salesOrder) properties() object {
	// Order-related billing bills the whole order: it is open (A) until
	// billed, then completed (C).
	status := "A"
	if o.BilledBy != "" {
		status = "C"
	}
	return object{
		{"SalesOrder", o.SalesOrder},
		{"SalesOrderType", o.SalesOrderType},
		{"SalesOrganization", o.SalesOrganization},
		{"DistributionChannel", o.DistributionChannel},
		{"OrganizationDivision", o.Division},
		{"SoldToParty", o.SoldTo},
		{"CreationDate", formatEdmDate(dateOnly(o.CreatedAt))},
		{"CreatedByUser", ""},
		{"LastChangeDateTime", formatEdmDateTimeOffset(o.CreatedAt)},
		{"PurchaseOrderByCustomer", o.PurchaseOrderByCustomer},
		{"SalesOrderDate", formatEdmDate(o.SalesOrderDate)},
		{"TotalNetAmount", formatAmount(o.total())},
		{"TransactionCurrency", o.Currency},
		{"SDDocumentReason", ""},
		{"RequestedDeliveryDate", formatEdmDate(o.RequestedDeliveryDate)},
		{"AssignmentReference", o.AssignmentReference},
		{"OverallSDProcessStatus", status},
		{"OverallTotalDeliveryStatus", ""},
		{"OverallSDDocumentRejectionSts", "A"}, // nothing rejected
	}
}

func (o *salesOrder) itemProperties(it salesOrderItem) object {
	billing := "A"
	if o.BilledBy != "" {
		billing = "C"
	}
	return object{
		{"SalesOrder", o.SalesOrder},
		{"SalesOrderItem", it.Item},
		{"SalesOrderItemCategory", "TAN"},
		{"Material", it.Material},
		{"RequestedQuantity", it.Quantity.String()},
		{"RequestedQuantityUnit", it.Unit},
		{"TransactionCurrency", o.Currency},
		{"NetAmount", formatAmount(it.NetAmount)},
		{"ProductionPlant", it.Plant},
		{"SDProcessStatus", billing},
		{"OrderRelatedBillingStatus", billing},
		{"SalesDocumentRjcnReason", ""},
	}
}

func (o *salesOrder) entity(r *http.Request, svc *odataService, expand bool) object {
	props := o.properties()
	if expand {
		items := make([]object, len(o.Items))
		for i, it := range o.Items {
			items[i] = withMetadata(r, svc, salesOrderItemSet, o.itemProperties(it))
		}
		return append(props, field{"to_Item", object{{"results", items}}})
	}
	uri := serviceURL(r, svc) + salesOrderSet.name + salesOrderSet.keyPredicate(props)
	return append(props, field{"to_Item", deferred(uri, "to_Item")})
}

// salesBooks are the simulator's sales and billing documents. Guarded by
// Server.mu.
type salesBooks struct {
	orders       []*salesOrder
	orderByNo    map[string]*salesOrder   // by number, leading zeros dropped
	ordersByAsgn map[string][]*salesOrder // by AssignmentReference
	billing      []*billingDocument
	billingByNo  map[string]*billingDocument
	// billingByRef lists the billing documents whose items refer to a
	// sales document (leading zeros dropped), cancellations included.
	billingByRef map[string][]*billingDocument
}

func newSalesBooks() salesBooks {
	return salesBooks{
		orderByNo:    map[string]*salesOrder{},
		ordersByAsgn: map[string][]*salesOrder{},
		billingByNo:  map[string]*billingDocument{},
		billingByRef: map[string][]*billingDocument{},
	}
}

// Number range intervals of sales documents, as in a best-practice system.
const (
	firstSalesOrder      = 1
	firstBillingDocument = 90000000
	firstBillingFIDoc    = 9400000001
)

func init() {
	salesOrderSet.kind = KindSalesOrder
	salesOrderSet.create = (*Server).createSalesOrder
	salesOrderSet.rows = func(s *Server, r *http.Request, svc *odataService, qo queryOptions) []object {
		orders := s.books.sales.orders
		if ref, ok := qo.equals("AssignmentReference"); ok {
			orders = s.books.sales.ordersByAsgn[ref]
		} else if no, ok := qo.equals("SalesOrder"); ok {
			orders = nil
			if o := s.books.sales.orderByNo[alpha(no)]; o != nil {
				orders = []*salesOrder{o}
			}
		}
		out := make([]object, len(orders))
		for i, o := range orders {
			out[i] = o.entity(r, svc, qo.expand["to_Item"])
		}
		return out
	}
	salesOrderItemSet.rows = func(s *Server, _ *http.Request, _ *odataService, qo queryOptions) []object {
		orders := s.books.sales.orders
		if no, ok := qo.equals("SalesOrder"); ok {
			orders = nil
			if o := s.books.sales.orderByNo[alpha(no)]; o != nil {
				orders = []*salesOrder{o}
			}
		}
		var out []object
		for _, o := range orders {
			for _, it := range o.Items {
				out = append(out, o.itemProperties(it))
			}
		}
		return out
	}
}

// --- request payload -----------------------------------------------------------------

type salesOrderPayload struct {
	SalesOrderType          string                            `json:"SalesOrderType"`
	SalesOrganization       string                            `json:"SalesOrganization"`
	DistributionChannel     string                            `json:"DistributionChannel"`
	OrganizationDivision    string                            `json:"OrganizationDivision"`
	SoldToParty             string                            `json:"SoldToParty"`
	PurchaseOrderByCustomer string                            `json:"PurchaseOrderByCustomer"`
	SalesOrderDate          edmDate                           `json:"SalesOrderDate"`
	RequestedDeliveryDate   edmDate                           `json:"RequestedDeliveryDate"`
	TransactionCurrency     string                            `json:"TransactionCurrency"`
	AssignmentReference     string                            `json:"AssignmentReference"`
	Items                   strictResults[salesOrderItemJSON] `json:"to_Item"`
}

type salesOrderItemJSON struct {
	SalesOrderItem        string     `json:"SalesOrderItem"`
	Material              string     `json:"Material"`
	RequestedQuantity     edmDecimal `json:"RequestedQuantity"`
	RequestedQuantityUnit string     `json:"RequestedQuantityUnit"`
	SalesOrderItemText    string     `json:"SalesOrderItemText"`
}

// strictResults is a to-many navigation property of a deep insert whose
// entities are decoded strictly: SAP Gateway refuses a property the entity
// type does not have, so a client misspelling one learns it here.
type strictResults[T any] []T

func (n *strictResults[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		var wrapped struct {
			Results json.RawMessage `json:"results"`
		}
		if err := strictUnmarshal(b, &wrapped); err != nil {
			return err
		}
		b = wrapped.Results
	}
	return strictUnmarshal(b, (*[]T)(n))
}

func (p *salesOrderPayload) checkLengths() error {
	lims := []struct {
		name, v string
		max     int
	}{
		{"SalesOrderType", p.SalesOrderType, 4}, {"SalesOrganization", p.SalesOrganization, 4},
		{"DistributionChannel", p.DistributionChannel, 2}, {"OrganizationDivision", p.OrganizationDivision, 2},
		{"SoldToParty", p.SoldToParty, 10}, {"PurchaseOrderByCustomer", p.PurchaseOrderByCustomer, 35},
		{"TransactionCurrency", p.TransactionCurrency, 5}, {"AssignmentReference", p.AssignmentReference, 18},
	}
	for _, it := range p.Items {
		lims = append(lims, []struct {
			name, v string
			max     int
		}{
			{"SalesOrderItem", it.SalesOrderItem, 6}, {"Material", it.Material, 40},
			{"RequestedQuantityUnit", it.RequestedQuantityUnit, 3}, {"SalesOrderItemText", it.SalesOrderItemText, 40},
		}...)
	}
	for _, l := range lims {
		if n := len([]rune(l.v)); n > l.max {
			return fmt.Errorf("value of property '%s' is too long (%d characters, maximum %d)", l.name, n, l.max)
		}
	}
	return nil
}

// --- create --------------------------------------------------------------------------

// createSalesOrder deserializes, validates and saves a deep insert. As in
// SAP, nothing de-duplicates it: the same request sent twice creates two
// orders, which is why a client must look an order up by its own reference
// before it sends one again.
func (s *Server) createSalesOrder(w http.ResponseWriter, r *http.Request, body []byte) {
	svc := salesOrderService
	var p salesOrderPayload
	if !s.readDeepInsert(w, r, svc, body, &p) {
		return
	}

	s.mu.Lock()
	o, msgs := s.validateSalesOrder(&p)
	if len(msgs) == 0 {
		s.saveSalesOrder(o, true)
	} else {
		s.stats.Rejected[KindSalesOrder]++
	}
	s.mu.Unlock()

	if len(msgs) > 0 {
		s.log.Info("sim: sales order rejected", "code", msgs[0].Code, "message", msgs[0].Text, "reference", p.AssignmentReference)
		s.writeODataError(w, http.StatusBadRequest, svc, msgs...)
		return
	}
	s.log.Info("sim: sales order saved", "document", o.SalesOrder, "sales_area", o.salesArea(), "reference", o.AssignmentReference)

	saved := msgSalesOrderSaved(o.SalesOrder)
	hdr, _ := json.Marshal(object{{"code", saved.Code}, {"message", saved.Text}, {"severity", "success"}, {"target", ""}, {"details", []any{}}})
	w.Header().Set("Location", serviceURL(r, svc)+salesOrderSet.name+salesOrderSet.keyPredicate(o.properties()))
	w.Header().Set("sap-message", string(hdr))
	writeJSON(w, http.StatusCreated, object{{"d", withMetadata(r, svc, salesOrderSet, o.entity(r, svc, true))}})
}

// validateSalesOrder runs SAP's checks and, when they pass, returns the
// priced order ready to save (without a number). Callers hold s.mu.
func (s *Server) validateSalesOrder(p *salesOrderPayload) (*salesOrder, []sapMessage) {
	var msgs []sapMessage
	for _, req := range []struct {
		name string
		ok   bool
	}{
		{"SalesOrderType", p.SalesOrderType != ""}, {"SalesOrganization", p.SalesOrganization != ""},
		{"DistributionChannel", p.DistributionChannel != ""}, {"OrganizationDivision", p.OrganizationDivision != ""},
		{"SoldToParty", p.SoldToParty != ""}, {"to_Item", len(p.Items) > 0},
	} {
		if !req.ok {
			msgs = append(msgs, msgRequired(req.name))
		}
	}
	if len(msgs) > 0 {
		return nil, msgs
	}
	area := p.SalesOrganization + "/" + p.DistributionChannel + "/" + p.OrganizationDivision
	sa, ok := s.md.SalesAreas[area]
	if !ok {
		return nil, []sapMessage{msgSalesAreaUnknown(p.SalesOrganization, p.DistributionChannel, p.OrganizationDivision)}
	}
	types := sa.OrderTypes
	if types == nil {
		types = []string{"OR"}
	}
	if !slices.Contains(types, p.SalesOrderType) {
		msgs = append(msgs, msgOrderTypeNotAllowed(p.SalesOrderType, p.SalesOrganization, p.DistributionChannel, p.OrganizationDivision))
	}
	if !containsAlpha(s.md.SalesCustomers[area], p.SoldToParty) {
		msgs = append(msgs, msgSoldToNotInSalesArea(p.SoldToParty, p.SalesOrganization, p.DistributionChannel, p.OrganizationDivision))
	}
	if p.TransactionCurrency != "" && p.TransactionCurrency != sa.Currency {
		msgs = append(msgs, msgOrderCurrency(p.TransactionCurrency, sa.Currency))
	}
	now := s.opts.Now()
	o := &salesOrder{
		SalesOrderType: p.SalesOrderType, SalesOrganization: p.SalesOrganization,
		DistributionChannel: p.DistributionChannel, Division: p.OrganizationDivision,
		SoldTo: p.SoldToParty, PurchaseOrderByCustomer: p.PurchaseOrderByCustomer,
		AssignmentReference: p.AssignmentReference, Currency: sa.Currency,
		SalesOrderDate: cmp.Or(p.SalesOrderDate.t, dateOnly(now)), CreatedAt: now,
		// SAP proposes the delivery date from the shipping schedule; the
		// simulator proposes today.
		RequestedDeliveryDate: cmp.Or(p.RequestedDeliveryDate.t, dateOnly(now)),
		CompanyCode:           sa.CompanyCode,
	}
	for i, it := range p.Items {
		item := salesOrderItem{
			Item:     cmp.Or(it.SalesOrderItem, fmt.Sprint((i+1)*10)),
			Material: strings.ToUpper(it.Material), Quantity: it.RequestedQuantity.d, Unit: it.RequestedQuantityUnit,
		}
		mat, known := s.md.Materials[item.Material]
		plant := ""
		if known {
			plant = s.deliveringPlant(mat, sa.CompanyCode)
		}
		switch {
		case item.Material == "":
			msgs = append(msgs, msgRequired("Material"))
			continue
		case !known || plant == "":
			msgs = append(msgs, msgMaterialNotInSalesArea(item.Material, p.SalesOrganization, p.DistributionChannel))
			continue
		case !it.RequestedQuantity.set || !item.Quantity.IsPositive():
			msgs = append(msgs, msgQuantityMissing(item.Item))
			continue
		case item.Unit != "" && item.Unit != mat.BaseUnit:
			msgs = append(msgs, msgUnitNotDefined(item.Unit, item.Material))
			continue
		}
		price, err := decimal.NewFromString(mat.Price)
		if err != nil {
			panic(fmt.Sprintf("sim: master data: price of %s: %v", item.Material, err))
		}
		item.Unit, item.Plant = mat.BaseUnit, plant
		item.NetAmount = item.Quantity.Mul(price).Round(2)
		o.Items = append(o.Items, item)
	}
	return o, msgs
}

// deliveringPlant is the first of the material's plants in the company
// code, "" if none: a sales organisation delivers from plants of its own
// company code.
func (s *Server) deliveringPlant(m Material, companyCode string) string {
	for _, p := range m.Plants {
		if s.md.Plants[p].CompanyCode == companyCode {
			return p
		}
	}
	return ""
}

// saveSalesOrder numbers the order and books it; recorded says whether it
// goes into the ledger (orders seeded at start do not: they are the
// system's history, not postings of the run). Callers hold s.mu.
func (s *Server) saveSalesOrder(o *salesOrder, recorded bool) {
	// Gateway renders VBELN through its ALPHA conversion: no leading zeros.
	o.SalesOrder = alpha(s.books.nextNumber("VBAK", firstSalesOrder))
	b := &s.books.sales
	b.orders = append(b.orders, o)
	b.orderByNo[o.SalesOrder] = o
	if o.AssignmentReference != "" {
		b.ordersByAsgn[o.AssignmentReference] = append(b.ordersByAsgn[o.AssignmentReference], o)
	}
	if !recorded {
		return
	}
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindSalesOrder, Document: o.SalesOrder, Reference: o.AssignmentReference, PostedAt: o.CreatedAt,
	})
	s.stats.Posted[KindSalesOrder]++
}

// seedSalesOrders saves n open standard orders, as a system holds orders
// waiting to be billed: customer 10100001 in sales area 1010/10/00, one
// piece of TG11 each. They are numbered 1 to n and are not in the ledger.
func (s *Server) seedSalesOrders(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for range n {
		s.saveSalesOrder(&salesOrder{
			SalesOrderType: "OR", SalesOrganization: "1010", DistributionChannel: "10", Division: "00",
			SoldTo: "10100001", PurchaseOrderByCustomer: "OPEN ORDER", Currency: "EUR", CompanyCode: "1010",
			SalesOrderDate: dateOnly(now), RequestedDeliveryDate: dateOnly(now), CreatedAt: now,
			Items: []salesOrderItem{{Item: "10", Material: "TG11", Unit: "PC", Plant: "1010",
				Quantity: decimal.NewFromInt(1), NetAmount: decimal.RequireFromString("25.00")}},
		}, false)
	}
}
