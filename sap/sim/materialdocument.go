package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Goods movements: SAP posts them as material documents through
// API_MATERIAL_DOCUMENT_SRV (deep insert of A_MaterialDocumentHeader with
// to_MaterialDocumentItem), shows them through A_MaterialDocumentHeader and
// A_MaterialDocumentItem, and cancels one with the function import Cancel,
// which posts a cancellation document with the reversing movement types.
//
// The simulator keeps unrestricted stock per material, plant and storage
// location (MasterData.Stock at start) and, as SAP, refuses a movement that
// would take it below zero with M7/021 ("Deficit of SL Unrestricted-use"),
// a cancellation included. It knows the movement types below, each under
// the goods movement codes SAP allows for it; quantities are in the
// material's base unit (no unit conversion), batches are recorded but not
// managed, and purchase orders are taken as given (the simulator keeps
// none). A movement into or out of a storage location managed by a
// warehouse (Plant.WarehouseStorageLocations) is posted, but its 201 answer
// carries no material document number, only the informational sap-message
// L9/514 of the delivery SAP created for the warehouse, as SAP answers
// when the warehouse is to confirm the movement: a client must not take it
// for a document, and must not take it for a failure either.
//
// The T100 codes are class M7's (inventory management). M7/021 and M7/053
// are SAP's own numbers; the others are as best known without SAP's message
// table at hand, which is why a client must classify what it does not know
// as a permanent refusal of the data (HTTP 400), as sapq does.

// KindGoodsMovement is a material document (API_MATERIAL_DOCUMENT_SRV).
const KindGoodsMovement Kind = "goods_movement"

// MaterialDocumentServicePath is where API_MATERIAL_DOCUMENT_SRV is served.
const MaterialDocumentServicePath = "/sap/opu/odata/sap/API_MATERIAL_DOCUMENT_SRV"

var materialDocumentHeaderSet = &entitySet{
	name:     "A_MaterialDocumentHeader",
	typeName: "A_MaterialDocumentHeaderType",
	keys:     []string{"MaterialDocumentYear", "MaterialDocument"},
	navs:     []string{"to_MaterialDocumentItem"},
	props: []string{"MaterialDocumentYear", "MaterialDocument", "InventoryTransactionType", "DocumentDate", "PostingDate",
		"CreationDate", "CreationTime", "CreatedByUser", "MaterialDocumentHeaderText", "ReferenceDocument",
		"VersionForPrintingSlip", "ManualPrintIsTriggered", "CtrlPostgForExtWhseMgmtSyst", "GoodsMovementCode"},
}

var materialDocumentItemSet = &entitySet{
	name:     "A_MaterialDocumentItem",
	typeName: "A_MaterialDocumentItemType",
	keys:     []string{"MaterialDocumentYear", "MaterialDocument", "MaterialDocumentItem"},
	navs:     []string{"to_MaterialDocumentHeader"},
	props: []string{"MaterialDocumentYear", "MaterialDocument", "MaterialDocumentItem", "Material", "Plant", "StorageLocation",
		"Batch", "GoodsMovementType", "InventoryStockType", "PurchaseOrder", "PurchaseOrderItem", "GoodsMovementRefDocType",
		"CostCenter", "ControllingArea", "MaterialBaseUnit", "QuantityInBaseUnit", "EntryUnit", "QuantityInEntryUnit",
		"FiscalYear", "MaterialDocumentItemText", "GoodsMovementIsCancelled", "ReversedMaterialDocumentYear",
		"ReversedMaterialDocument", "ReversedMaterialDocumentItem", "DebitCreditCode"},
}

var materialDocumentService = &odataService{
	name:          "API_MATERIAL_DOCUMENT_SRV",
	path:          MaterialDocumentServicePath,
	componentID:   "MM-IM-GF",
	entitySets:    []*entitySet{materialDocumentHeaderSet, materialDocumentItemSet},
	functionKinds: map[string]Kind{"Cancel": KindGoodsMovement},
}

// firstMaterialDocument starts the material documents' number range
// (per year), as in a best-practice system.
const firstMaterialDocument = 4900000001

// movementType is what the simulator knows of a movement type.
type movementType struct {
	// codes are the goods movement codes it may be posted under.
	codes []string
	// receipt: it adds to stock; otherwise it takes from it.
	receipt bool
	// needsPO and needsCostCenter: the reference or account assignment an
	// item of it requires.
	needsPO, needsCostCenter bool
}

// movementTypes are the movement types the simulator posts: receipts for
// purchase orders (101), issues to cost centers (201), receipts without
// purchase order (501), scrapping (551), and each one's reversal (+1).
var movementTypes = map[string]movementType{
	"101": {codes: []string{"01"}, receipt: true, needsPO: true},
	"102": {codes: []string{"01", "06"}, needsPO: true},
	"201": {codes: []string{"03"}, needsCostCenter: true},
	"202": {codes: []string{"03", "06"}, receipt: true, needsCostCenter: true},
	"501": {codes: []string{"05"}, receipt: true},
	"502": {codes: []string{"05", "06"}},
	"551": {codes: []string{"03"}, needsCostCenter: true},
	"552": {codes: []string{"03", "06"}, receipt: true, needsCostCenter: true},
}

// reversalOf is the movement type that cancels t: 101 by 102, 102 by 101.
func reversalOf(t string) string {
	n, _ := strconv.Atoi(t)
	if n%2 == 1 {
		return strconv.Itoa(n + 1)
	}
	return strconv.Itoa(n - 1)
}

// materialDocument is a material document as the simulator keeps it.
type materialDocument struct {
	MaterialDocument, Year        string
	GoodsMovementCode             string
	HeaderText, ReferenceDocument string
	PostingDate, DocumentDate     time.Time
	CreatedAt                     time.Time
	// CreatedBy is the SAP user who posted it: the communication user,
	// or a clerk who cancelled it by hand (Server.Reverse).
	CreatedBy string
	Items     []materialDocumentItem
	// CompanyCode is the plants' company code (of the first item).
	CompanyCode string
}

type materialDocumentItem struct {
	Item, Material, Plant, StorageLocation, Batch string
	MovementType, Unit                            string
	Quantity                                      decimal.Decimal
	PurchaseOrder, PurchaseOrderItem, RefDocType  string
	CostCenter, ControllingArea, Text             string
	receipt                                       bool
	// Cancelled marks an item a cancellation document cancelled;
	// Reversed* name, on a cancellation document's item, what it cancels.
	Cancelled                                    bool
	ReversedDocument, ReversedYear, ReversedItem string
}

// isCancellation reports whether the document cancels another.
func (d *materialDocument) isCancellation() bool {
	return len(d.Items) > 0 && d.Items[0].ReversedDocument != ""
}

func (d *materialDocument) properties() object {
	return object{
		{"MaterialDocumentYear", d.Year},
		{"MaterialDocument", d.MaterialDocument},
		{"InventoryTransactionType", "WA"},
		{"DocumentDate", formatEdmDate(d.DocumentDate)},
		{"PostingDate", formatEdmDate(d.PostingDate)},
		{"CreationDate", formatEdmDate(dateOnly(d.CreatedAt))},
		{"CreationTime", d.CreatedAt.UTC().Format("PT15H04M05S")},
		{"CreatedByUser", d.CreatedBy},
		{"MaterialDocumentHeaderText", d.HeaderText},
		{"ReferenceDocument", d.ReferenceDocument},
		{"VersionForPrintingSlip", ""},
		{"ManualPrintIsTriggered", ""},
		{"CtrlPostgForExtWhseMgmtSyst", ""},
		{"GoodsMovementCode", d.GoodsMovementCode},
	}
}

func (d *materialDocument) itemProperties(it materialDocumentItem) object {
	dc := "H"
	if it.receipt {
		dc = "S"
	}
	return object{
		{"MaterialDocumentYear", d.Year},
		{"MaterialDocument", d.MaterialDocument},
		{"MaterialDocumentItem", it.Item},
		{"Material", it.Material},
		{"Plant", it.Plant},
		{"StorageLocation", it.StorageLocation},
		{"Batch", it.Batch},
		{"GoodsMovementType", it.MovementType},
		{"InventoryStockType", "01"}, // unrestricted-use
		{"PurchaseOrder", it.PurchaseOrder},
		{"PurchaseOrderItem", it.PurchaseOrderItem},
		{"GoodsMovementRefDocType", it.RefDocType},
		{"CostCenter", it.CostCenter},
		{"ControllingArea", it.ControllingArea},
		{"MaterialBaseUnit", it.Unit},
		{"QuantityInBaseUnit", it.Quantity.StringFixed(3)},
		{"EntryUnit", it.Unit},
		{"QuantityInEntryUnit", it.Quantity.StringFixed(3)},
		{"FiscalYear", d.Year},
		{"MaterialDocumentItemText", it.Text},
		{"GoodsMovementIsCancelled", it.Cancelled},
		{"ReversedMaterialDocumentYear", it.ReversedYear},
		{"ReversedMaterialDocument", it.ReversedDocument},
		{"ReversedMaterialDocumentItem", it.ReversedItem},
		{"DebitCreditCode", dc},
	}
}

func (d *materialDocument) entity(r *http.Request, svc *odataService, expand bool) object {
	props := d.properties()
	if expand {
		items := make([]object, len(d.Items))
		for i, it := range d.Items {
			items[i] = withMetadata(r, svc, materialDocumentItemSet, d.itemProperties(it))
		}
		return append(props, field{"to_MaterialDocumentItem", object{{"results", items}}})
	}
	uri := serviceURL(r, svc) + materialDocumentHeaderSet.name + materialDocumentHeaderSet.keyPredicate(props)
	return append(props, field{"to_MaterialDocumentItem", deferred(uri, "to_MaterialDocumentItem")})
}

// materialBooks are the simulator's material documents and stock. Guarded
// by Server.mu.
type materialBooks struct {
	docs   []*materialDocument
	byKey  map[string]*materialDocument   // "<year>/<number>"
	byText map[string][]*materialDocument // by MaterialDocumentHeaderText
	// stock is unrestricted stock by "<material>/<plant>/<storage
	// location>", seeded from MasterData.Stock on first use.
	stock map[string]decimal.Decimal
}

// stockBooks returns the stock, seeding it from the master data first.
// Callers hold s.mu.
func (s *Server) stockBooks() map[string]decimal.Decimal {
	b := &s.books.materials
	if b.stock == nil {
		b.stock = map[string]decimal.Decimal{}
		for k, v := range s.md.Stock {
			d, err := decimal.NewFromString(v)
			if err != nil {
				panic(fmt.Sprintf("sim: master data: stock of %s: %v", k, err))
			}
			b.stock[k] = d
		}
		b.byKey = map[string]*materialDocument{}
		b.byText = map[string][]*materialDocument{}
	}
	return b.stock
}

func stockKey(material, plant, storageLocation string) string {
	return material + "/" + plant + "/" + storageLocation
}

// Stock returns the unrestricted stock of a material in a plant and
// storage location, as a decimal string ("0" when there is none).
func (s *Server) Stock(material, plant, storageLocation string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stockBooks()[stockKey(material, plant, storageLocation)].String()
}

func init() {
	materialDocumentService.functions = map[string]func(*Server, http.ResponseWriter, *http.Request, []byte){
		"Cancel": (*Server).cancelMaterialDocumentFunction,
	}
	materialDocumentHeaderSet.kind = KindGoodsMovement
	materialDocumentHeaderSet.create = (*Server).createMaterialDocument
	materialDocumentHeaderSet.objects = materialDocumentObjects
	materialDocumentHeaderSet.rows = func(s *Server, r *http.Request, svc *odataService, qo queryOptions) []object {
		docs := s.materialDocuments(qo)
		out := make([]object, len(docs))
		for i, d := range docs {
			out[i] = d.entity(r, svc, qo.expand["to_MaterialDocumentItem"])
		}
		return out
	}
	materialDocumentItemSet.rows = func(s *Server, _ *http.Request, _ *odataService, qo queryOptions) []object {
		var out []object
		for _, d := range s.materialDocuments(qo) {
			for _, it := range d.Items {
				out = append(out, d.itemProperties(it))
			}
		}
		return out
	}
}

// materialDocuments are the documents a query may match, read from an
// index where its filter names one (the filter still applies). Callers
// hold s.mu.
func (s *Server) materialDocuments(qo queryOptions) []*materialDocument {
	s.stockBooks()
	b := &s.books.materials
	if text, ok := qo.equals("MaterialDocumentHeaderText"); ok {
		return b.byText[text]
	}
	no, okNo := qo.equals("MaterialDocument")
	year, okYear := qo.equals("MaterialDocumentYear")
	if okNo && okYear {
		if d := b.byKey[year+"/"+no]; d != nil {
			return []*materialDocument{d}
		}
		return nil
	}
	return b.docs
}

// --- request payload -----------------------------------------------------------------

type materialDocumentPayload struct {
	GoodsMovementCode           string                                  `json:"GoodsMovementCode"`
	PostingDate                 edmDate                                 `json:"PostingDate"`
	DocumentDate                edmDate                                 `json:"DocumentDate"`
	MaterialDocumentHeaderText  string                                  `json:"MaterialDocumentHeaderText"`
	ReferenceDocument           string                                  `json:"ReferenceDocument"`
	VersionForPrintingSlip      string                                  `json:"VersionForPrintingSlip"`
	ManualPrintIsTriggered      string                                  `json:"ManualPrintIsTriggered"`
	CtrlPostgForExtWhseMgmtSyst string                                  `json:"CtrlPostgForExtWhseMgmtSyst"`
	Items                       strictResults[materialDocumentItemJSON] `json:"to_MaterialDocumentItem"`
}

type materialDocumentItemJSON struct {
	Material                     string     `json:"Material"`
	Plant                        string     `json:"Plant"`
	StorageLocation              string     `json:"StorageLocation"`
	Batch                        string     `json:"Batch"`
	GoodsMovementType            string     `json:"GoodsMovementType"`
	InventoryStockType           string     `json:"InventoryStockType"`
	PurchaseOrder                string     `json:"PurchaseOrder"`
	PurchaseOrderItem            string     `json:"PurchaseOrderItem"`
	GoodsMovementRefDocType      string     `json:"GoodsMovementRefDocType"`
	GoodsMovementReasonCode      string     `json:"GoodsMovementReasonCode"`
	CostCenter                   string     `json:"CostCenter"`
	EntryUnit                    string     `json:"EntryUnit"`
	QuantityInEntryUnit          edmDecimal `json:"QuantityInEntryUnit"`
	MaterialDocumentItemText     string     `json:"MaterialDocumentItemText"`
	IssuingOrReceivingPlant      string     `json:"IssuingOrReceivingPlant"`
	IssuingOrReceivingStorageLoc string     `json:"IssuingOrReceivingStorageLoc"`
}

func (p *materialDocumentPayload) checkLengths() error {
	type lim struct {
		name, v string
		max     int
	}
	lims := []lim{
		{"GoodsMovementCode", p.GoodsMovementCode, 2}, {"MaterialDocumentHeaderText", p.MaterialDocumentHeaderText, 25},
		{"ReferenceDocument", p.ReferenceDocument, 16}, {"VersionForPrintingSlip", p.VersionForPrintingSlip, 1},
		{"ManualPrintIsTriggered", p.ManualPrintIsTriggered, 1}, {"CtrlPostgForExtWhseMgmtSyst", p.CtrlPostgForExtWhseMgmtSyst, 1},
	}
	for _, it := range p.Items {
		lims = append(lims, []lim{
			{"Material", it.Material, 40}, {"Plant", it.Plant, 4}, {"StorageLocation", it.StorageLocation, 4},
			{"Batch", it.Batch, 10}, {"GoodsMovementType", it.GoodsMovementType, 3}, {"InventoryStockType", it.InventoryStockType, 2},
			{"PurchaseOrder", it.PurchaseOrder, 10}, {"PurchaseOrderItem", it.PurchaseOrderItem, 5},
			{"GoodsMovementRefDocType", it.GoodsMovementRefDocType, 1}, {"GoodsMovementReasonCode", it.GoodsMovementReasonCode, 4},
			{"CostCenter", it.CostCenter, 10}, {"EntryUnit", it.EntryUnit, 3},
			{"MaterialDocumentItemText", it.MaterialDocumentItemText, 50}, {"IssuingOrReceivingPlant", it.IssuingOrReceivingPlant, 4},
			{"IssuingOrReceivingStorageLoc", it.IssuingOrReceivingStorageLoc, 4},
		}...)
	}
	for _, l := range lims {
		if n := len([]rune(l.v)); n > l.max {
			return fmt.Errorf("value of property '%s' is too long (%d characters, maximum %d)", l.name, n, l.max)
		}
	}
	for _, it := range p.Items {
		// Edm.Decimal(13,3).
		if q := it.QuantityInEntryUnit.d; it.QuantityInEntryUnit.set && (-q.Exponent() > 3 || q.Abs().GreaterThanOrEqual(decimal.New(1, 10))) {
			return fmt.Errorf("value of property 'QuantityInEntryUnit' %s does not fit Edm.Decimal(13,3)", q)
		}
	}
	return nil
}

// materialDocumentObjects are what SAP's enqueue locks while it posts a
// material document: each item's material in its plant.
func materialDocumentObjects(body []byte) []string {
	type item struct{ Material, Plant string }
	var p struct {
		Items json.RawMessage `json:"to_MaterialDocumentItem"`
	}
	if json.Unmarshal(body, &p) != nil {
		return nil
	}
	var wrapped struct {
		Results []item `json:"results"`
	}
	items := wrapped.Results
	if json.Unmarshal(p.Items, &wrapped) == nil {
		items = wrapped.Results
	} else if json.Unmarshal(p.Items, &items) != nil {
		return nil
	}
	var out []string
	for _, it := range items {
		out = append(out, "material/"+it.Plant+"/"+strings.ToUpper(it.Material))
	}
	return out
}

// --- create --------------------------------------------------------------------------

// createMaterialDocument deserializes, validates and posts a deep insert.
// Nothing de-duplicates it: the same request sent twice moves the goods
// twice.
func (s *Server) createMaterialDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	svc := materialDocumentService
	var p materialDocumentPayload
	if !s.readDeepInsert(w, r, svc, body, &p) {
		return
	}

	s.mu.Lock()
	d, msgs := s.validateMaterialDocument(&p)
	warehouse := false
	if len(msgs) == 0 {
		msgs = s.postMaterialDocument(d)
		warehouse = s.warehouseManaged(d)
	}
	if len(msgs) > 0 {
		s.stats.Rejected[KindGoodsMovement]++
	}
	var delivery string
	if len(msgs) == 0 && warehouse {
		delivery = alpha(s.books.nextNumber("LIKP", firstDelivery))
	}
	s.mu.Unlock()

	if len(msgs) > 0 {
		s.log.Info("sim: goods movement rejected", "code", msgs[0].Code, "message", msgs[0].Text, "header_text", p.MaterialDocumentHeaderText)
		s.writeODataError(w, http.StatusBadRequest, svc, msgs...)
		return
	}
	s.log.Info("sim: material document posted", "document", d.MaterialDocument, "year", d.Year, "header_text", d.HeaderText, "warehouse", warehouse)

	msg := msgMaterialDocumentPosted(d.MaterialDocument)
	props := d.entity(r, svc, true)
	if warehouse {
		// The warehouse confirms the movement: the answer names the
		// delivery, and no material document.
		msg = msgDeliveryCreated(delivery)
		for i := range props {
			if props[i].name == "MaterialDocument" || props[i].name == "MaterialDocumentYear" {
				props[i].value = ""
			}
		}
	}
	hdr, _ := json.Marshal(object{{"code", msg.Code}, {"message", msg.Text}, {"severity", "info"}, {"target", ""}, {"details", []any{}}})
	if !warehouse {
		w.Header().Set("Location", serviceURL(r, svc)+materialDocumentHeaderSet.name+materialDocumentHeaderSet.keyPredicate(d.properties()))
	}
	w.Header().Set("sap-message", string(hdr))
	writeJSON(w, http.StatusCreated, object{{"d", withMetadata(r, svc, materialDocumentHeaderSet, props)}})
}

// firstDelivery starts the inbound deliveries' number range.
const firstDelivery = 180000001

// warehouseManaged reports whether an item of d moves stock of a storage
// location a warehouse manages. Callers hold s.mu.
func (s *Server) warehouseManaged(d *materialDocument) bool {
	for _, it := range d.Items {
		if slices.Contains(s.md.Plants[it.Plant].WarehouseStorageLocations, it.StorageLocation) {
			return true
		}
	}
	return false
}

// validateMaterialDocument runs SAP's checks of the data and, when they
// pass, returns the document ready to post (without a number; the stock
// is checked when it posts). Callers hold s.mu.
func (s *Server) validateMaterialDocument(p *materialDocumentPayload) (*materialDocument, []sapMessage) {
	var msgs []sapMessage
	for _, req := range []struct {
		name string
		ok   bool
	}{
		{"GoodsMovementCode", p.GoodsMovementCode != ""}, {"PostingDate", p.PostingDate.set},
		{"to_MaterialDocumentItem", len(p.Items) > 0},
	} {
		if !req.ok {
			msgs = append(msgs, msgRequired(req.name))
		}
	}
	if len(msgs) > 0 {
		return nil, msgs
	}
	if !slices.Contains([]string{"01", "02", "03", "04", "05", "06"}, p.GoodsMovementCode) {
		return nil, []sapMessage{msgGoodsMovementCodeUnknown(p.GoodsMovementCode)}
	}
	now := s.opts.Now()
	d := &materialDocument{
		Year: strconv.Itoa(p.PostingDate.t.Year()), GoodsMovementCode: p.GoodsMovementCode,
		HeaderText: p.MaterialDocumentHeaderText, ReferenceDocument: p.ReferenceDocument,
		PostingDate: p.PostingDate.t, DocumentDate: p.DocumentDate.t, CreatedAt: now, CreatedBy: s.opts.User,
	}
	if !p.DocumentDate.set {
		d.DocumentDate = d.PostingDate
	}
	for i, it := range p.Items {
		item := materialDocumentItem{
			Item: strconv.Itoa(i + 1), Material: strings.ToUpper(it.Material), Plant: it.Plant,
			StorageLocation: it.StorageLocation, Batch: it.Batch, MovementType: it.GoodsMovementType,
			Unit: it.EntryUnit, Quantity: it.QuantityInEntryUnit.d, PurchaseOrder: it.PurchaseOrder,
			PurchaseOrderItem: it.PurchaseOrderItem, RefDocType: it.GoodsMovementRefDocType,
			CostCenter: it.CostCenter, Text: it.MaterialDocumentItemText,
		}
		plant, plantKnown := s.md.Plants[item.Plant]
		mat, matKnown := s.md.Materials[item.Material]
		mt, mtKnown := movementTypes[item.MovementType]
		switch {
		case item.Material == "":
			msgs = append(msgs, msgRequired("Material"))
		case item.Plant == "":
			msgs = append(msgs, msgRequired("Plant"))
		case !plantKnown:
			msgs = append(msgs, msgPlantUnknown(item.Plant))
		case !matKnown || !slices.Contains(mat.Plants, item.Plant):
			msgs = append(msgs, msgMaterialNotInPlant(item.Material, item.Plant))
		case item.StorageLocation == "":
			msgs = append(msgs, msgRequired("StorageLocation"))
		case !slices.Contains(plant.StorageLocations, item.StorageLocation):
			msgs = append(msgs, msgStorageLocationUnknown(item.Plant, item.StorageLocation))
		case item.MovementType == "":
			msgs = append(msgs, msgRequired("GoodsMovementType"))
		case !mtKnown || !slices.Contains(mt.codes, p.GoodsMovementCode):
			msgs = append(msgs, msgMovementTypeNotAllowed(item.MovementType, p.GoodsMovementCode))
		case !it.QuantityInEntryUnit.set || !item.Quantity.IsPositive():
			msgs = append(msgs, msgGoodsMovementQuantity(item.Item))
		case item.Unit != "" && item.Unit != mat.BaseUnit:
			msgs = append(msgs, msgEntryUnitNotDefined(item.Unit, item.Material))
		case unitDecimals(mat.BaseUnit) == 0 && !item.Quantity.Equal(item.Quantity.Truncate(0)):
			msgs = append(msgs, msgQuantityDecimals(item.Item, mat.BaseUnit))
		case mt.needsPO && (item.PurchaseOrder == "" || item.PurchaseOrderItem == ""):
			msgs = append(msgs, msgRequired("PurchaseOrder"))
		case mt.needsCostCenter && item.CostCenter == "":
			msgs = append(msgs, msgRequired("CostCenter"))
		default:
			cc := s.md.CompanyCodes[plant.CompanyCode]
			if item.CostCenter != "" && !s.md.hasCostCenter(cc.ControllingArea, item.CostCenter) {
				msgs = append(msgs, msgCostCenterUnknown(cc.ControllingArea, item.CostCenter, d.PostingDate))
				continue
			}
			if item.CostCenter != "" {
				item.ControllingArea = cc.ControllingArea
			}
			if item.PurchaseOrder != "" && item.RefDocType == "" {
				item.RefDocType = "B"
			}
			item.Unit, item.receipt = mat.BaseUnit, mt.receipt
			if d.CompanyCode == "" {
				d.CompanyCode = plant.CompanyCode
			}
			d.Items = append(d.Items, item)
		}
	}
	if len(msgs) > 0 {
		return nil, msgs
	}
	if !s.periodOpen(d.PostingDate) {
		return nil, []sapMessage{msgMaterialPeriodClosed(s.opts.Now(), d.CompanyCode)}
	}
	return d, nil
}

// unitDecimals are the decimals the simulator's base units allow.
func unitDecimals(unit string) int {
	switch unit {
	case "PC", "EA", "ST":
		return 0
	}
	return 3
}

// postMaterialDocument moves the stock of a validated document and books
// it, or refuses it with M7/021 when an item takes a storage location's
// stock below zero (items are applied in order, as SAP does: an issue may
// use what an earlier item of the document received). Callers hold s.mu.
func (s *Server) postMaterialDocument(d *materialDocument) []sapMessage {
	if msg := s.moveStock(d.Items, false); msg != nil {
		return []sapMessage{*msg}
	}
	d.MaterialDocument = s.books.nextNumber("MKPF/"+d.Year, firstMaterialDocument)
	s.bookMaterialDocument(d)
	ref := ""
	if f := strings.Fields(d.HeaderText); len(f) > 0 && !d.isCancellation() {
		ref = f[0]
	}
	// A material document names no company code (A_MaterialDocumentHeader
	// has none): the ledger gives it none either.
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindGoodsMovement, Document: d.MaterialDocument, FiscalYear: d.Year,
		Reference: ref, PostedAt: d.CreatedAt,
	})
	s.stats.Posted[KindGoodsMovement]++
	return nil
}

// moveStock applies the items' quantities to stock, all or none; reverse
// applies them the other way (a cancellation). Callers hold s.mu.
func (s *Server) moveStock(items []materialDocumentItem, reverse bool) *sapMessage {
	stock := s.stockBooks()
	after := map[string]decimal.Decimal{}
	for _, it := range items {
		k := stockKey(it.Material, it.Plant, it.StorageLocation)
		have, ok := after[k]
		if !ok {
			have = stock[k]
		}
		q := it.Quantity
		if it.receipt == reverse {
			q = q.Neg()
		}
		if have.Add(q).IsNegative() {
			m := msgDeficit(have.Add(q).Neg(), it.Unit, it.Material, it.Plant, it.StorageLocation)
			return &m
		}
		after[k] = have.Add(q)
	}
	for k, v := range after {
		stock[k] = v
	}
	return nil
}

// bookMaterialDocument adds a numbered document to the books. Callers
// hold s.mu.
func (s *Server) bookMaterialDocument(d *materialDocument) {
	s.stockBooks()
	b := &s.books.materials
	b.docs = append(b.docs, d)
	b.byKey[d.Year+"/"+d.MaterialDocument] = d
	b.byText[d.HeaderText] = append(b.byText[d.HeaderText], d)
}

// --- Cancel --------------------------------------------------------------------------

// cancelMaterialDocumentFunction is the function import Cancel: POST
// .../Cancel?MaterialDocumentYear='2026'&MaterialDocument='4900000001'
// with an optional PostingDate=datetime'2026-11-25T00:00:00'. Its answer
// is the cancellation document's header.
func (s *Server) cancelMaterialDocumentFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	svc := materialDocumentService
	q := r.URL.Query()
	lit := func(name string) string { return strings.TrimSuffix(strings.TrimPrefix(q.Get(name), "'"), "'") }
	no, year := lit("MaterialDocument"), lit("MaterialDocumentYear")
	for _, p := range []struct{ name, v string }{{"MaterialDocumentYear", year}, {"MaterialDocument", no}} {
		if p.v == "" {
			s.writeODataError(w, http.StatusBadRequest, svc, msgRequired(p.name))
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
		postingDate = dateOnly(d)
	}
	s.mu.Lock()
	c, msg := s.cancelMaterialDocument(no, year, postingDate, s.opts.User)
	if msg != nil {
		s.stats.Rejected[KindGoodsMovement]++
	}
	s.mu.Unlock()
	if msg != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, *msg)
		return
	}
	posted := msgMaterialDocumentPosted(c.MaterialDocument)
	hdr, _ := json.Marshal(object{{"code", posted.Code}, {"message", posted.Text}, {"severity", "info"}, {"target", ""}, {"details", []any{}}})
	w.Header().Set("sap-message", string(hdr))
	writeJSON(w, http.StatusOK, object{{"d", withMetadata(r, svc, materialDocumentHeaderSet, c.entity(r, svc, false))}})
}

// cancelMaterialDocument cancels a whole material document as MBST does:
// a cancellation document with each item's reversing movement type, the
// original's items marked cancelled, the stock moved back (refused with
// M7/021 if what was received has been issued since). It keeps the
// original's header text, which a look-up by header text must therefore
// tell apart. postingDate zero posts it on the original's date; user is
// who cancels it (CreatedByUser of the cancellation). Callers hold s.mu.
func (s *Server) cancelMaterialDocument(number, year string, postingDate time.Time, user string) (*materialDocument, *sapMessage) {
	s.stockBooks()
	d := s.books.materials.byKey[year+"/"+number]
	if d == nil {
		d = s.books.materials.byKey[year+"/"+fmt.Sprintf("%010s", number)]
	}
	switch {
	case d == nil:
		m := msgMaterialDocumentUnknown(number, year)
		return nil, &m
	case d.isCancellation():
		m := msgIsCancellation(d.MaterialDocument)
		return nil, &m
	case slices.ContainsFunc(d.Items, func(it materialDocumentItem) bool { return it.Cancelled }):
		m := msgMaterialDocumentCancelled(d.MaterialDocument, year)
		return nil, &m
	}
	if postingDate.IsZero() {
		postingDate = d.PostingDate
	}
	if !s.periodOpen(postingDate) {
		m := msgMaterialPeriodClosed(s.opts.Now(), d.CompanyCode)
		return nil, &m
	}
	if msg := s.moveStock(d.Items, true); msg != nil {
		return nil, msg
	}
	now := s.opts.Now()
	c := &materialDocument{
		Year: strconv.Itoa(postingDate.Year()), GoodsMovementCode: d.GoodsMovementCode, HeaderText: d.HeaderText,
		ReferenceDocument: d.ReferenceDocument, PostingDate: postingDate, DocumentDate: d.DocumentDate, CreatedAt: now,
		CompanyCode: d.CompanyCode, CreatedBy: user,
	}
	c.MaterialDocument = s.books.nextNumber("MKPF/"+c.Year, firstMaterialDocument)
	for i := range d.Items {
		it := d.Items[i]
		d.Items[i].Cancelled = true
		it.MovementType, it.receipt = reversalOf(it.MovementType), !it.receipt
		it.ReversedDocument, it.ReversedYear, it.ReversedItem = d.MaterialDocument, d.Year, it.Item
		c.Items = append(c.Items, it)
	}
	s.bookMaterialDocument(c)
	for i := range s.books.ledger {
		if e := &s.books.ledger[i]; e.Kind == KindGoodsMovement && e.Document == d.MaterialDocument && e.FiscalYear == d.Year {
			e.ReversedBy = c.MaterialDocument
		}
	}
	ref := ""
	if f := strings.Fields(d.HeaderText); len(f) > 0 {
		ref = f[0]
	}
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindGoodsMovement, Document: c.MaterialDocument, FiscalYear: c.Year,
		Reference: ref, PostedAt: now, Reverses: d.MaterialDocument,
	})
	s.stats.Posted[KindGoodsMovement]++
	s.log.Info("sim: material document cancelled", "document", d.MaterialDocument, "year", d.Year, "cancellation", c.MaterialDocument)
	return c, nil
}

// --- messages ------------------------------------------------------------------------

func msgMaterialDocumentPosted(document string) sapMessage {
	return sapMessage{Code: "MIGO/012", Text: fmt.Sprintf("Material document %s posted", document)}
}

// msgDeliveryCreated is the information SAP gives instead of a material
// document when a warehouse is to confirm the movement.
func msgDeliveryCreated(delivery string) sapMessage {
	return sapMessage{Code: "L9/514", Text: fmt.Sprintf("Delivery %s created", delivery)}
}

// msgDeficit is SAP's refusal of a movement the stock does not cover: the
// quantity missing, then material, plant and storage location.
func msgDeficit(missing decimal.Decimal, unit, material, plant, storageLocation string) sapMessage {
	return sapMessage{Code: "M7/021", Text: fmt.Sprintf("Deficit of SL Unrestricted-use %s %s : %s %s %s", missing.String(), unit, material, plant, storageLocation), Target: "QuantityInEntryUnit"}
}

// msgMaterialPeriodClosed names the periods inventory management posts in:
// the current one and the one before.
func msgMaterialPeriodClosed(now time.Time, companyCode string) sapMessage {
	now = now.UTC()
	prev := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	return sapMessage{Code: "M7/053", Text: fmt.Sprintf("Posting only possible in periods %d/%02d and %d/%02d in company code %s",
		now.Year(), int(now.Month()), prev.Year(), int(prev.Month()), companyCode), Target: "PostingDate"}
}

func msgGoodsMovementCodeUnknown(code string) sapMessage {
	return sapMessage{Code: "M7/226", Text: fmt.Sprintf("Goods movement code %s is not defined", code), Target: "GoodsMovementCode"}
}

func msgPlantUnknown(plant string) sapMessage {
	return sapMessage{Code: "M7/045", Text: fmt.Sprintf("Plant %s does not exist", plant), Target: "Plant"}
}

func msgMaterialNotInPlant(material, plant string) sapMessage {
	return sapMessage{Code: "M7/001", Text: fmt.Sprintf("Material %s not maintained in plant %s", material, plant), Target: "Material"}
}

func msgStorageLocationUnknown(plant, storageLocation string) sapMessage {
	return sapMessage{Code: "M7/058", Text: fmt.Sprintf("Storage location %s %s does not exist", plant, storageLocation), Target: "StorageLocation"}
}

func msgMovementTypeNotAllowed(movementType, code string) sapMessage {
	return sapMessage{Code: "M7/096", Text: fmt.Sprintf("Movement type %s is not allowed with goods movement code %s", movementType, code), Target: "GoodsMovementType"}
}

func msgGoodsMovementQuantity(item string) sapMessage {
	return sapMessage{Code: "M7/006", Text: fmt.Sprintf("Item %s: enter a quantity greater than zero", item), Target: "QuantityInEntryUnit"}
}

func msgEntryUnitNotDefined(unit, material string) sapMessage {
	return sapMessage{Code: "M7/064", Text: fmt.Sprintf("Unit of entry %s is not defined for material %s", unit, material), Target: "EntryUnit"}
}

func msgQuantityDecimals(item, unit string) sapMessage {
	return sapMessage{Code: "M7/091", Text: fmt.Sprintf("Item %s: unit %s allows no decimal places", item, unit), Target: "QuantityInEntryUnit"}
}

func msgMaterialDocumentUnknown(document, year string) sapMessage {
	return sapMessage{Code: "M7/076", Text: fmt.Sprintf("Material document %s %s does not exist", document, year), Target: "MaterialDocument"}
}

func msgMaterialDocumentCancelled(document, year string) sapMessage {
	return sapMessage{Code: "M7/427", Text: fmt.Sprintf("Material document %s %s has already been cancelled", document, year), Target: "MaterialDocument"}
}

func msgIsCancellation(document string) sapMessage {
	return sapMessage{Code: "M7/428", Text: fmt.Sprintf("Material document %s is a cancellation document and cannot be cancelled", document), Target: "MaterialDocument"}
}
