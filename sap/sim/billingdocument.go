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

// KindBillingDocument is a billing document (api_billingdocument, V4).
const KindBillingDocument Kind = "billing_document"

// Billing: SAP creates billing documents through the OData V4 action
// CreateFromSDDocument of api_billingdocument and shows them through the
// read-only V2 service API_BILLING_DOCUMENT_SRV, whose function import
// Cancel cancels one. The simulator bills sales orders in full
// (order-related billing, type F2) and, as SAP, bills an order only once
// while its billing document stands: a second request is refused with VF/016.
// A request's orders go into one billing document per sold-to party, sales
// area, billing type and date, as SAP's billing split does; the request is
// refused as a whole if one of its orders cannot be billed. The accounting
// document each billing document posts is numbered but its lines are not
// booked.

// BillingDocumentV4Path is where the V4 service api_billingdocument is
// served, and BillingDocumentServicePath the V2 API_BILLING_DOCUMENT_SRV.
const (
	BillingDocumentV4Path      = "/sap/opu/odata4/sap/api_billingdocument/srvd_a2x/sap/billingdocument/0001"
	BillingDocumentServicePath = "/sap/opu/odata/sap/API_BILLING_DOCUMENT_SRV"
	// defaultBillingType is what copy control derives from the standard
	// order: F2, the invoice.
	defaultBillingType = "F2"
	// cancellationType is the billing type of a cancellation of an F2.
	cancellationType = "S1"
)

var billingDocumentV4Service = &odataV4Service{
	name:        "API_BILLINGDOCUMENT",
	path:        BillingDocumentV4Path,
	componentID: "SD-BIL",
	entitySets:  []string{"BillingDocument", "BillingDocumentItem"},
}

var billingDocumentSet = &entitySet{
	name:     "A_BillingDocument",
	typeName: "A_BillingDocumentType",
	keys:     []string{"BillingDocument"},
	navs:     []string{"to_Item"},
	props: []string{"BillingDocument", "SDDocumentCategory", "BillingDocumentCategory", "BillingDocumentType",
		"CreationDate", "SalesOrganization", "DistributionChannel", "Division", "BillingDocumentDate",
		"BillingDocumentIsCancelled", "CancelledBillingDocument", "TotalNetAmount", "TransactionCurrency",
		"CompanyCode", "FiscalYear", "AccountingDocument", "AssignmentReference", "SoldToParty", "PayerParty",
		"AccountingPostingStatus"},
}

var billingDocumentItemSet = &entitySet{
	name:     "A_BillingDocumentItem",
	typeName: "A_BillingDocumentItemType",
	keys:     []string{"BillingDocument", "BillingDocumentItem"},
	props: []string{"BillingDocument", "BillingDocumentItem", "SalesDocumentItemCategory", "Material", "Plant",
		"BillingQuantity", "BillingQuantityUnit", "NetAmount", "TransactionCurrency", "ReferenceSDDocument",
		"ReferenceSDDocumentItem", "ReferenceSDDocumentCategory", "SalesDocument", "SalesDocumentItem"},
}

var billingDocumentService = &odataService{
	name:          "API_BILLING_DOCUMENT_SRV",
	path:          BillingDocumentServicePath,
	componentID:   "SD-BIL",
	entitySets:    []*entitySet{billingDocumentSet, billingDocumentItemSet},
	functionKinds: map[string]Kind{"Cancel": KindBillingDocument},
}

func init() {
	billingDocumentService.functions = map[string]func(*Server, http.ResponseWriter, *http.Request, []byte){
		"Cancel": (*Server).cancelBillingFunction,
	}
	billingDocumentV4Service.actions = map[string]v4Action{
		"BillingDocument/SAP__self.CreateFromSDDocument": {kind: KindBillingDocument, run: (*Server).createFromSDDocument},
	}
	billingDocumentSet.rows = func(s *Server, r *http.Request, svc *odataService, qo queryOptions) []object {
		docs := s.books.sales.billing
		if no, ok := qo.equals("BillingDocument"); ok {
			docs = nil
			if d := s.books.sales.billingByNo[alpha(no)]; d != nil {
				docs = []*billingDocument{d}
			}
		}
		out := make([]object, len(docs))
		for i, d := range docs {
			out[i] = d.entity(r, svc, qo.expand["to_Item"])
		}
		return out
	}
	billingDocumentItemSet.rows = func(s *Server, _ *http.Request, _ *odataService, qo queryOptions) []object {
		docs := s.books.sales.billing
		if ref, ok := qo.equals("ReferenceSDDocument"); ok {
			docs = s.books.sales.billingByRef[alpha(ref)]
		} else if no, ok := qo.equals("BillingDocument"); ok {
			docs = nil
			if d := s.books.sales.billingByNo[alpha(no)]; d != nil {
				docs = []*billingDocument{d}
			}
		}
		var out []object
		for _, d := range docs {
			for _, it := range d.Items {
				out = append(out, d.itemProperties(it))
			}
		}
		return out
	}
}

// billingDocument is an invoice, or the cancellation of one.
type billingDocument struct {
	BillingDocument, Type                            string
	SalesOrganization, DistributionChannel, Division string
	SoldTo, Currency                                 string
	CompanyCode, FiscalYear, AccountingDocument      string
	Date, CreatedAt                                  time.Time
	Items                                            []billingItem
	// IsCancelled marks an invoice that a cancellation document cancelled;
	// CancelledBillingDocument names, on a cancellation document, the
	// invoice it cancels.
	IsCancelled              bool
	CancelledBillingDocument string
}

type billingItem struct {
	Item, Material, Unit, Plant                  string
	ReferenceSDDocument, ReferenceSDDocumentItem string
	Quantity, NetAmount                          decimal.Decimal
}

func (d *billingDocument) total() decimal.Decimal {
	sum := decimal.Zero
	for _, it := range d.Items {
		sum = sum.Add(it.NetAmount)
	}
	return sum
}

// salesDocuments are the sales documents the document bills, sorted as
// numbers.
func (d *billingDocument) salesDocuments() []string {
	var out []string
	for _, it := range d.Items {
		if !slices.Contains(out, it.ReferenceSDDocument) {
			out = append(out, it.ReferenceSDDocument)
		}
	}
	sortNumbers(out)
	return out
}

func sortNumbers(s []string) {
	slices.SortFunc(s, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
}

// category is the SD document category: M invoice, N its cancellation.
func (d *billingDocument) category() string {
	if d.CancelledBillingDocument != "" {
		return "N"
	}
	return "M"
}

func (d *billingDocument) properties() object {
	return object{
		{"BillingDocument", d.BillingDocument},
		{"SDDocumentCategory", d.category()},
		{"BillingDocumentCategory", "A"}, // order-related billing
		{"BillingDocumentType", d.Type},
		{"CreationDate", formatEdmDate(dateOnly(d.CreatedAt))},
		{"SalesOrganization", d.SalesOrganization},
		{"DistributionChannel", d.DistributionChannel},
		{"Division", d.Division},
		{"BillingDocumentDate", formatEdmDate(d.Date)},
		{"BillingDocumentIsCancelled", d.IsCancelled},
		{"CancelledBillingDocument", d.CancelledBillingDocument},
		{"TotalNetAmount", formatAmount(d.total())},
		{"TransactionCurrency", d.Currency},
		{"CompanyCode", d.CompanyCode},
		{"FiscalYear", d.FiscalYear},
		{"AccountingDocument", d.AccountingDocument},
		{"AssignmentReference", ""},
		{"SoldToParty", d.SoldTo},
		{"PayerParty", d.SoldTo},
		{"AccountingPostingStatus", "C"}, // posted to accounting
	}
}

func (d *billingDocument) itemProperties(it billingItem) object {
	return object{
		{"BillingDocument", d.BillingDocument},
		{"BillingDocumentItem", it.Item},
		{"SalesDocumentItemCategory", "TAN"},
		{"Material", it.Material},
		{"Plant", it.Plant},
		{"BillingQuantity", it.Quantity.String()},
		{"BillingQuantityUnit", it.Unit},
		{"NetAmount", formatAmount(it.NetAmount)},
		{"TransactionCurrency", d.Currency},
		{"ReferenceSDDocument", it.ReferenceSDDocument},
		{"ReferenceSDDocumentItem", it.ReferenceSDDocumentItem},
		{"ReferenceSDDocumentCategory", "C"}, // a sales order
		{"SalesDocument", it.ReferenceSDDocument},
		{"SalesDocumentItem", it.ReferenceSDDocumentItem},
	}
}

func (d *billingDocument) entity(r *http.Request, svc *odataService, expand bool) object {
	props := d.properties()
	if expand {
		items := make([]object, len(d.Items))
		for i, it := range d.Items {
			items[i] = withMetadata(r, svc, billingDocumentItemSet, d.itemProperties(it))
		}
		return append(props, field{"to_Item", object{{"results", items}}})
	}
	uri := serviceURL(r, svc) + billingDocumentSet.name + billingDocumentSet.keyPredicate(props)
	return append(props, field{"to_Item", deferred(uri, "to_Item")})
}

// v4Entity is the document as the V4 action returns it: dates as
// Edm.Date, amounts as JSON numbers (exact: written from the decimal).
func (d *billingDocument) v4Entity() object {
	return object{
		{"BillingDocument", d.BillingDocument},
		{"SDDocumentCategory", d.category()},
		{"BillingDocumentCategory", "A"},
		{"BillingDocumentType", d.Type},
		{"SalesOrganization", d.SalesOrganization},
		{"DistributionChannel", d.DistributionChannel},
		{"Division", d.Division},
		{"BillingDocumentDate", d.Date.Format(time.DateOnly)},
		{"BillingDocumentIsCancelled", d.IsCancelled},
		{"CancelledBillingDocument", d.CancelledBillingDocument},
		{"TotalNetAmount", json.Number(formatAmount(d.total()))},
		{"TransactionCurrency", d.Currency},
		{"CompanyCode", d.CompanyCode},
		{"FiscalYear", d.FiscalYear},
		{"AccountingDocument", d.AccountingDocument},
		{"SoldToParty", d.SoldTo},
		{"PayerParty", d.SoldTo},
	}
}

// --- CreateFromSDDocument ------------------------------------------------------------

// edmDateV4 is an Edm.Date of a V4 payload: "2026-11-25" or null.
type edmDateV4 struct {
	t   time.Time
	set bool
}

func (d *edmDateV4) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("Edm.Date must be a string such as 2026-11-25")
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("invalid Edm.Date %q", s)
	}
	*d = edmDateV4{t: t, set: true}
	return nil
}

// createFromSDDocumentPayload is the action's parameters.
type createFromSDDocumentPayload struct {
	Control *struct {
		DefaultBillingDocumentDate    edmDateV4 `json:"DefaultBillingDocumentDate"`
		DefaultBillingDocumentType    string    `json:"DefaultBillingDocumentType"`
		AutomPostingToAcctgIsDisabled *bool     `json:"AutomPostingToAcctgIsDisabled"`
		CutOffBillingDocumentDate     edmDateV4 `json:"CutOffBillingDocumentDate"`
	} `json:"_Control"`
	Reference []struct {
		SDDocument          string    `json:"SDDocument"`
		BillingDocumentType string    `json:"BillingDocumentType"`
		BillingDocumentDate edmDateV4 `json:"BillingDocumentDate"`
		SalesOrganization   string    `json:"SalesOrganization"`
		SDDocumentCategory  string    `json:"SDDocumentCategory"`
		DestinationCountry  string    `json:"DestinationCountry"`
	} `json:"_Reference"`
}

func (p *createFromSDDocumentPayload) checkLengths() error {
	type lim struct {
		name, v string
		max     int
	}
	var lims []lim
	if p.Control != nil {
		lims = append(lims, lim{"DefaultBillingDocumentType", p.Control.DefaultBillingDocumentType, 4})
	}
	for _, r := range p.Reference {
		lims = append(lims, lim{"SDDocument", r.SDDocument, 10}, lim{"BillingDocumentType", r.BillingDocumentType, 4},
			lim{"SalesOrganization", r.SalesOrganization, 4}, lim{"SDDocumentCategory", r.SDDocumentCategory, 4},
			lim{"DestinationCountry", r.DestinationCountry, 3})
	}
	for _, l := range lims {
		if n := len([]rune(l.v)); n > l.max {
			return fmt.Errorf("value of property '%s' is too long (%d characters, maximum %d)", l.name, n, l.max)
		}
	}
	return nil
}

// billingRun is one billing document to create: the orders that go
// together.
type billingRun struct {
	billingType string
	date        time.Time
	orders      []*salesOrder
}

func (s *Server) createFromSDDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	svc := billingDocumentV4Service
	var p createFromSDDocumentPayload
	if err := strictUnmarshal(body, &p); err != nil {
		svc.writeError(s, w, http.StatusBadRequest, msgSyntax(err.Error()))
		return
	}
	if err := p.checkLengths(); err != nil {
		svc.writeError(s, w, http.StatusBadRequest, msgSyntax(err.Error()))
		return
	}
	s.mu.Lock()
	runs, msgs := s.planBilling(&p)
	var docs []*billingDocument
	if len(msgs) == 0 {
		for _, run := range runs {
			docs = append(docs, s.bill(run))
		}
	} else {
		s.stats.Rejected[KindBillingDocument]++
	}
	s.mu.Unlock()
	if len(msgs) > 0 {
		s.log.Info("sim: billing rejected", "code", msgs[0].Code, "message", msgs[0].Text)
		svc.writeError(s, w, http.StatusBadRequest, msgs...)
		return
	}
	value := make([]object, len(docs))
	saved := make([]sapMessage, len(docs))
	for i, d := range docs {
		value[i], saved[i] = d.v4Entity(), msgBillingSaved(d.BillingDocument)
		s.log.Info("sim: billing document saved", "document", d.BillingDocument, "sales_documents", d.salesDocuments())
	}
	setSAPMessages(w, v4Success, saved...)
	writeJSONV4(w, http.StatusOK, object{
		{"@odata.context", "../$metadata#Collection(SAP__self.BillingDocument_Type)"},
		{"value", value},
	})
}

// planBilling checks the action's orders and groups them into billing
// documents. Callers hold s.mu.
func (s *Server) planBilling(p *createFromSDDocumentPayload) ([]*billingRun, []sapMessage) {
	if len(p.Reference) == 0 {
		return nil, []sapMessage{msgRequired("_Reference")}
	}
	defType, defDate := "", dateOnly(s.opts.Now())
	if p.Control != nil {
		defType = p.Control.DefaultBillingDocumentType
		if p.Control.DefaultBillingDocumentDate.set {
			defDate = p.Control.DefaultBillingDocumentDate.t
		}
	}
	var msgs []sapMessage
	var runs []*billingRun
	seen := map[string]bool{}
	closed := map[string]bool{}
	for _, ref := range p.Reference {
		if ref.SDDocument == "" {
			msgs = append(msgs, msgRequired("SDDocument"))
			continue
		}
		no := alpha(ref.SDDocument)
		if seen[no] {
			continue // SAP collects a document once, however often it is named
		}
		seen[no] = true
		o := s.books.sales.orderByNo[no]
		switch {
		case o == nil:
			msgs = append(msgs, msgSDDocumentUnknown(ref.SDDocument))
			continue
		case o.BilledBy != "":
			msgs = append(msgs, msgAlreadyBilled(o.SalesOrder, o.BilledBy))
			continue
		}
		billingType := firstOf(ref.BillingDocumentType, defType, defaultBillingType)
		if billingType != defaultBillingType {
			msgs = append(msgs, msgBillingTypeUnknown(billingType))
			continue
		}
		date := defDate
		if ref.BillingDocumentDate.set {
			date = ref.BillingDocumentDate.t
		}
		// The billing document posts to accounting on its billing date.
		if !s.periodOpen(date) {
			if month := date.Format(periodLayout); !closed[month] {
				closed[month] = true
				msgs = append(msgs, msgPeriodClosed(date))
			}
			continue
		}
		var run *billingRun
		for _, r := range runs {
			first := r.orders[0]
			if r.billingType == billingType && r.date.Equal(date) && first.salesArea() == o.salesArea() &&
				alpha(first.SoldTo) == alpha(o.SoldTo) && first.Currency == o.Currency {
				run = r
			}
		}
		if run == nil {
			run = &billingRun{billingType: billingType, date: date}
			runs = append(runs, run)
		}
		run.orders = append(run.orders, o)
	}
	return runs, msgs
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// bill creates the billing document of a run and marks its orders billed.
// Callers hold s.mu.
func (s *Server) bill(run *billingRun) *billingDocument {
	first := run.orders[0]
	now := s.opts.Now()
	fy := strconv.Itoa(run.date.Year())
	d := &billingDocument{
		BillingDocument:   alpha(s.books.nextNumber("VBRK", firstBillingDocument)),
		Type:              run.billingType,
		SalesOrganization: first.SalesOrganization, DistributionChannel: first.DistributionChannel, Division: first.Division,
		SoldTo: first.SoldTo, Currency: first.Currency, CompanyCode: first.CompanyCode, FiscalYear: fy,
		AccountingDocument: s.books.nextNumber("RV/"+first.CompanyCode+"/"+fy, firstBillingFIDoc),
		Date:               run.date, CreatedAt: now,
	}
	for _, o := range run.orders {
		for _, it := range o.Items {
			d.Items = append(d.Items, billingItem{
				Item: strconv.Itoa((len(d.Items) + 1) * 10), Material: it.Material, Unit: it.Unit, Plant: it.Plant,
				ReferenceSDDocument: o.SalesOrder, ReferenceSDDocumentItem: it.Item,
				Quantity: it.Quantity, NetAmount: it.NetAmount,
			})
		}
		o.BilledBy = d.BillingDocument
	}
	s.addBillingDocument(d)
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindBillingDocument, Document: d.BillingDocument, FiscalYear: d.FiscalYear, CompanyCode: d.CompanyCode,
		SalesDocuments: d.salesDocuments(), PostedAt: now,
	})
	s.stats.Posted[KindBillingDocument]++
	return d
}

// addBillingDocument books a billing document. Callers hold s.mu.
func (s *Server) addBillingDocument(d *billingDocument) {
	b := &s.books.sales
	b.billing = append(b.billing, d)
	b.billingByNo[d.BillingDocument] = d
	for _, sd := range d.salesDocuments() {
		b.billingByRef[sd] = append(b.billingByRef[sd], d)
	}
}

// --- Cancel --------------------------------------------------------------------------

// cancelBillingFunction is the V2 function import Cancel: POST
// .../Cancel?BillingDocument='90000000'.
func (s *Server) cancelBillingFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	svc := billingDocumentService
	no := strings.Trim(r.URL.Query().Get("BillingDocument"), "'")
	if no == "" {
		s.writeODataError(w, http.StatusBadRequest, svc, msgRequired("BillingDocument"))
		return
	}
	s.mu.Lock()
	c, msg := s.cancelBilling(no)
	s.mu.Unlock()
	if msg != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, *msg)
		return
	}
	saved := msgCancellationSaved(c.BillingDocument)
	class, number, _ := strings.Cut(saved.Code, "/")
	writeJSON(w, http.StatusOK, object{{"d", object{{"results", []object{{
		{"BillingDocument", c.CancelledBillingDocument},
		{"CancellationBillingDocument", c.BillingDocument},
		{"SystemMessageType", "S"},
		{"SystemMessageIdentification", class},
		{"SystemMessageNumber", number},
		{"SystemMessageText", saved.Text},
	}}}}}})
}

// cancelBilling cancels an invoice the way VF11 does: a cancellation
// document (S1) with the same items, the invoice marked cancelled and its
// orders open for billing again; both are in the ledger, the cancellation
// as the reversal of the invoice. Callers hold s.mu.
func (s *Server) cancelBilling(number string) (*billingDocument, *sapMessage) {
	d := s.books.sales.billingByNo[alpha(number)]
	switch {
	case d == nil:
		m := msgSDDocumentUnknown(number)
		return nil, &m
	case d.IsCancelled || d.CancelledBillingDocument != "":
		m := msgAlreadyCancelled(d.BillingDocument)
		return nil, &m
	}
	now := s.opts.Now()
	c := *d
	c.BillingDocument = alpha(s.books.nextNumber("VBRK", firstBillingDocument))
	c.Type, c.CancelledBillingDocument, c.CreatedAt = cancellationType, d.BillingDocument, now
	c.AccountingDocument = s.books.nextNumber("RV/"+d.CompanyCode+"/"+d.FiscalYear, firstBillingFIDoc)
	c.Items = slices.Clone(d.Items)
	d.IsCancelled = true
	s.addBillingDocument(&c)
	for _, sd := range d.salesDocuments() {
		if o := s.books.sales.orderByNo[sd]; o != nil && o.BilledBy == d.BillingDocument {
			o.BilledBy = ""
		}
	}
	for i := range s.books.ledger {
		if e := &s.books.ledger[i]; e.Kind == KindBillingDocument && e.Document == d.BillingDocument {
			e.ReversedBy = c.BillingDocument
		}
	}
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindBillingDocument, Document: c.BillingDocument, FiscalYear: c.FiscalYear, CompanyCode: c.CompanyCode,
		SalesDocuments: d.salesDocuments(), PostedAt: now, Reverses: d.BillingDocument,
	})
	s.log.Info("sim: billing document cancelled", "document", d.BillingDocument, "cancellation", c.BillingDocument)
	return &c, nil
}

// CountBillingDocuments returns how many billing documents bill exactly the
// given sales documents, cancellation documents not counted (cancelled
// invoices are). Exactly-once tests of billing assert it is 1: billing
// documents carry no reference of sapq's.
func (s *Server) CountBillingDocuments(salesDocuments ...string) int {
	want := make([]string, 0, len(salesDocuments))
	for _, sd := range salesDocuments {
		if n := alpha(sd); !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	sortNumbers(want)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.books.ledger {
		if d.Kind == KindBillingDocument && d.Reverses == "" && slices.Equal(d.SalesDocuments, want) {
			n++
		}
	}
	return n
}
