package tasks

import (
	"fmt"
	"slices"
)

// KindGoodsMovement is a goods movement: a goods receipt, issue, transfer
// or reversal of materials, posted as one material document.
const KindGoodsMovement Kind = "goods_movement"

var goodsMovementSpec = Spec{
	Kind:        KindGoodsMovement,
	Tool:        "submit_goods_movement",
	Title:       "Submit goods movement",
	Summary:     "a goods movement (goods receipt, goods issue, transfer) of materials",
	Description: `Submit a goods movement for posting into SAP as one material document: goods_movement_code says what it is (01 goods receipt for a purchase order, 02 receipt for a production order, 03 goods issue, 04 transfer posting, 05 other goods receipt, 06 reversal), each item's movement_type how SAP books it (for example 101 receipt for a purchase order, 201 issue to a cost center, 501 receipt without purchase order). SAP refuses a goods issue that the stock of the material in the plant and storage location does not cover (message M7/021). sapq's own reference leads SAP's header text: header_text holds at most 8 characters.`,
	SAP:         "OData V2 API_MATERIAL_DOCUMENT_SRV, A_MaterialDocumentHeader (deep insert of to_MaterialDocumentItem)",
	Reference:   "A_MaterialDocumentHeader.MaterialDocumentHeaderText (its first 16 characters)",
	New:         func() Posting { return new(GoodsMovement) },
}

// LenMaterialDocumentHeaderText is the length of a material document's
// header text (MaterialDocumentHeaderText, BKTXT): sapq's reference
// (LenSAPReference) leads it, and the caller's header text follows after
// one space, in the MaxGoodsMovementHeaderText characters left. A material
// document has no field of its own for a reference that SAP stores
// unchanged and lets a client filter by: ReferenceDocument (16) is the
// caller's (a delivery note number, say), and AssignmentReference does not
// exist on it.
const (
	LenMaterialDocumentHeaderText = 25
	MaxGoodsMovementHeaderText    = LenMaterialDocumentHeaderText - LenSAPReference - 1
)

// GoodsMovement is a goods movement. It maps to A_MaterialDocumentHeader in
// API_MATERIAL_DOCUMENT_SRV with items in to_MaterialDocumentItem. Lengths
// are the service's (GoodsMovementCode 2, ReferenceDocument 16, Material
// 40, Plant 4, StorageLocation 4, Batch 10, GoodsMovementType 3,
// PurchaseOrder 10, PurchaseOrderItem 5, CostCenter 10,
// MaterialDocumentItemText 50).
type GoodsMovement struct {
	Key               string              `json:"idempotency_key" sapq:"key" jsonschema:"Your unique key for this business document (1-128 printable ASCII characters). Resend the same key with the same content to retry safely; sapq never posts the same key twice."`
	GoodsMovementCode string              `json:"goods_movement_code" sapq:"enum,01,02,03,04,05,06" sap:"GoodsMovementCode" jsonschema:"SAP goods movement code: 01 goods receipt for purchase order, 02 goods receipt for production order, 03 goods issue, 04 transfer posting, 05 other goods receipt, 06 reversal of goods movements"`
	PostingDate       string              `json:"posting_date" sapq:"date" sap:"PostingDate" jsonschema:"Posting date as YYYY-MM-DD; must fall in an open posting period"`
	DocumentDate      string              `json:"document_date" sapq:"date" sap:"DocumentDate" jsonschema:"Document date as YYYY-MM-DD (the date of the delivery note, say)"`
	Reference         string              `json:"reference,omitempty" sapq:"reference,16" sap:"ReferenceDocument" jsonschema:"Optional external reference in upper case (up to 16 characters), such as the supplier's delivery note number"`
	HeaderText        string              `json:"header_text,omitempty" sapq:"text,8" sap:"MaterialDocumentHeaderText" jsonschema:"Optional header text (up to 8 characters): SAP's header text holds 25, and sapq's own reference (16) and a space come first"`
	Items             []GoodsMovementItem `json:"items" sapq:"list,1,999" sap:"to_MaterialDocumentItem" jsonschema:"1 to 999 items"`
	Destination       string              `json:"destination,omitempty" sapq:"name,64" jsonschema:"Optional: the SAP system to post to, by its configured name; omit it for the default destination (a goods movement carries no company code)"`
}

// GoodsMovementItem is one item of a goods movement: a quantity of a
// material moved in a plant.
type GoodsMovementItem struct {
	Material          string `json:"material" sapq:"code,40" sap:"Material" jsonschema:"SAP material number (up to 40 characters), for example TG11"`
	Plant             string `json:"plant" sapq:"code,4" sap:"Plant" jsonschema:"SAP plant (up to 4 characters), for example 1010"`
	StorageLocation   string `json:"storage_location,omitempty" sapq:"code,4" sap:"StorageLocation" jsonschema:"Storage location in the plant (up to 4 characters), for example 101A; required by SAP for every movement of stock"`
	MovementType      string `json:"movement_type" sapq:"code,3" sap:"GoodsMovementType" jsonschema:"SAP movement type (3 characters), for example 101 (goods receipt for purchase order), 201 (goods issue to cost center), 501 (receipt without purchase order), 102/202/502 (their reversals)"`
	Quantity          string `json:"quantity" sapq:"quantity" sap:"QuantityInEntryUnit" jsonschema:"Quantity as a decimal string with the unit's decimals, for example 10 or 2.5"`
	Unit              string `json:"unit" sapq:"unit" sap:"EntryUnit" jsonschema:"Unit of measure of the quantity, for example PC"`
	PurchaseOrder     string `json:"purchase_order,omitempty" sapq:"number,10" sap:"PurchaseOrder, GoodsMovementRefDocType" jsonschema:"Purchase order number (digits, up to 10) the goods are received for; required with goods_movement_code 01, together with purchase_order_item"`
	PurchaseOrderItem string `json:"purchase_order_item,omitempty" sapq:"number,5" sap:"PurchaseOrderItem" jsonschema:"Item of the purchase order (digits, up to 5), for example 10"`
	CostCenter        string `json:"cost_center,omitempty" sapq:"code,10" sap:"CostCenter" jsonschema:"Cost center (up to 10 characters) a goods issue is charged to, for example 10101101 with movement type 201"`
	Batch             string `json:"batch,omitempty" sapq:"code,10" sap:"Batch" jsonschema:"Optional batch (up to 10 characters) of a batch-managed material"`
	Text              string `json:"text,omitempty" sapq:"text,50" sap:"MaterialDocumentItemText" jsonschema:"Optional item text (up to 50 characters)"`
}

func (*GoodsMovement) Kind() Kind               { return KindGoodsMovement }
func (g *GoodsMovement) IdempotencyKey() string { return g.Key }

// Validate checks every field and the rules across them: a purchase order
// item needs its order and the other way round, and a goods receipt for a
// purchase order (code 01) names one on every item. Whether a movement
// type fits the code, the material the plant and the stock the issue is
// SAP's customising and master data, which only SAP can judge.
func (g *GoodsMovement) Validate() error {
	var c checker
	c.checkFields(g)
	for i, it := range g.Items {
		switch {
		case it.PurchaseOrder != "" && it.PurchaseOrderItem == "":
			c.add(itemField(i, "purchase_order_item"), "is required with purchase_order %s: name the order's item, for example 10", quote(it.PurchaseOrder))
		case it.PurchaseOrder == "" && it.PurchaseOrderItem != "":
			c.add(itemField(i, "purchase_order"), "is required with purchase_order_item %s", quote(it.PurchaseOrderItem))
		case it.PurchaseOrder == "" && g.GoodsMovementCode == "01":
			c.add(itemField(i, "purchase_order"), "is required: goods_movement_code 01 is a goods receipt for a purchase order")
		}
	}
	return c.err()
}

// Facts: the plants, for the callers' policies (allowed_plants), and the
// materials' plant data, which SAP locks per material and plant while it
// posts (message M3/897 for a second process). A goods movement moves no
// amount by itself: SAP values it from the material's price, which sapq
// neither sends nor knows.
func (g *GoodsMovement) Facts() Facts {
	f := Facts{Destination: g.Destination}
	var plants []string
	for i, it := range g.Items {
		if it.Plant != "" && !slices.Contains(plants, it.Plant) {
			plants = append(plants, it.Plant)
			f.Units = append(f.Units, OrgUnit{UnitPlant, itemField(i, "plant"), it.Plant})
		}
		if obj := "material/" + it.Plant + "/" + it.Material; !slices.Contains(f.Objects, obj) {
			f.Objects = append(f.Objects, obj)
		}
	}
	slices.Sort(f.Objects)
	return f
}

func (g *GoodsMovement) String() string {
	return fmt.Sprintf("goods movement %s dated %s, %d items", g.GoodsMovementCode, g.PostingDate, len(g.Items))
}
