package sim

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Journal entries arrive through the SOAP service JournalEntryCreateRequestConfirmation_In
// (SOAP 1.1, synchronous). Only the root element of the body is qualified with the
// SFIN namespace; its descendants are unqualified (elementFormDefault="unqualified").

const (
	soapEnvNS = "http://schemas.xmlsoap.org/soap/envelope/"
	sfinNS    = "http://sap.com/xi/SAPSCORE/SFIN"
)

// --- request -------------------------------------------------------------------------

type soapRequestEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Request *jeBulkRequest `xml:"http://sap.com/xi/SAPSCORE/SFIN JournalEntryBulkCreateRequest"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// The XMLName fields record each element's namespace so that qualified children,
// which SAP's deserializer does not recognise, can be refused.
type jeBulkRequest struct {
	MessageHeader jeMessageHeader `xml:"MessageHeader"`
	Requests      []jeRequest     `xml:"JournalEntryCreateRequest"`
}

type jeMessageHeader struct {
	XMLName           xml.Name
	ID                string `xml:"ID"`
	UUID              string `xml:"UUID"`
	CreationDateTime  string `xml:"CreationDateTime"`
	TestDataIndicator string `xml:"TestDataIndicator"`
}

type jeRequest struct {
	XMLName       xml.Name
	MessageHeader jeMessageHeader `xml:"MessageHeader"`
	JournalEntry  jeEntry         `xml:"JournalEntry"`
}

type jeEntry struct {
	XMLName                       xml.Name
	OriginalReferenceDocumentType string          `xml:"OriginalReferenceDocumentType"`
	BusinessTransactionType       string          `xml:"BusinessTransactionType"`
	AccountingDocumentType        string          `xml:"AccountingDocumentType"`
	DocumentReferenceID           string          `xml:"DocumentReferenceID"`
	DocumentHeaderText            string          `xml:"DocumentHeaderText"`
	ReversalReason                string          `xml:"ReversalReason"`
	ReversalReferenceDocument     string          `xml:"ReversalReferenceDocument"`
	CreatedByUser                 string          `xml:"CreatedByUser"`
	CompanyCode                   string          `xml:"CompanyCode"`
	DocumentDate                  string          `xml:"DocumentDate"`
	PostingDate                   string          `xml:"PostingDate"`
	Items                         []jeItem        `xml:"Item"`
	DebtorItems                   []jePartnerItem `xml:"DebtorItem"`
	CreditorItems                 []jePartnerItem `xml:"CreditorItem"`
}

// jePartnerItem is a customer line (DebtorItem, Debtor) or a supplier line
// (CreditorItem, Creditor).
type jePartnerItem struct {
	XMLName               xml.Name
	ReferenceDocumentItem string   `xml:"ReferenceDocumentItem"`
	Debtor                string   `xml:"Debtor"`
	Creditor              string   `xml:"Creditor"`
	Amount                jeAmount `xml:"AmountInTransactionCurrency"`
	DebitCreditCode       string   `xml:"DebitCreditCode"`
	DocumentItemText      string   `xml:"DocumentItemText"`
	AssignmentReference   string   `xml:"AssignmentReference"`
}

type jeItem struct {
	XMLName               xml.Name
	ReferenceDocumentItem string   `xml:"ReferenceDocumentItem"`
	GLAccount             string   `xml:"GLAccount"`
	Amount                jeAmount `xml:"AmountInTransactionCurrency"`
	DebitCreditCode       string   `xml:"DebitCreditCode"`
	DocumentItemText      string   `xml:"DocumentItemText"`
	AssignmentReference   string   `xml:"AssignmentReference"`
	AccountAssignment     struct {
		XMLName    xml.Name
		CostCenter string `xml:"CostCenter"`
	} `xml:"AccountAssignment"`
}

type jeAmount struct {
	Value    string `xml:",chardata"`
	Currency string `xml:"currencyCode,attr"`
}

// parsedEntry is a journal entry after deserialization: dates and amounts
// typed, and its G/L, customer and supplier lines in one list.
type parsedEntry struct {
	header       jeMessageHeader
	entry        jeEntry
	documentDate time.Time
	postingDate  time.Time
	lines        []entryLine
}

// entryLine is one line of a journal entry, of whichever list.
type entryLine struct {
	itemNo                string
	glAccount             string // a G/L line's account
	customer, supplier    string // a customer's or supplier's line
	costCenter            string
	amount                decimal.Decimal
	currency, debitCredit string
	text, assignment      string
}

// deserialize turns the envelope into typed journal entries. Its errors are what
// SAP's SOAP runtime reports as a Client fault: the request never reaches the
// application, so nothing is posted.
func deserializeJournalEntries(body []byte) (*jeBulkRequest, []parsedEntry, error) {
	var env soapRequestEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, nil, fmt.Errorf("XML deserialization failed: %v", err)
	}
	bulk := env.Body.Request
	if bulk == nil {
		return nil, nil, fmt.Errorf("no element {%s}JournalEntryBulkCreateRequest in SOAP body", sfinNS)
	}
	if err := checkUnqualified(bulk.MessageHeader.XMLName); err != nil {
		return nil, nil, err
	}
	if err := checkUUID(bulk.MessageHeader.UUID); err != nil {
		return nil, nil, err
	}
	if len(bulk.Requests) == 0 {
		return nil, nil, fmt.Errorf("element JournalEntryCreateRequest missing")
	}
	entries := make([]parsedEntry, 0, len(bulk.Requests))
	for _, req := range bulk.Requests {
		je := req.JournalEntry
		for _, n := range []xml.Name{req.XMLName, req.MessageHeader.XMLName, je.XMLName} {
			if err := checkUnqualified(n); err != nil {
				return nil, nil, err
			}
		}
		if err := checkUUID(req.MessageHeader.UUID); err != nil {
			return nil, nil, err
		}
		p := parsedEntry{header: req.MessageHeader, entry: je}
		var err error
		if p.documentDate, err = parseXSDDate("DocumentDate", je.DocumentDate); err != nil {
			return nil, nil, err
		}
		if p.postingDate, err = parseXSDDate("PostingDate", je.PostingDate); err != nil {
			return nil, nil, err
		}
		lims := []struct {
			name, v string
			max     int
		}{
			{"CompanyCode", je.CompanyCode, 4}, {"DocumentReferenceID", je.DocumentReferenceID, 16},
			{"DocumentHeaderText", je.DocumentHeaderText, 25}, {"CreatedByUser", je.CreatedByUser, 12},
			{"AccountingDocumentType", je.AccountingDocumentType, 2}, {"BusinessTransactionType", je.BusinessTransactionType, 4},
			{"OriginalReferenceDocumentType", je.OriginalReferenceDocumentType, 5},
		}
		for i, it := range je.Items {
			if err := checkUnqualified(it.XMLName); err != nil {
				return nil, nil, err
			}
			lims = append(lims, []struct {
				name, v string
				max     int
			}{
				{"GLAccount", it.GLAccount, 10}, {"DocumentItemText", it.DocumentItemText, 50},
				{"AssignmentReference", it.AssignmentReference, 18}, {"CostCenter", it.AccountAssignment.CostCenter, 10},
				{"DebitCreditCode", it.DebitCreditCode, 1}, {"currencyCode", it.Amount.Currency, 3},
			}...)
			amount, err := decimal.NewFromString(strings.TrimSpace(it.Amount.Value))
			if err != nil {
				return nil, nil, fmt.Errorf("invalid value %q for AmountInTransactionCurrency", it.Amount.Value)
			}
			p.lines = append(p.lines, entryLine{itemNo: cmp.Or(it.ReferenceDocumentItem, fmt.Sprint(i+1)), glAccount: it.GLAccount,
				costCenter: it.AccountAssignment.CostCenter, amount: amount, currency: it.Amount.Currency, debitCredit: it.DebitCreditCode,
				text: it.DocumentItemText, assignment: it.AssignmentReference})
		}
		for _, list := range [][]jePartnerItem{je.DebtorItems, je.CreditorItems} {
			for _, it := range list {
				if err := checkUnqualified(it.XMLName); err != nil {
					return nil, nil, err
				}
				lims = append(lims, []struct {
					name, v string
					max     int
				}{
					{"Debtor", it.Debtor, 10}, {"Creditor", it.Creditor, 10}, {"DocumentItemText", it.DocumentItemText, 50},
					{"AssignmentReference", it.AssignmentReference, 18}, {"DebitCreditCode", it.DebitCreditCode, 1},
					{"currencyCode", it.Amount.Currency, 3},
				}...)
				amount, err := decimal.NewFromString(strings.TrimSpace(it.Amount.Value))
				if err != nil {
					return nil, nil, fmt.Errorf("invalid value %q for AmountInTransactionCurrency", it.Amount.Value)
				}
				p.lines = append(p.lines, entryLine{itemNo: cmp.Or(it.ReferenceDocumentItem, fmt.Sprint(len(p.lines)+1)),
					customer: it.Debtor, supplier: it.Creditor, amount: amount, currency: it.Amount.Currency,
					debitCredit: it.DebitCreditCode, text: it.DocumentItemText, assignment: it.AssignmentReference})
			}
		}
		for _, l := range lims {
			if n := len([]rune(l.v)); n > l.max {
				return nil, nil, fmt.Errorf("data loss: value of %s has %d characters, maximum is %d", l.name, n, l.max)
			}
		}
		entries = append(entries, p)
	}
	return bulk, entries, nil
}

func checkUnqualified(n xml.Name) error {
	if n.Space != "" {
		return fmt.Errorf("element {%s}%s not expected (child elements are unqualified)", n.Space, n.Local)
	}
	return nil
}

// checkUUID enforces the UUID type of message headers (36 characters, 8-4-4-4-12).
func checkUUID(s string) error {
	if s == "" {
		return nil
	}
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return fmt.Errorf("invalid value %q for UUID", s)
	}
	return nil
}

func parseXSDDate(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil // missing: reported by validation as a required field
	}
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid value %q for %s (xsd:date)", s, name)
	}
	return t, nil
}

// --- response ------------------------------------------------------------------------

type soapResponseEnvelope struct {
	XMLName xml.Name `xml:"soap-env:Envelope"`
	NS      string   `xml:"xmlns:soap-env,attr"`
	Header  struct{} `xml:"soap-env:Header"`
	Body    struct {
		Confirmation *jeBulkConfirmation
		Fault        *soapFault
	} `xml:"soap-env:Body"`
}

type soapFault struct {
	XMLName     xml.Name `xml:"soap-env:Fault"`
	FaultCode   string   `xml:"faultcode"`
	FaultString string   `xml:"faultstring"`
	Detail      struct{} `xml:"detail"`
}

type jeBulkConfirmation struct {
	XMLName       xml.Name         `xml:"n0:JournalEntryBulkCreateConfirmation"`
	NS            string           `xml:"xmlns:n0,attr"`
	MessageHeader confHeader       `xml:"MessageHeader"`
	Confirmations []jeConfirmation `xml:"JournalEntryCreateConfirmation"`
	Log           confLog          `xml:"Log"`
}

type confHeader struct {
	UUID             string `xml:"UUID,omitempty"`
	ReferenceUUID    string `xml:"ReferenceUUID,omitempty"`
	CreationDateTime string `xml:"CreationDateTime"`
}

type jeConfirmation struct {
	MessageHeader confHeader        `xml:"MessageHeader"`
	Document      jeConfirmationDoc `xml:"JournalEntryCreateConfirmation"`
	Log           confLog           `xml:"Log"`
}

type jeConfirmationDoc struct {
	AccountingDocument string `xml:"AccountingDocument"`
	CompanyCode        string `xml:"CompanyCode"`
	FiscalYear         string `xml:"FiscalYear"`
}

type confLog struct {
	BusinessDocumentProcessingResultCode string    `xml:"BusinessDocumentProcessingResultCode,omitempty"`
	MaximumLogItemSeverityCode           string    `xml:"MaximumLogItemSeverityCode"`
	Items                                []logItem `xml:"Item"`
}

type logItem struct {
	TypeID       string `xml:"TypeID"`
	SeverityCode string `xml:"SeverityCode"`
	Note         string `xml:"Note"`
}

// Log item severities.
const (
	severitySuccess = "1"
	severityError   = "3"
)

func marshalEnvelope(env soapResponseEnvelope) []byte {
	env.NS = soapEnvNS
	b, err := xml.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("sim: marshal SOAP response: %v", err)) // our own types only
	}
	return append([]byte(xml.Header), b...)
}

func writeSOAP(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

func writeSOAPFault(w http.ResponseWriter, status int, code, text string) {
	var env soapResponseEnvelope
	env.Body.Fault = &soapFault{FaultCode: "soap-env:" + code, FaultString: text}
	writeSOAP(w, status, marshalEnvelope(env))
}

// --- service -------------------------------------------------------------------------

// JournalEntrySOAPPath is where JournalEntryCreateRequestConfirmation_In is served.
const JournalEntrySOAPPath = "/sap/bc/srt/scs_ext/sap/journalentrycreaterequestconfi"

// journalEntryService is the SOAP endpoint of journal entries.
var journalEntryService soapEndpoint = JournalEntrySOAPPath

// soapEndpoint serves journal entries at a path.
type soapEndpoint string

func (p soapEndpoint) mount(s *Server, mux *http.ServeMux) {
	mux.HandleFunc(string(p), s.serveJournalEntry)
	mux.HandleFunc(string(p)+"/", s.serveJournalEntry)
}

func (s *Server) serveJournalEntry(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeSOAPFault(w, http.StatusMethodNotAllowed, "Client", "Only POST is supported")
		return
	}
	s.countAttempt(KindJournalEntry)
	body, ok := readBody(w, r, func() {
		writeSOAPFault(w, http.StatusRequestEntityTooLarge, "Client", "Request body too large")
	})
	if !ok {
		return
	}
	fault, latency, ok := s.admit(w, KindJournalEntry, func() {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "Service Unavailable")
	})
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/xml" {
		writeSOAPFault(w, http.StatusUnsupportedMediaType, "Client", "SOAP 1.1 requests must have Content-Type text/xml")
		return
	}
	bulk, entries, err := deserializeJournalEntries(body)
	if err != nil {
		s.log.Info("sim: journal entry request malformed", "err", err)
		writeSOAPFault(w, http.StatusInternalServerError, "Client", "Web service processing error: "+err.Error())
		return
	}
	requestUUID := bulk.MessageHeader.UUID

	// Enterprise Services process a message UUID once. A repeat gets the
	// original answer, whatever it was: a refusal too, so a corrected resend
	// needs a new UUID. A repeat that arrives while the first is still being
	// processed is refused without being processed.
	if requestUUID != "" {
		replay, busy := s.startMessage(requestUUID)
		switch {
		case replay != nil:
			s.log.Info("sim: journal entry request already processed; answering with original response", "uuid", requestUUID)
			s.answerJournalEntry(w, r, fault, replay)
			return
		case busy:
			s.log.Info("sim: journal entry request with this UUID is being processed", "uuid", requestUUID)
			writeSOAPFault(w, http.StatusInternalServerError, "Server",
				"Message with UUID "+requestUUID+" is currently being processed; it cannot be processed twice")
			return
		}
		defer s.endMessage(requestUUID)
	}
	release, ok := s.enqueue(KindJournalEntry, journalEntryObjects(entries))
	if !ok {
		// Refused like an injected lock: answered, and kept for the
		// UUID, as SAP keeps every answer.
		s.answerJournalEntry(w, r, "", s.processJournalEntries(entries, requestUUID, true, false))
		return
	}
	defer release()
	s.work(r, KindJournalEntry, fault, latency)
	testRun := strings.TrimSpace(bulk.MessageHeader.TestDataIndicator) == "true"
	s.answerJournalEntry(w, r, fault, s.processJournalEntries(entries, requestUUID, fault == FaultLock, testRun))
}

// journalEntryObjects: a journal entry locks the accounts of the customers
// and suppliers it has lines for.
func journalEntryObjects(entries []parsedEntry) []string {
	var out []string
	for _, p := range entries {
		var customers, suppliers []string
		for _, l := range p.lines {
			customers, suppliers = append(customers, l.customer), append(suppliers, l.supplier)
		}
		out = append(out, partnerObjects(p.entry.CompanyCode, customers, suppliers)...)
	}
	return out
}

// answerJournalEntry sends SAP's answer, or loses it for an ambiguous fault.
func (s *Server) answerJournalEntry(w http.ResponseWriter, r *http.Request, fault FaultKind, resp []byte) {
	switch fault {
	case FaultAmbiguous:
		s.loseResponse(w, r, KindJournalEntry)
	case FaultServerError:
		writeSOAPFault(w, http.StatusInternalServerError, "Server", "Web service processing error; more details in the web service error log on provider side")
	default:
		writeSOAP(w, http.StatusOK, resp)
	}
}

// startMessage registers a message UUID as being processed. It returns the
// stored response of a UUID processed before, or busy when a request with it
// is being processed now.
func (s *Server) startMessage(id string) (replay []byte, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp, ok := s.books.soapReplies[id]; ok {
		s.stats.Replayed++
		return resp, false
	}
	if s.books.soapInFlight[id] {
		return nil, true
	}
	s.books.soapInFlight[id] = true
	return nil, false
}

func (s *Server) endMessage(id string) {
	s.mu.Lock()
	delete(s.books.soapInFlight, id)
	s.mu.Unlock()
}

// processJournalEntries validates and posts the journal entries of one bulk request
// and returns the confirmation, which is kept for replays of the request's UUID.
// With locked set, the (injected) lock error is reported for every entry instead and
// nothing is posted. A test run (MessageHeader/TestDataIndicator) checks the
// entries and posts nothing, answering "Document check without errors" for
// each sound one, with no document number.
func (s *Server) processJournalEntries(entries []parsedEntry, requestUUID string, locked, testRun bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	conf := &jeBulkConfirmation{
		NS:            sfinNS,
		MessageHeader: confHeader{UUID: uuid.NewString(), ReferenceUUID: requestUUID, CreationDateTime: now.Format(time.RFC3339)},
	}
	failed := 0
	for _, p := range entries {
		c := jeConfirmation{MessageHeader: confHeader{ReferenceUUID: cmp.Or(p.header.UUID, requestUUID), CreationDateTime: now.Format(time.RFC3339)}}
		var msgs []sapMessage
		if locked {
			msgs = []sapMessage{msgLocked()}
		} else {
			msgs = s.validateJournalEntry(&p)
		}
		if len(msgs) > 0 {
			failed++
			if !locked {
				s.stats.Rejected[KindJournalEntry]++
			}
			c.Document = jeConfirmationDoc{AccountingDocument: "0000000000", CompanyCode: p.entry.CompanyCode, FiscalYear: "0000"}
			c.Log = confLog{MaximumLogItemSeverityCode: severityError}
			for _, m := range append([]sapMessage{msgJournalEntryError(s.logicalSystem())}, msgs...) {
				c.Log.Items = append(c.Log.Items, logItem{TypeID: m.typeID(), SeverityCode: severityError, Note: m.Text})
			}
			s.log.Info("sim: journal entry rejected", "code", msgs[0].Code, "message", msgs[0].Text, "uuid", requestUUID)
		} else if testRun {
			c.Document = jeConfirmationDoc{AccountingDocument: "", CompanyCode: p.entry.CompanyCode, FiscalYear: fmt.Sprint(p.postingDate.Year())}
			m := msgJournalEntryChecked()
			c.Log = confLog{MaximumLogItemSeverityCode: severitySuccess, Items: []logItem{{TypeID: m.typeID(), SeverityCode: severitySuccess, Note: m.Text}}}
			s.log.Info("sim: journal entry checked in a test run; nothing posted", "company_code", p.entry.CompanyCode, "uuid", requestUUID)
		} else {
			doc := s.postJournalEntry(&p)
			c.Document = jeConfirmationDoc{AccountingDocument: doc, CompanyCode: p.entry.CompanyCode, FiscalYear: fmt.Sprint(p.postingDate.Year())}
			m := msgJournalEntryPosted(doc, p.entry.CompanyCode, c.Document.FiscalYear, s.logicalSystem())
			c.Log = confLog{MaximumLogItemSeverityCode: severitySuccess, Items: []logItem{{TypeID: m.typeID(), SeverityCode: severitySuccess, Note: m.Text}}}
			s.log.Info("sim: journal entry posted", "document", doc, "company_code", p.entry.CompanyCode,
				"fiscal_year", c.Document.FiscalYear, "uuid", requestUUID)
		}
		conf.Confirmations = append(conf.Confirmations, c)
	}
	if failed == 0 {
		conf.Log = confLog{BusinessDocumentProcessingResultCode: "5", MaximumLogItemSeverityCode: severitySuccess}
	} else {
		conf.Log = confLog{MaximumLogItemSeverityCode: severityError}
	}
	var env soapResponseEnvelope
	env.Body.Confirmation = conf
	resp := marshalEnvelope(env)
	if requestUUID != "" {
		s.books.soapReplies[requestUUID] = resp
	}
	return resp
}

// validateJournalEntry runs the document checks of FI posting. Callers hold s.mu.
func (s *Server) validateJournalEntry(p *parsedEntry) []sapMessage {
	je := &p.entry
	var msgs []sapMessage
	for _, req := range []struct {
		name string
		ok   bool
	}{
		{"OriginalReferenceDocumentType", je.OriginalReferenceDocumentType != ""},
		{"BusinessTransactionType", je.BusinessTransactionType != ""},
		{"AccountingDocumentType", je.AccountingDocumentType != ""},
		{"CreatedByUser", je.CreatedByUser != ""},
		{"CompanyCode", je.CompanyCode != ""},
		{"DocumentDate", !p.documentDate.IsZero()},
		{"PostingDate", !p.postingDate.IsZero()},
		{"Item", len(p.lines) > 0},
	} {
		if !req.ok {
			msgs = append(msgs, msgRequired(req.name))
		}
	}
	if len(msgs) > 0 {
		return msgs
	}
	cc, ok := s.md.companyCode(je.CompanyCode)
	if !ok {
		return []sapMessage{msgCompanyCodeUnknown(je.CompanyCode)}
	}
	if !s.periodOpen(p.postingDate) {
		msgs = append(msgs, msgPeriodClosed(p.postingDate))
	}
	balance := decimal.Zero
	currency := ""
	for _, l := range p.lines {
		switch {
		case l.customer != "":
			if !s.md.hasCustomer(je.CompanyCode, l.customer) {
				msgs = append(msgs, msgCustomerUnknown(l.customer, je.CompanyCode))
			}
		case l.supplier != "":
			if !s.md.hasSupplier(je.CompanyCode, l.supplier) {
				msgs = append(msgs, msgVendorUnknown(l.supplier, je.CompanyCode))
			}
		case l.glAccount == "":
			msgs = append(msgs, msgRequired("GLAccount"))
		case !s.md.hasGLAccount(cc.ChartOfAccounts, l.glAccount):
			msgs = append(msgs, msgGLAccountUnknown(l.glAccount, cc.ChartOfAccounts))
		}
		if l.costCenter != "" && !s.md.hasCostCenter(cc.ControllingArea, l.costCenter) {
			msgs = append(msgs, msgCostCenterUnknown(cc.ControllingArea, l.costCenter, p.postingDate))
		}
		if !currencyKey.MatchString(l.currency) {
			msgs = append(msgs, msgCurrencyUnknown(l.currency))
		}
		currency = cmp.Or(currency, l.currency)
		switch l.debitCredit {
		case "", "S", "H":
		default:
			msgs = append(msgs, msgDebitCredit(l.itemNo, l.debitCredit, l.amount))
		}
		if (l.debitCredit == "S" && l.amount.IsNegative()) || (l.debitCredit == "H" && l.amount.IsPositive()) {
			msgs = append(msgs, msgDebitCredit(l.itemNo, l.debitCredit, l.amount))
		}
		balance = balance.Add(l.amount)
	}
	if !balance.IsZero() {
		msgs = append(msgs, msgBalance(balance, currency))
	}
	if je.ReversalReferenceDocument != "" && len(msgs) == 0 {
		if _, msg := s.reversedEntry(p); msg != nil {
			msgs = append(msgs, *msg)
		}
	}
	return msgs
}

// reversedEntry is the journal entry a reversal names by its reference key
// (document, company code, fiscal year), if it can be reversed by these
// lines: the original's with the opposite amounts, account by account.
// Callers hold s.mu.
func (s *Server) reversedEntry(p *parsedEntry) (*LedgerDocument, *sapMessage) {
	key, cc := p.entry.ReversalReferenceDocument, p.entry.CompanyCode
	if len(key) != 18 || key[10:14] != cc {
		m := msgDocumentUnknown(key, cc, "")
		return nil, &m
	}
	doc, fy := key[:10], key[14:]
	entry := s.ledgerEntry(KindJournalEntry, cc, doc, fy)
	if entry == nil {
		// Document numbers are stored without leading zeros.
		entry = s.ledgerEntry(KindJournalEntry, cc, strings.TrimLeft(doc, "0"), fy)
	}
	if msg := reversible(entry, doc, cc, fy); msg != nil {
		return nil, msg
	}
	net := map[string]decimal.Decimal{}
	for _, l := range s.books.lines {
		if l.CompanyCode == cc && l.FiscalYear == fy && l.AccountingDocument == entry.Document {
			k := l.GLAccount + "/" + l.Customer + "/" + l.Supplier
			net[k] = net[k].Add(l.Amount)
		}
	}
	co := s.md.CompanyCodes[cc]
	for _, l := range p.lines {
		account := l.glAccount
		switch {
		case l.customer != "":
			account = co.ReceivablesAccount
		case l.supplier != "":
			account = co.PayablesAccount
		}
		k := account + "/" + l.customer + "/" + l.supplier
		net[k] = net[k].Add(l.amount)
	}
	for _, v := range net {
		if !v.IsZero() {
			m := sapMessage{Code: "F5/702", Text: fmt.Sprintf("The reversal's lines do not offset those of document %s %s", entry.Document, fy)}
			return nil, &m
		}
	}
	return entry, nil
}

// postJournalEntry assigns the document number and writes the line items. Callers
// hold s.mu.
func (s *Server) postJournalEntry(p *parsedEntry) string {
	je := &p.entry
	cc := s.md.CompanyCodes[je.CompanyCode]
	fy := fmt.Sprint(p.postingDate.Year())
	var reversed *LedgerDocument
	if je.ReversalReferenceDocument != "" {
		reversed, _ = s.reversedEntry(p) // validated before, under the same lock
	}
	doc := s.books.nextNumber("SA/"+je.CompanyCode+"/"+fy, firstJournalEntry)
	now := s.opts.Now()
	reference := ""
	for i, l := range p.lines {
		dc := l.debitCredit
		if dc == "" {
			dc = "S"
			if l.amount.IsNegative() {
				dc = "H"
			}
		}
		// A customer's or supplier's line posts to its reconciliation
		// account.
		account := l.glAccount
		switch {
		case l.customer != "":
			account = cc.ReceivablesAccount
		case l.supplier != "":
			account = cc.PayablesAccount
		}
		s.books.addLines(&glLine{
			CompanyCode: je.CompanyCode, FiscalYear: fy, AccountingDocument: doc,
			LedgerGLLineItem: fmt.Sprintf("%06d", i+1), GLAccount: account, ChartOfAccounts: cc.ChartOfAccounts,
			CostCenter: l.costCenter, Customer: l.customer, Supplier: l.supplier, DebitCreditCode: dc,
			TransactionCurrency: l.currency, Amount: l.amount, CompanyCodeCurrency: cc.Currency,
			PostingDate: p.postingDate, DocumentDate: p.documentDate,
			AccountingDocumentType: je.AccountingDocumentType, AssignmentReference: l.assignment,
			DocumentItemText:      l.text,
			ReferenceDocumentType: je.OriginalReferenceDocumentType, ReferenceDocument: doc,
			BusinessTransactionType: je.BusinessTransactionType, CreatedByUser: je.CreatedByUser,
			CreationDateTime: now,
		})
		reference = cmp.Or(reference, l.assignment)
	}
	entry := LedgerDocument{
		Kind: KindJournalEntry, Document: doc, FiscalYear: fy, CompanyCode: je.CompanyCode,
		Reference: reference, PostedAt: now,
	}
	if reversed != nil {
		// A reversal: its lines and the original's point at each other.
		for _, l := range s.books.lines {
			switch {
			case l.CompanyCode != je.CompanyCode:
			case l.AccountingDocument == doc && l.FiscalYear == fy:
				l.IsReversal, l.ReversalReferenceDocument = true, reversed.Document
			case l.AccountingDocument == reversed.Document && l.FiscalYear == reversed.FiscalYear:
				l.IsReversed, l.ReversalReferenceDocument = true, doc
			}
		}
		reversed.ReversedBy, entry.Reverses = doc, reversed.Document
	}
	s.books.ledger = append(s.books.ledger, entry)
	s.stats.Posted[KindJournalEntry]++
	return doc
}
