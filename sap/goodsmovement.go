package sap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

const (
	materialDocumentService   = odataRoot + "API_MATERIAL_DOCUMENT_SRV/"
	materialDocumentHeaderSet = materialDocumentService + "A_MaterialDocumentHeader"

	opPostGoodsMovement = "post goods movement"
	opFindGoodsMovement = "find goods movement"
)

// GoodsMovement is a goods movement: one material document, created by
// deep insert of A_MaterialDocumentHeader with to_MaterialDocumentItem.
// Dates are calendar dates (use UTC midnight).
type GoodsMovement struct {
	// MaterialDocumentHeaderText (25) is where the posting's own
	// reference goes, first (see GoodsMovementHeaderText), and where
	// FindGoodsMovement looks. A material document has no assignment
	// field; ReferenceDocument is the caller's.
	MaterialDocumentHeaderText string
	GoodsMovementCode          string
	PostingDate, DocumentDate  time.Time
	ReferenceDocument          string
	Items                      []GoodsMovementItem
}

// GoodsMovementItem is one item: a quantity of a material moved in a
// plant by a movement type.
type GoodsMovementItem struct {
	Material, Plant, StorageLocation, Batch string
	GoodsMovementType                       string
	QuantityInEntryUnit                     decimal.Decimal
	EntryUnit                               string
	// PurchaseOrder and PurchaseOrderItem: the order goods are received
	// for (GoodsMovementRefDocType B).
	PurchaseOrder, PurchaseOrderItem string
	CostCenter, Text                 string
}

// GoodsMovementHeaderText is the header text of a goods movement posted
// under reference: the reference, then, after one space, the caller's
// header text, if any. The reference leads so that it is never cut.
func GoodsMovementHeaderText(reference, headerText string) string {
	if headerText == "" {
		return reference
	}
	return reference + " " + headerText
}

type goodsMovementBody struct {
	GoodsMovementCode          string    `json:"GoodsMovementCode"`
	PostingDate                odataDate `json:"PostingDate"`
	DocumentDate               odataDate `json:"DocumentDate"`
	MaterialDocumentHeaderText string    `json:"MaterialDocumentHeaderText"`
	ReferenceDocument          string    `json:"ReferenceDocument,omitempty"`
	Items                      struct {
		Results []goodsMovementItemBody `json:"results"`
	} `json:"to_MaterialDocumentItem"`
}

type goodsMovementItemBody struct {
	Material                 string        `json:"Material"`
	Plant                    string        `json:"Plant"`
	StorageLocation          string        `json:"StorageLocation,omitempty"`
	Batch                    string        `json:"Batch,omitempty"`
	GoodsMovementType        string        `json:"GoodsMovementType"`
	PurchaseOrder            string        `json:"PurchaseOrder,omitempty"`
	PurchaseOrderItem        string        `json:"PurchaseOrderItem,omitempty"`
	GoodsMovementRefDocType  string        `json:"GoodsMovementRefDocType,omitempty"`
	CostCenter               string        `json:"CostCenter,omitempty"`
	EntryUnit                string        `json:"EntryUnit"`
	QuantityInEntryUnit      odataQuantity `json:"QuantityInEntryUnit"`
	MaterialDocumentItemText string        `json:"MaterialDocumentItemText,omitempty"`
}

// odataQuantity is an Edm.Decimal quantity, written as it is: "10",
// "2.5" (a quantity has the unit's decimals, which the posting checked).
type odataQuantity decimal.Decimal

func (q odataQuantity) MarshalJSON() ([]byte, error) {
	return json.Marshal(decimal.Decimal(q).String())
}

// maxGoodsMovementItems is how many items MaterialDocumentItem (4 digits)
// can number.
const maxGoodsMovementItems = 9999

// PostGoodsMovement posts the movement in SAP and returns the material
// document's number and year. Invalid input fails as Permanent before
// anything is sent. SAP does not de-duplicate the create: after an
// Unknown error, call FindGoodsMovement before anything else, or the goods
// move twice.
//
// A 201 without a material document number is an Unknown error carrying
// SAP's messages (the sap-message header): SAP answers so when a
// warehouse is to confirm the movement (L9/514 "Delivery ... created"),
// and the document may exist already, or only later. It is never a
// success, nor a refusal.
func (c *Client) PostGoodsMovement(ctx context.Context, gm GoodsMovement) (Document, error) {
	if err := c.validateGoodsMovement(gm); err != nil {
		return Document{}, err
	}
	body, err := json.Marshal(goodsMovementPayload(gm))
	if err != nil {
		return Document{}, c.scrub(&Error{Category: Permanent, Op: opPostGoodsMovement, Message: "cannot encode goods movement", Err: err})
	}
	r, err := c.postOData(ctx, opPostGoodsMovement, materialDocumentService, materialDocumentHeaderSet, nil, body)
	if err != nil {
		return Document{}, err
	}
	var posted struct {
		D struct{ MaterialDocument, MaterialDocumentYear string } `json:"d"`
	}
	msgs := parseSAPMessage(r.header)
	if err := json.Unmarshal(r.body, &posted); err != nil || posted.D.MaterialDocument == "" || posted.D.MaterialDocumentYear == "" {
		e := &Error{Category: Unknown, Op: opPostGoodsMovement, HTTPStatus: r.status, Messages: msgs, Err: err,
			Message: "SAP accepted the goods movement but its answer has no material document number"}
		if len(msgs) > 0 {
			e.Code = msgs[0].Code
			e.Message += "; SAP says: " + strings.TrimSpace(msgs[0].Code+" "+msgs[0].Text)
		}
		return Document{}, c.scrub(e)
	}
	return Document{Number: posted.D.MaterialDocument, FiscalYear: posted.D.MaterialDocumentYear, Messages: msgs}, nil
}

func goodsMovementPayload(gm GoodsMovement) goodsMovementBody {
	b := goodsMovementBody{
		GoodsMovementCode:          gm.GoodsMovementCode,
		PostingDate:                odataDate(gm.PostingDate),
		DocumentDate:               odataDate(gm.DocumentDate),
		MaterialDocumentHeaderText: gm.MaterialDocumentHeaderText,
		ReferenceDocument:          gm.ReferenceDocument,
	}
	b.Items.Results = make([]goodsMovementItemBody, len(gm.Items))
	for i, it := range gm.Items {
		item := goodsMovementItemBody{
			Material:                 it.Material,
			Plant:                    it.Plant,
			StorageLocation:          it.StorageLocation,
			Batch:                    it.Batch,
			GoodsMovementType:        it.GoodsMovementType,
			PurchaseOrder:            it.PurchaseOrder,
			PurchaseOrderItem:        it.PurchaseOrderItem,
			CostCenter:               it.CostCenter,
			EntryUnit:                it.EntryUnit,
			QuantityInEntryUnit:      odataQuantity(it.QuantityInEntryUnit),
			MaterialDocumentItemText: it.Text,
		}
		if it.PurchaseOrder != "" {
			item.GoodsMovementRefDocType = "B" // purchase order
		}
		b.Items.Results[i] = item
	}
	return b
}

// validateGoodsMovement checks what API_MATERIAL_DOCUMENT_SRV declares
// (lengths, Edm.Decimal(13,3)) and what a movement needs.
func (c *Client) validateGoodsMovement(gm GoodsMovement) error {
	v := validator{op: opPostGoodsMovement}
	v.required("MaterialDocumentHeaderText", gm.MaterialDocumentHeaderText, tasks.LenMaterialDocumentHeaderText)
	v.required("GoodsMovementCode", gm.GoodsMovementCode, 2)
	v.optional("ReferenceDocument", gm.ReferenceDocument, 16)
	v.date("PostingDate", gm.PostingDate)
	v.date("DocumentDate", gm.DocumentDate)
	switch n := len(gm.Items); {
	case n == 0:
		v.fail("at least one item is required")
	case n > maxGoodsMovementItems:
		v.fail("at most " + strconv.Itoa(maxGoodsMovementItems) + " items are allowed")
	}
	for i, it := range gm.Items {
		p := "Items[" + strconv.Itoa(i) + "]."
		v.required(p+"Material", it.Material, 40)
		v.required(p+"Plant", it.Plant, 4)
		v.optional(p+"StorageLocation", it.StorageLocation, 4)
		v.optional(p+"Batch", it.Batch, 10)
		v.required(p+"GoodsMovementType", it.GoodsMovementType, 3)
		v.optional(p+"PurchaseOrder", it.PurchaseOrder, 10)
		v.optional(p+"PurchaseOrderItem", it.PurchaseOrderItem, 5)
		v.optional(p+"CostCenter", it.CostCenter, 10)
		v.required(p+"EntryUnit", it.EntryUnit, 3)
		v.optional(p+"Text", it.Text, 50)
		q := it.QuantityInEntryUnit
		if !q.IsPositive() || -q.Exponent() > 3 || q.GreaterThanOrEqual(decimal.New(1, 10)) {
			v.fail(p + "QuantityInEntryUnit must be greater than zero, with at most 10 integer digits and 3 decimals")
		}
	}
	return v.err(c)
}

// FindGoodsMovement looks for the material document whose header text is
// headerText (the posting's reference, then its own text: see
// GoodsMovementHeaderText), with its items. Only the posting that wrote
// the reference finds the document by it. A cancellation document (its
// items name the document they reverse, which sapq's postings never do)
// never matches, even though SAP's Cancel keeps the original's header
// text; a document whose every item is cancelled is reported with
// ReversedBy (partly cancelled, it stands: it is adopted, for the posting
// must not be sent again). Should SAP hold several (which only a broken
// guard leaves behind), the first posted is the posting's. Match.Found is
// false when SAP answered and holds none; an error means SAP could not be
// read, and the caller must then not post.
//
// Movement types do not tell a cancellation apart: a posting of its own
// may use the reversing ones (goods movement code 06, movement type 102).
func (c *Client) FindGoodsMovement(ctx context.Context, headerText string) (Match, error) {
	v := validator{op: opFindGoodsMovement}
	// At least sapq's reference: an empty text would match every document
	// without one.
	if len(headerText) < tasks.LenSAPReference {
		v.fail("headerText must hold the posting's reference")
	}
	v.required("headerText", headerText, tasks.LenMaterialDocumentHeaderText)
	if err := v.err(c); err != nil {
		return Match{}, err
	}
	rows, err := c.query(ctx, opFindGoodsMovement, materialDocumentHeaderSet, url.Values{
		"$filter": {"MaterialDocumentHeaderText eq " + quote(headerText)},
		"$expand": {"to_MaterialDocumentItem"},
	})
	if err != nil {
		return Match{}, err
	}
	type item struct {
		MaterialDocument, MaterialDocumentYear                 string
		GoodsMovementIsCancelled                               bool
		ReversedMaterialDocument, ReversedMaterialDocumentYear string
	}
	type header struct {
		MaterialDocument, MaterialDocumentYear, MaterialDocumentHeaderText string
		Items                                                              struct {
			Results []item `json:"results"`
		} `json:"to_MaterialDocumentItem"`
	}
	var originals, cancellations []header
	for _, raw := range rows {
		var h header
		if err := json.Unmarshal(raw, &h); err != nil {
			return Match{}, c.unreadable(opFindGoodsMovement, err)
		}
		if h.MaterialDocumentHeaderText != headerText {
			// SAP ignored the filter: nothing can be concluded.
			return Match{}, c.unreadable(opFindGoodsMovement, fmt.Errorf("material document %s does not match the filter", h.MaterialDocument))
		}
		if h.MaterialDocument == "" || h.MaterialDocumentYear == "" {
			return Match{}, c.noNumber(opFindGoodsMovement)
		}
		if len(h.Items.Results) == 0 {
			// A header without its items cannot be judged (the expand
			// was not honoured): a cancellation cannot be told apart.
			return Match{}, c.unreadable(opFindGoodsMovement, fmt.Errorf("material document %s came without its items", h.MaterialDocument))
		}
		if slices.ContainsFunc(h.Items.Results, func(it item) bool { return it.ReversedMaterialDocument != "" }) {
			cancellations = append(cancellations, h)
			continue
		}
		originals = append(originals, h)
	}
	if len(originals) == 0 {
		return Match{}, nil
	}
	slices.SortFunc(originals, func(a, b header) int {
		if a.MaterialDocumentYear != b.MaterialDocumentYear {
			return strings.Compare(a.MaterialDocumentYear, b.MaterialDocumentYear)
		}
		return compareNumbers(a.MaterialDocument, b.MaterialDocument)
	})
	h := originals[0]
	doc := Document{Number: h.MaterialDocument, FiscalYear: h.MaterialDocumentYear}
	cancelled := !slices.ContainsFunc(h.Items.Results, func(it item) bool { return !it.GoodsMovementIsCancelled })
	by := ""
	for _, cd := range cancellations {
		if slices.ContainsFunc(cd.Items.Results, func(it item) bool {
			return alphaNumber(it.ReversedMaterialDocument) == alphaNumber(h.MaterialDocument) && it.ReversedMaterialDocumentYear == h.MaterialDocumentYear
		}) {
			by = cd.MaterialDocument
			break
		}
	}
	return matchOf(doc, cancelled, by), nil
}

// goodsMovementRequest maps a goods movement posting to
// A_MaterialDocumentHeader.
func goodsMovementRequest(p *tasks.GoodsMovement) (Request, error) {
	postDate, err1 := tasks.ParseDate(p.PostingDate)
	docDate, err2 := tasks.ParseDate(p.DocumentDate)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("dates: %v %v", err1, err2)
	}
	gm := GoodsMovement{
		GoodsMovementCode: p.GoodsMovementCode,
		PostingDate:       postDate,
		DocumentDate:      docDate,
		ReferenceDocument: p.Reference,
	}
	for i, it := range p.Items {
		q, err := tasks.ParseQuantity(it.Quantity)
		if err != nil {
			return nil, fmt.Errorf("items[%d].quantity: %w", i, err)
		}
		gm.Items = append(gm.Items, GoodsMovementItem{
			Material: it.Material, Plant: it.Plant, StorageLocation: it.StorageLocation, Batch: it.Batch,
			GoodsMovementType: it.MovementType, QuantityInEntryUnit: q, EntryUnit: it.Unit,
			PurchaseOrder: it.PurchaseOrder, PurchaseOrderItem: it.PurchaseOrderItem, CostCenter: it.CostCenter, Text: it.Text,
		})
	}
	return goodsMovementCall{gm: gm, headerText: p.HeaderText}, nil
}

// goodsMovementCall is the Request of a goods movement: the reference
// leads the material document's header text, the posting's own header
// text follows it.
type goodsMovementCall struct {
	gm         GoodsMovement
	headerText string
}

func (goodsMovementCall) Kind() tasks.Kind { return tasks.KindGoodsMovement }

// CompanyCode is "": a material document is posted in plants, and
// A_MaterialDocumentHeader names no company code.
func (goodsMovementCall) CompanyCode() string { return "" }

func (r goodsMovementCall) post(ctx context.Context, c *Client, s Send) (Document, error) {
	gm := r.gm
	gm.MaterialDocumentHeaderText = GoodsMovementHeaderText(s.Reference, r.headerText)
	return c.PostGoodsMovement(ctx, gm)
}

func (r goodsMovementCall) find(ctx context.Context, c *Client, reference string) (Match, error) {
	return c.FindGoodsMovement(ctx, GoodsMovementHeaderText(reference, r.headerText))
}
