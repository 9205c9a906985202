package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

var supplierInvoiceSet = &entitySet{
	name:     "A_SupplierInvoice",
	typeName: "A_SupplierInvoiceType",
	keys:     []string{"SupplierInvoice", "FiscalYear"},
	navs:     []string{"to_SupplierInvoiceItemGLAcct"},
	props: []string{"SupplierInvoice", "FiscalYear", "CompanyCode", "DocumentDate", "PostingDate", "CreationDate",
		"SupplierInvoiceIDByInvcgParty", "InvoicingParty", "DocumentCurrency", "InvoiceGrossAmount",
		"DocumentHeaderText", "PaymentTerms", "AccountingDocumentType", "SupplierInvoiceStatus",
		"AssignmentReference", "SupplierPostingLineItemText", "TaxIsCalculatedAutomatically",
		"ReverseDocument", "ReverseDocumentFiscalYear", "IsReversal", "IsReversed"},
}

var supplierInvoiceItemGLAcctSet = &entitySet{
	name:     "A_SupplierInvoiceItemGLAcct",
	typeName: "A_SupplierInvoiceItemGLAcctType",
	keys:     []string{"SupplierInvoice", "FiscalYear", "SupplierInvoiceItem"},
	props: []string{"SupplierInvoice", "FiscalYear", "SupplierInvoiceItem", "CompanyCode", "CostCenter", "GLAccount",
		"DocumentCurrency", "SupplierInvoiceItemAmount", "TaxCode", "DebitCreditCode", "SupplierInvoiceItemText",
		"AssignmentReference"},
}

// supplierInvoice is a posted supplier invoice (MM invoice document).
type supplierInvoice struct {
	SupplierInvoice               string
	FiscalYear                    string
	CompanyCode                   string
	DocumentDate                  time.Time
	PostingDate                   time.Time
	CreationDate                  time.Time
	InvoicingParty                string
	SupplierInvoiceIDByInvcgParty string
	DocumentCurrency              string
	InvoiceGrossAmount            decimal.Decimal
	TaxIsCalculatedAutomatically  bool
	AccountingDocumentType        string
	DocumentHeaderText            string
	PaymentTerms                  string
	AssignmentReference           string
	SupplierPostingLineItemText   string
	AccountingDocument            string // the FI document the invoice posted
	Items                         []supplierInvoiceItem
	// Reversal: IsReversal marks a reversal document; a reversed invoice
	// names its reversal in ReverseDocument.
	IsReversal, IsReversed                     bool
	ReverseDocument, ReverseDocumentFiscalYear string
}

type supplierInvoiceItem struct {
	SupplierInvoiceItem string
	CompanyCode         string
	GLAccount           string
	CostCenter          string
	DocumentCurrency    string
	Amount              decimal.Decimal
	TaxCode             string
	DebitCreditCode     string
	Text                string
	AssignmentReference string
}

func (inv *supplierInvoice) properties() object {
	return object{
		{"SupplierInvoice", inv.SupplierInvoice},
		{"FiscalYear", inv.FiscalYear},
		{"CompanyCode", inv.CompanyCode},
		{"DocumentDate", formatEdmDate(inv.DocumentDate)},
		{"PostingDate", formatEdmDate(inv.PostingDate)},
		{"CreationDate", formatEdmDate(inv.CreationDate)},
		{"SupplierInvoiceIDByInvcgParty", inv.SupplierInvoiceIDByInvcgParty},
		{"InvoicingParty", inv.InvoicingParty},
		{"DocumentCurrency", inv.DocumentCurrency},
		{"InvoiceGrossAmount", formatAmount(inv.InvoiceGrossAmount)},
		{"DocumentHeaderText", inv.DocumentHeaderText},
		{"PaymentTerms", inv.PaymentTerms},
		{"AccountingDocumentType", inv.AccountingDocumentType},
		{"SupplierInvoiceStatus", "5"}, // 5 = posted
		{"AssignmentReference", inv.AssignmentReference},
		{"SupplierPostingLineItemText", inv.SupplierPostingLineItemText},
		{"TaxIsCalculatedAutomatically", inv.TaxIsCalculatedAutomatically},
		{"ReverseDocument", inv.ReverseDocument},
		{"ReverseDocumentFiscalYear", inv.ReverseDocumentFiscalYear},
		{"IsReversal", inv.IsReversal},
		{"IsReversed", inv.IsReversed},
	}
}

func (inv *supplierInvoice) itemProperties(it supplierInvoiceItem) object {
	return object{
		{"SupplierInvoice", inv.SupplierInvoice},
		{"FiscalYear", inv.FiscalYear},
		{"SupplierInvoiceItem", it.SupplierInvoiceItem},
		{"CompanyCode", it.CompanyCode},
		{"CostCenter", it.CostCenter},
		{"GLAccount", it.GLAccount},
		{"DocumentCurrency", it.DocumentCurrency},
		{"SupplierInvoiceItemAmount", formatAmount(it.Amount)},
		{"TaxCode", it.TaxCode},
		{"DebitCreditCode", it.DebitCreditCode},
		{"SupplierInvoiceItemText", it.Text},
		{"AssignmentReference", it.AssignmentReference},
	}
}

// entity renders the invoice with its G/L items either inlined ($expand, and the
// answer to a deep insert) or deferred.
func (inv *supplierInvoice) entity(r *http.Request, svc *odataService, expand bool) object {
	props := inv.properties()
	nav := "to_SupplierInvoiceItemGLAcct"
	if expand {
		items := make([]object, len(inv.Items))
		for i, it := range inv.Items {
			items[i] = withMetadata(r, svc, supplierInvoiceItemGLAcctSet, inv.itemProperties(it))
		}
		return append(props, field{nav, object{{"results", items}}})
	}
	uri := serviceURL(r, svc) + supplierInvoiceSet.name + supplierInvoiceSet.keyPredicate(props)
	return append(props, field{nav, deferred(uri, nav)})
}

// --- request payload -----------------------------------------------------------------

// edmDate is an Edm.DateTime property of a request payload.
type edmDate struct {
	t   time.Time
	set bool
}

func (d *edmDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("date must be a string such as /Date(1732233600000)/")
	}
	t, err := parseEdmDateTime(s)
	if err != nil {
		return err
	}
	*d = edmDate{t: dateOnly(t), set: true}
	return nil
}

// edmDecimal is an Edm.Decimal property: OData V2 JSON carries decimals as strings,
// which keeps them exact; they are never converted to floating point.
type edmDecimal struct {
	d   decimal.Decimal
	set bool
}

func (d *edmDecimal) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("decimal must be a JSON string")
	}
	v, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid decimal %q", s)
	}
	if v.Exponent() < -3 && !v.Equal(v.Truncate(3)) {
		return fmt.Errorf("decimal %q has more than 3 decimal places", s)
	}
	*d = edmDecimal{d: v, set: true}
	return nil
}

// navResults is a to-many navigation property in a deep insert: SAP accepts both
// {"results":[...]} and a bare array.
type navResults[T any] []T

func (n *navResults[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]T)(n))
	}
	var wrapped struct {
		Results []T `json:"results"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return err
	}
	*n = wrapped.Results
	return nil
}

type supplierInvoicePayload struct {
	CompanyCode                   string                              `json:"CompanyCode"`
	DocumentDate                  edmDate                             `json:"DocumentDate"`
	PostingDate                   edmDate                             `json:"PostingDate"`
	InvoicingParty                string                              `json:"InvoicingParty"`
	SupplierInvoiceIDByInvcgParty string                              `json:"SupplierInvoiceIDByInvcgParty"`
	DocumentCurrency              string                              `json:"DocumentCurrency"`
	InvoiceGrossAmount            edmDecimal                          `json:"InvoiceGrossAmount"`
	TaxIsCalculatedAutomatically  bool                                `json:"TaxIsCalculatedAutomatically"`
	AccountingDocumentType        string                              `json:"AccountingDocumentType"`
	DocumentHeaderText            string                              `json:"DocumentHeaderText"`
	PaymentTerms                  string                              `json:"PaymentTerms"`
	AssignmentReference           string                              `json:"AssignmentReference"`
	SupplierPostingLineItemText   string                              `json:"SupplierPostingLineItemText"`
	Items                         navResults[supplierInvoiceItemJSON] `json:"to_SupplierInvoiceItemGLAcct"`
}

type supplierInvoiceItemJSON struct {
	SupplierInvoiceItem       string     `json:"SupplierInvoiceItem"`
	CompanyCode               string     `json:"CompanyCode"`
	GLAccount                 string     `json:"GLAccount"`
	CostCenter                string     `json:"CostCenter"`
	DocumentCurrency          string     `json:"DocumentCurrency"`
	SupplierInvoiceItemAmount edmDecimal `json:"SupplierInvoiceItemAmount"`
	TaxCode                   string     `json:"TaxCode"`
	DebitCreditCode           string     `json:"DebitCreditCode"`
	SupplierInvoiceItemText   string     `json:"SupplierInvoiceItemText"`
	AssignmentReference       string     `json:"AssignmentReference"`
}

// checkLengths enforces the EDMX MaxLength facets, which SAP Gateway checks before
// the application sees the data.
func (p *supplierInvoicePayload) checkLengths() error {
	type lim struct {
		name string
		v    string
		max  int
	}
	lims := []lim{
		{"CompanyCode", p.CompanyCode, 4}, {"InvoicingParty", p.InvoicingParty, 10},
		{"SupplierInvoiceIDByInvcgParty", p.SupplierInvoiceIDByInvcgParty, 16},
		{"DocumentCurrency", p.DocumentCurrency, 5}, {"AccountingDocumentType", p.AccountingDocumentType, 2},
		{"DocumentHeaderText", p.DocumentHeaderText, 25}, {"PaymentTerms", p.PaymentTerms, 4},
		{"AssignmentReference", p.AssignmentReference, 18}, {"SupplierPostingLineItemText", p.SupplierPostingLineItemText, 50},
	}
	for _, it := range p.Items {
		lims = append(lims,
			lim{"SupplierInvoiceItem", it.SupplierInvoiceItem, 4}, lim{"CompanyCode", it.CompanyCode, 4},
			lim{"GLAccount", it.GLAccount, 10}, lim{"CostCenter", it.CostCenter, 10},
			lim{"DocumentCurrency", it.DocumentCurrency, 5}, lim{"TaxCode", it.TaxCode, 2},
			lim{"DebitCreditCode", it.DebitCreditCode, 1}, lim{"SupplierInvoiceItemText", it.SupplierInvoiceItemText, 50},
			lim{"AssignmentReference", it.AssignmentReference, 18})
	}
	for _, l := range lims {
		if n := len([]rune(l.v)); n > l.max {
			return fmt.Errorf("value of property '%s' is too long (%d characters, maximum %d)", l.name, n, l.max)
		}
	}
	return nil
}

// --- service -------------------------------------------------------------------------

// SupplierInvoiceServicePath is where API_SUPPLIERINVOICE_PROCESS_SRV is served.
const SupplierInvoiceServicePath = "/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV"

var supplierInvoiceService = &odataService{
	name:        "API_SUPPLIERINVOICE_PROCESS_SRV",
	path:        SupplierInvoiceServicePath,
	componentID: "MM-IV-LIV",
	entitySets:  []*entitySet{supplierInvoiceSet, supplierInvoiceItemGLAcctSet},
}

func init() {
	supplierInvoiceSet.kind = KindSupplierInvoice
	supplierInvoiceSet.create = (*Server).createSupplierInvoice
	supplierInvoiceSet.objects = supplierInvoiceObjects
	supplierInvoiceSet.rows = func(s *Server, r *http.Request, svc *odataService, qo queryOptions) []object {
		invoices := s.books.invoices
		if ref, ok := qo.equals("AssignmentReference"); ok {
			invoices = s.books.invoicesByAssignment[ref]
		}
		out := make([]object, len(invoices))
		for i, inv := range invoices {
			out[i] = inv.entity(r, svc, qo.expand["to_SupplierInvoiceItemGLAcct"])
		}
		return out
	}
	supplierInvoiceItemGLAcctSet.rows = func(s *Server, _ *http.Request, _ *odataService, _ queryOptions) []object {
		var out []object
		for _, inv := range s.books.invoices {
			for _, it := range inv.Items {
				out = append(out, inv.itemProperties(it))
			}
		}
		return out
	}
}

// supplierInvoiceObjects: posting an invoice locks the invoicing party's
// account in the company code.
func supplierInvoiceObjects(body []byte) []string {
	var p struct{ CompanyCode, InvoicingParty string }
	if json.Unmarshal(body, &p) != nil {
		return nil
	}
	return partnerObjects(p.CompanyCode, nil, []string{p.InvoicingParty})
}

// createSupplierInvoice deserializes, validates and posts a deep insert.
func (s *Server) createSupplierInvoice(w http.ResponseWriter, r *http.Request, body []byte) {
	svc := supplierInvoiceService
	var p supplierInvoicePayload
	if !s.readDeepInsert(w, r, svc, body, &p) {
		return
	}

	s.mu.Lock()
	inv, msgs := s.validateSupplierInvoice(&p)
	if len(msgs) == 0 {
		s.postInvoice(inv)
	} else {
		s.stats.Rejected[KindSupplierInvoice]++
	}
	s.mu.Unlock()

	if len(msgs) > 0 {
		s.log.Info("sim: supplier invoice rejected", "code", msgs[0].Code, "message", msgs[0].Text,
			"reference", p.SupplierInvoiceIDByInvcgParty)
		s.writeODataError(w, http.StatusBadRequest, svc, msgs...)
		return
	}
	s.log.Info("sim: supplier invoice posted", "document", inv.SupplierInvoice, "fiscal_year", inv.FiscalYear,
		"company_code", inv.CompanyCode, "reference", inv.SupplierInvoiceIDByInvcgParty)

	entity := withMetadata(r, svc, supplierInvoiceSet, inv.entity(r, svc, true))
	created := msgInvoiceCreated(inv.SupplierInvoice)
	hdr, _ := json.Marshal(object{{"code", created.Code}, {"message", created.Text}, {"severity", "info"}, {"target", ""}, {"details", []any{}}})
	w.Header().Set("Location", serviceURL(r, svc)+supplierInvoiceSet.name+supplierInvoiceSet.keyPredicate(inv.properties()))
	w.Header().Set("sap-message", string(hdr))
	writeJSON(w, http.StatusCreated, object{{"d", entity}})
}

var currencyKey = regexp.MustCompile(`^[A-Z]{3}$`)

// validateSupplierInvoice runs SAP's checks and, when they pass, returns the invoice
// ready to post (without numbers). Callers hold s.mu.
func (s *Server) validateSupplierInvoice(p *supplierInvoicePayload) (*supplierInvoice, []sapMessage) {
	var msgs []sapMessage
	for _, req := range []struct {
		name string
		ok   bool
	}{
		{"CompanyCode", p.CompanyCode != ""}, {"DocumentDate", p.DocumentDate.set},
		{"PostingDate", p.PostingDate.set}, {"InvoicingParty", p.InvoicingParty != ""},
		{"DocumentCurrency", p.DocumentCurrency != ""}, {"InvoiceGrossAmount", p.InvoiceGrossAmount.set},
	} {
		if !req.ok {
			msgs = append(msgs, msgRequired(req.name))
		}
	}
	if len(msgs) > 0 {
		return nil, msgs
	}
	cc, ok := s.md.companyCode(p.CompanyCode)
	if !ok {
		return nil, []sapMessage{msgCompanyCodeUnknown(p.CompanyCode)}
	}
	posting := p.PostingDate.t
	if !s.periodOpen(posting) {
		msgs = append(msgs, msgPeriodClosed(posting))
	}
	if !s.md.hasSupplier(p.CompanyCode, p.InvoicingParty) {
		msgs = append(msgs, msgVendorUnknown(p.InvoicingParty, p.CompanyCode))
	}
	if !currencyKey.MatchString(p.DocumentCurrency) {
		msgs = append(msgs, msgCurrencyUnknown(p.DocumentCurrency))
	}
	inv := &supplierInvoice{
		FiscalYear:     fmt.Sprint(posting.Year()),
		CompanyCode:    p.CompanyCode,
		DocumentDate:   p.DocumentDate.t,
		PostingDate:    posting,
		CreationDate:   dateOnly(s.opts.Now()),
		InvoicingParty: p.InvoicingParty,
		// An UpperCase field: SAP converts it on input.
		SupplierInvoiceIDByInvcgParty: strings.ToUpper(p.SupplierInvoiceIDByInvcgParty),
		DocumentCurrency:              p.DocumentCurrency,
		InvoiceGrossAmount:            p.InvoiceGrossAmount.d,
		TaxIsCalculatedAutomatically:  p.TaxIsCalculatedAutomatically,
		AccountingDocumentType:        cmp.Or(p.AccountingDocumentType, "RE"),
		DocumentHeaderText:            p.DocumentHeaderText,
		PaymentTerms:                  p.PaymentTerms,
		AssignmentReference:           p.AssignmentReference,
		SupplierPostingLineItemText:   p.SupplierPostingLineItemText,
	}
	// The items must add up to the gross amount. Tax is not calculated: the
	// simulator treats item amounts as gross.
	balance := decimal.Zero
	for i, it := range p.Items {
		item := supplierInvoiceItem{
			SupplierInvoiceItem: cmp.Or(it.SupplierInvoiceItem, fmt.Sprint(i+1)),
			CompanyCode:         cmp.Or(it.CompanyCode, p.CompanyCode),
			GLAccount:           it.GLAccount,
			CostCenter:          it.CostCenter,
			DocumentCurrency:    cmp.Or(it.DocumentCurrency, p.DocumentCurrency),
			Amount:              it.SupplierInvoiceItemAmount.d,
			TaxCode:             it.TaxCode,
			DebitCreditCode:     cmp.Or(it.DebitCreditCode, "S"),
			Text:                it.SupplierInvoiceItemText,
			AssignmentReference: it.AssignmentReference,
		}
		if item.GLAccount == "" {
			msgs = append(msgs, msgRequired("GLAccount"))
		} else if !s.md.hasGLAccount(cc.ChartOfAccounts, item.GLAccount) {
			msgs = append(msgs, msgGLAccountUnknown(item.GLAccount, cc.ChartOfAccounts))
		}
		if item.CostCenter != "" && !s.md.hasCostCenter(cc.ControllingArea, item.CostCenter) {
			msgs = append(msgs, msgCostCenterUnknown(cc.ControllingArea, item.CostCenter, posting))
		}
		switch {
		case !it.SupplierInvoiceItemAmount.set:
			msgs = append(msgs, msgRequired("SupplierInvoiceItemAmount"))
		case item.Amount.IsNegative() || (item.DebitCreditCode != "S" && item.DebitCreditCode != "H"):
			msgs = append(msgs, msgDebitCredit(item.SupplierInvoiceItem, item.DebitCreditCode, item.Amount))
		case item.DebitCreditCode == "S":
			balance = balance.Add(item.Amount)
		default:
			balance = balance.Sub(item.Amount)
		}
		inv.Items = append(inv.Items, item)
	}
	if diff := balance.Sub(inv.InvoiceGrossAmount); !diff.IsZero() {
		msgs = append(msgs, msgBalance(diff, inv.DocumentCurrency))
	}
	if dup := s.findDuplicateInvoice(inv); dup != nil && !s.opts.NoDuplicateInvoiceCheck {
		msgs = append(msgs, msgDuplicateInvoice(dup.SupplierInvoice, dup.FiscalYear))
	}
	return inv, msgs
}

// findDuplicateInvoice applies SAP's duplicate invoice check: same company code,
// supplier, supplier's invoice number, gross amount and document date. Callers hold
// s.mu.
func (s *Server) findDuplicateInvoice(inv *supplierInvoice) *supplierInvoice {
	if inv.SupplierInvoiceIDByInvcgParty == "" {
		return nil
	}
	for _, old := range s.books.invoices {
		if old.CompanyCode == inv.CompanyCode &&
			alpha(old.InvoicingParty) == alpha(inv.InvoicingParty) &&
			old.SupplierInvoiceIDByInvcgParty == inv.SupplierInvoiceIDByInvcgParty &&
			old.InvoiceGrossAmount.Equal(inv.InvoiceGrossAmount) &&
			old.DocumentDate.Equal(inv.DocumentDate) {
			return old
		}
	}
	return nil
}

// postInvoice assigns the invoice its numbers and records it with its FI document:
// one vendor line crediting the payables account and one line per G/L item. Callers
// hold s.mu.
func (s *Server) postInvoice(inv *supplierInvoice) {
	cc := s.md.CompanyCodes[inv.CompanyCode]
	now := s.opts.Now()
	// MM invoice numbers are unique per fiscal year across company codes: the key of
	// A_SupplierInvoice has no company code.
	inv.SupplierInvoice = s.books.nextNumber("RBKP/"+inv.FiscalYear, firstSupplierInvoice)
	inv.AccountingDocument = s.books.nextNumber("RE/"+inv.CompanyCode+"/"+inv.FiscalYear, firstInvoiceFIDoc)
	s.books.addInvoice(inv)

	line := func(n int) *glLine {
		return &glLine{
			CompanyCode: inv.CompanyCode, FiscalYear: inv.FiscalYear, AccountingDocument: inv.AccountingDocument,
			LedgerGLLineItem: fmt.Sprintf("%06d", n), ChartOfAccounts: cc.ChartOfAccounts,
			TransactionCurrency: inv.DocumentCurrency, CompanyCodeCurrency: cc.Currency,
			PostingDate: inv.PostingDate, DocumentDate: inv.DocumentDate,
			AccountingDocumentType: inv.AccountingDocumentType,
			ReferenceDocumentType:  "RMRP", ReferenceDocument: inv.SupplierInvoice, BusinessTransactionType: "RMRP",
			CreatedByUser: s.opts.User, CreationDateTime: now,
		}
	}
	vendor := line(1)
	vendor.GLAccount, vendor.Supplier = cc.PayablesAccount, inv.InvoicingParty
	vendor.Amount, vendor.DebitCreditCode = inv.InvoiceGrossAmount.Neg(), "H"
	vendor.AssignmentReference, vendor.DocumentItemText = inv.AssignmentReference, inv.SupplierPostingLineItemText
	s.books.addLines(vendor)
	for i, it := range inv.Items {
		l := line(i + 2)
		l.GLAccount, l.CostCenter, l.DebitCreditCode = it.GLAccount, it.CostCenter, it.DebitCreditCode
		l.Amount = it.Amount
		if it.DebitCreditCode == "H" {
			l.Amount = it.Amount.Neg()
		}
		l.AssignmentReference, l.DocumentItemText = it.AssignmentReference, it.Text
		s.books.addLines(l)
	}
	s.books.ledger = append(s.books.ledger, LedgerDocument{
		Kind: KindSupplierInvoice, Document: inv.SupplierInvoice, FiscalYear: inv.FiscalYear,
		CompanyCode: inv.CompanyCode, Reference: inv.AssignmentReference, PostedAt: now,
	})
	s.stats.Posted[KindSupplierInvoice]++
}
