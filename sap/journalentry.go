package sap

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

const (
	journalEntryPath   = "/sap/bc/srt/scs_ext/sap/journalentrycreaterequestconfi"
	journalEntryAction = `"http://sap.com/xi/SAPSCORE/SFIN/JournalEntryCreateRequestConfirmation_In/JournalEntryCreateRequestConfirmation_InRequest"`
	soapEnvNS          = "http://schemas.xmlsoap.org/soap/envelope/"
	sfinNS             = "http://sap.com/xi/SAPSCORE/SFIN"

	opPostJournalEntry  = "post journal entry"
	opCheckJournalEntry = "check journal entry"
)

// JournalEntry is a G/L journal entry posted through the SOAP service
// JournalEntryCreateRequestConfirmation_In. Dates are calendar dates.
type JournalEntry struct {
	// MessageUUID must be stable per job: SAP processes a MessageHeader/UUID
	// once and answers a repeat with the original confirmation.
	MessageUUID string
	// Reference is sapq's own reference (at most 18 characters). It goes into
	// every item's AssignmentReference, where FindJournalEntry looks for it.
	Reference           string
	CompanyCode         string
	DocumentType        string // default "SA"
	DocumentReferenceID string
	HeaderText          string
	Currency            string
	CreatedByUser       string // default Config.User
	DocumentDate        time.Time
	PostingDate         time.Time
	Items               []JournalEntryItem
	// CustomerItems and SupplierItems are lines on customers' and
	// suppliers' accounts (DebtorItem, CreditorItem).
	CustomerItems, SupplierItems []JournalEntryPartnerItem
	// ReversalReferenceDocument makes the entry the reversal of the
	// journal entry it names by its reference key (ReversalKey), with
	// ReversalReason; its lines are the original's with opposite signs.
	ReversalReferenceDocument, ReversalReason string
	// TestRun sets MessageHeader/TestDataIndicator: SAP checks the entry
	// and answers with its log, posting nothing (CheckJournalEntry).
	TestRun bool
}

// JournalEntryItem is one G/L line; Amount is signed: + debit, - credit.
type JournalEntryItem struct {
	GLAccount        string
	Amount           decimal.Decimal
	CostCenter, Text string
}

// JournalEntryPartnerItem is one line on a customer's (Debtor) or supplier's
// (Creditor) account; Amount is signed: + debit, - credit.
type JournalEntryPartnerItem struct {
	Partner string
	Amount  decimal.Decimal
	Text    string
}

// The request types mirror the WSDL. Prefixed names are spelled out in the
// tags because the service wants only the root body element qualified (its
// schema is elementFormDefault="unqualified"); Go's namespace support would
// put every child into the default namespace instead.
type soapRequest struct {
	XMLName xml.Name `xml:"soapenv:Envelope"`
	NS      string   `xml:"xmlns:soapenv,attr"`
	Header  struct{} `xml:"soapenv:Header"`
	Body    struct {
		Request jeBulkRequest
	} `xml:"soapenv:Body"`
}

type jeBulkRequest struct {
	XMLName       xml.Name        `xml:"sfin:JournalEntryBulkCreateRequest"`
	NS            string          `xml:"xmlns:sfin,attr"`
	MessageHeader jeMessageHeader `xml:"MessageHeader"`
	Requests      []jeRequest     `xml:"JournalEntryCreateRequest"`
}

type jeMessageHeader struct {
	ID                string `xml:"ID"`
	UUID              string `xml:"UUID"`
	CreationDateTime  string `xml:"CreationDateTime"`
	TestDataIndicator bool   `xml:"TestDataIndicator,omitempty"`
}

type jeRequest struct {
	MessageHeader jeMessageHeader `xml:"MessageHeader"`
	JournalEntry  jeEntry         `xml:"JournalEntry"`
}

type jeEntry struct {
	OriginalReferenceDocumentType string          `xml:"OriginalReferenceDocumentType"`
	BusinessTransactionType       string          `xml:"BusinessTransactionType"`
	AccountingDocumentType        string          `xml:"AccountingDocumentType"`
	DocumentReferenceID           string          `xml:"DocumentReferenceID,omitempty"`
	DocumentHeaderText            string          `xml:"DocumentHeaderText,omitempty"`
	ReversalReason                string          `xml:"ReversalReason,omitempty"`
	ReversalReferenceDocument     string          `xml:"ReversalReferenceDocument,omitempty"`
	CreatedByUser                 string          `xml:"CreatedByUser"`
	CompanyCode                   string          `xml:"CompanyCode"`
	DocumentDate                  string          `xml:"DocumentDate"`
	PostingDate                   string          `xml:"PostingDate"`
	Items                         []jeItem        `xml:"Item"`
	DebtorItems                   []jePartnerItem `xml:"DebtorItem"`
	CreditorItems                 []jePartnerItem `xml:"CreditorItem"`
}

// jePartnerItem is a DebtorItem or a CreditorItem; the partner goes into
// the one of its two fields that the element names.
type jePartnerItem struct {
	ReferenceDocumentItem       string   `xml:"ReferenceDocumentItem"`
	Debtor                      string   `xml:"Debtor,omitempty"`
	Creditor                    string   `xml:"Creditor,omitempty"`
	AmountInTransactionCurrency jeAmount `xml:"AmountInTransactionCurrency"`
	DebitCreditCode             string   `xml:"DebitCreditCode"`
	DocumentItemText            string   `xml:"DocumentItemText,omitempty"`
	AssignmentReference         string   `xml:"AssignmentReference"`
}

type jeItem struct {
	ReferenceDocumentItem       string               `xml:"ReferenceDocumentItem"`
	GLAccount                   string               `xml:"GLAccount"`
	AmountInTransactionCurrency jeAmount             `xml:"AmountInTransactionCurrency"`
	DebitCreditCode             string               `xml:"DebitCreditCode"`
	DocumentItemText            string               `xml:"DocumentItemText,omitempty"`
	AssignmentReference         string               `xml:"AssignmentReference"`
	AccountAssignment           *jeAccountAssignment `xml:"AccountAssignment,omitempty"`
}

type jeAmount struct {
	CurrencyCode string `xml:"currencyCode,attr"`
	Value        string `xml:",chardata"`
}

type jeAccountAssignment struct {
	CostCenter string `xml:"CostCenter"`
}

// The response types match by local name only, whatever prefixes SAP uses.
type soapResponse struct {
	Body struct {
		Confirmation *jeBulkConfirmation `xml:"JournalEntryBulkCreateConfirmation"`
		Fault        *soapFault          `xml:"Fault"`
	} `xml:"Body"`
}

type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
}

type jeBulkConfirmation struct {
	Confirmations []jeConfirmation `xml:"JournalEntryCreateConfirmation"`
	Log           soapLog          `xml:"Log"`
}

type jeConfirmation struct {
	Entry struct {
		AccountingDocument string `xml:"AccountingDocument"`
		CompanyCode        string `xml:"CompanyCode"`
		FiscalYear         string `xml:"FiscalYear"`
	} `xml:"JournalEntryCreateConfirmation"`
	Log soapLog `xml:"Log"`
}

type soapLog struct {
	MaximumLogItemSeverityCode string        `xml:"MaximumLogItemSeverityCode"`
	Items                      []soapLogItem `xml:"Item"`
}

type soapLogItem struct {
	TypeID       string `xml:"TypeID"`
	SeverityCode string `xml:"SeverityCode"`
	Note         string `xml:"Note"`
}

// PostJournalEntry posts je and returns the accounting document.
//
// Resending the same MessageUUID is safe by SAP's design, but only within
// SAP's retention window; after an Unknown error prefer FindJournalEntry.
func (c *Client) PostJournalEntry(ctx context.Context, je JournalEntry) (Document, error) {
	r, conf, err := c.sendJournalEntry(ctx, opPostJournalEntry, je)
	if err != nil {
		return Document{}, err
	}
	return c.journalEntryOutcome(r, conf)
}

// CheckJournalEntry has SAP check je without posting it (a test run,
// MessageHeader/TestDataIndicator), and returns SAP's verdict and log. It
// sends a fresh message UUID of its own: a test run's UUID must never be
// the real posting's, whose resend SAP would answer with the test run's
// reply.
func (c *Client) CheckJournalEntry(ctx context.Context, je JournalEntry) (CheckResult, error) {
	je.TestRun, je.MessageUUID = true, uuid.NewString()
	_, conf, err := c.sendJournalEntry(ctx, opCheckJournalEntry, je)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Checked: true, Passed: true}
	for _, entry := range conf.Confirmations {
		res.Messages = append(res.Messages, logMessages(entry.Log)...)
		if severityCode(entry.Log.MaximumLogItemSeverityCode) >= 3 {
			res.Passed = false
		}
	}
	res.Messages = append(res.Messages, logMessages(conf.Log)...)
	if severityCode(conf.Log.MaximumLogItemSeverityCode) >= 3 {
		res.Passed = false
	}
	return res, nil
}

// sendJournalEntry sends je and reads SAP's confirmation; faults, HTTP
// errors and unreadable answers are errors.
func (c *Client) sendJournalEntry(ctx context.Context, op string, je JournalEntry) (*reply, *jeBulkConfirmation, error) {
	if je.DocumentType == "" {
		je.DocumentType = "SA"
	}
	if je.CreatedByUser == "" {
		je.CreatedByUser = c.cfg.User
	}
	if err := c.validateJournalEntry(je); err != nil {
		return nil, nil, err
	}
	body, err := journalEntryEnvelope(je, time.Now())
	if err != nil {
		return nil, nil, c.scrub(&Error{Category: Permanent, Op: op,
			Message: "cannot encode journal entry", Err: err})
	}

	r, err := c.do(ctx, call{
		op:     op,
		method: http.MethodPost,
		path:   journalEntryPath,
		header: http.Header{
			"Content-Type": {"text/xml; charset=utf-8"},
			"Accept":       {"text/xml"},
			"Soapaction":   {journalEntryAction},
		},
		body: body,
	})
	if err != nil {
		return nil, nil, err
	}

	var env soapResponse
	parseErr := xml.Unmarshal(r.body, &env)
	if parseErr == nil && env.Body.Fault != nil {
		return nil, nil, c.faultError(r, env.Body.Fault)
	}
	if r.status != http.StatusOK {
		return nil, nil, c.httpError(op, r)
	}
	if parseErr != nil || env.Body.Confirmation == nil {
		// A 200 we cannot read may still be a posting.
		return nil, nil, c.scrub(&Error{Category: Unknown, Op: op, HTTPStatus: r.status,
			Message: "unreadable confirmation from SAP", Err: parseErr})
	}
	return r, env.Body.Confirmation, nil
}

// journalEntryEnvelope builds the SOAP request. Everything goes through
// encoding/xml, which escapes every text and attribute value.
func journalEntryEnvelope(je JournalEntry, now time.Time) ([]byte, error) {
	msgUUID := uuid.MustParse(je.MessageUUID) // validated before
	created := now.UTC().Format("2006-01-02T15:04:05Z")

	entry := jeEntry{
		OriginalReferenceDocumentType: "BKPFF",
		BusinessTransactionType:       "RFBU",
		AccountingDocumentType:        je.DocumentType,
		DocumentReferenceID:           je.DocumentReferenceID,
		DocumentHeaderText:            je.HeaderText,
		ReversalReason:                je.ReversalReason,
		ReversalReferenceDocument:     je.ReversalReferenceDocument,
		CreatedByUser:                 je.CreatedByUser,
		CompanyCode:                   je.CompanyCode,
		DocumentDate:                  calendarDay(je.DocumentDate).Format(time.DateOnly),
		PostingDate:                   calendarDay(je.PostingDate).Format(time.DateOnly),
	}
	for i, it := range je.Items {
		item := jeItem{
			ReferenceDocumentItem:       strconv.Itoa(i + 1),
			GLAccount:                   it.GLAccount,
			AmountInTransactionCurrency: jeAmount{CurrencyCode: je.Currency, Value: formatAmount(it.Amount)},
			DebitCreditCode:             debitCredit(it.Amount),
			DocumentItemText:            it.Text,
			AssignmentReference:         je.Reference,
		}
		if it.CostCenter != "" {
			item.AccountAssignment = &jeAccountAssignment{CostCenter: it.CostCenter}
		}
		entry.Items = append(entry.Items, item)
	}
	// Line numbers run on across the three lists.
	n := len(je.Items)
	partner := func(it JournalEntryPartnerItem) jePartnerItem {
		n++
		return jePartnerItem{
			ReferenceDocumentItem:       strconv.Itoa(n),
			AmountInTransactionCurrency: jeAmount{CurrencyCode: je.Currency, Value: formatAmount(it.Amount)},
			DebitCreditCode:             debitCredit(it.Amount),
			DocumentItemText:            it.Text,
			AssignmentReference:         je.Reference,
		}
	}
	for _, it := range je.CustomerItems {
		p := partner(it)
		p.Debtor = it.Partner
		entry.DebtorItems = append(entry.DebtorItems, p)
	}
	for _, it := range je.SupplierItems {
		p := partner(it)
		p.Creditor = it.Partner
		entry.CreditorItems = append(entry.CreditorItems, p)
	}

	var env soapRequest
	env.NS = soapEnvNS
	env.Body.Request = jeBulkRequest{
		NS: sfinNS,
		MessageHeader: jeMessageHeader{
			ID:               "SAPQ-" + je.Reference,
			UUID:             msgUUID.String(),
			CreationDateTime: created,
			// On the request's header, never on single entries: per-entry
			// use leaves gaps in the number range (SAP note 3291244).
			TestDataIndicator: je.TestRun,
		},
		Requests: []jeRequest{{
			MessageHeader: jeMessageHeader{
				ID: "SAPQ-" + je.Reference + "-1",
				// Derived, not random: a resent job must carry the same
				// inner UUID as well.
				UUID:             uuid.NewSHA1(msgUUID, []byte("JournalEntryCreateRequest/1")).String(),
				CreationDateTime: created,
			},
			JournalEntry: entry,
		}},
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(env); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// journalEntryOutcome reads SAP's confirmation. Business errors come back as
// HTTP 200: severity 3 in the log and no document number.
func (c *Client) journalEntryOutcome(r *reply, conf *jeBulkConfirmation) (Document, error) {
	var entry jeConfirmation
	if len(conf.Confirmations) > 0 {
		entry = conf.Confirmations[0]
	}
	msgs := append(logMessages(entry.Log), logMessages(conf.Log)...)
	number := strings.TrimSpace(entry.Entry.AccountingDocument)
	posted := strings.Trim(number, "0") != ""
	failed := severityCode(entry.Log.MaximumLogItemSeverityCode) >= 3 ||
		severityCode(conf.Log.MaximumLogItemSeverityCode) >= 3

	switch {
	case posted && !failed:
		return Document{
			Number:      number,
			FiscalYear:  strings.TrimSpace(entry.Entry.FiscalYear),
			CompanyCode: strings.TrimSpace(entry.Entry.CompanyCode),
			Messages:    msgs,
		}, nil
	case posted && failed:
		// A document number next to an error is contradictory; calling it
		// permanent could lead to a second posting, so make the worker look.
		return Document{}, c.scrub(&Error{Category: Unknown, Op: opPostJournalEntry, HTTPStatus: r.status,
			Message:  "SAP returned document " + number + " together with errors",
			Messages: msgs})
	}

	e := &Error{Op: opPostJournalEntry, HTTPStatus: r.status, Messages: msgs}
	m, ok := mainError(msgs)
	if !ok {
		// Neither a document nor an error: nothing proves that SAP posted
		// nothing, so the worker must look.
		e.Category, e.Message = Unknown, "SAP answered without a document number and without an error"
		return Document{}, c.scrub(e)
	}
	e.Code, e.Message = m.Code, m.Text
	e.Category = classify(r.status, r.header.Get("Retry-After") != "", msgs)
	return Document{}, c.scrub(e)
}

// mainError picks the message that explains a failure. SAP's accounting
// interface often leads with a generic RW message ("Error in document") and
// gives the real reason after it.
func mainError(msgs []Message) (Message, bool) {
	var first *Message
	for i, m := range msgs {
		if m.Severity != "error" {
			continue
		}
		if !strings.HasPrefix(m.Code, "RW/") {
			return m, true
		}
		if first == nil {
			first = &msgs[i]
		}
	}
	if first != nil {
		return *first, true
	}
	return Message{}, false
}

// typeIDPattern matches a log item TypeID, "<number>(<message class>)".
var typeIDPattern = regexp.MustCompile(`^\s*([^()\s]+)\s*\(([^()]+)\)\s*$`)

func logMessages(l soapLog) []Message {
	var msgs []Message
	for _, it := range l.Items {
		code := strings.TrimSpace(it.TypeID)
		if m := typeIDPattern.FindStringSubmatch(code); m != nil {
			code = strings.TrimSpace(m[2]) + "/" + m[1]
		}
		msgs = append(msgs, Message{
			Code:     code,
			Text:     strings.TrimSpace(it.Note),
			Severity: severityName(severityCode(it.SeverityCode)),
		})
	}
	return msgs
}

func severityCode(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// severityName maps SAP's LogItemSeverityCode (1 information, 2 warning,
// 3 error, 4 abort) to Message.Severity.
func severityName(n int) string {
	switch {
	case n >= 3:
		return "error"
	case n == 2:
		return "warning"
	case n == 1:
		return "info"
	}
	return ""
}

// faultError classifies a SOAP fault. A Client fault (or VersionMismatch,
// MustUnderstand) means SAP refused the message as malformed: nothing was
// posted and resending the same bytes cannot help. A Server fault may come
// from anywhere in processing, so the outcome is unknown.
func (c *Client) faultError(r *reply, f *soapFault) error {
	code := strings.TrimSpace(f.Code)
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:]
	}
	cat := Unknown
	switch strings.SplitN(code, ".", 2)[0] {
	case "Client", "VersionMismatch", "MustUnderstand":
		cat = Permanent
	}
	msg := strings.TrimSpace(f.String)
	if msg == "" {
		msg = "SOAP fault " + code
	}
	return c.scrub(&Error{Category: cat, Op: opPostJournalEntry, HTTPStatus: r.status,
		Message: msg, RetryAfter: parseRetryAfter(r.header.Get("Retry-After"), time.Now())})
}

func (c *Client) validateJournalEntry(je JournalEntry) error {
	v := validator{op: opPostJournalEntry}
	if _, err := uuid.Parse(je.MessageUUID); err != nil || len(je.MessageUUID) != 36 {
		v.fail("MessageUUID must be a UUID like 123e4567-e89b-12d3-a456-426614174000")
	}
	v.required("Reference", je.Reference, 18)
	v.required("CompanyCode", je.CompanyCode, 4)
	v.required("DocumentType", je.DocumentType, 5)
	v.optional("DocumentReferenceID", je.DocumentReferenceID, 16)
	v.optional("HeaderText", je.HeaderText, 25)
	v.optional("ReversalReferenceDocument", je.ReversalReferenceDocument, 20)
	v.optional("ReversalReason", je.ReversalReason, 2)
	v.required("CreatedByUser", je.CreatedByUser, 12)
	if len(je.Currency) != 3 {
		v.fail("Currency must be a 3-letter ISO code")
	}
	v.date("DocumentDate", je.DocumentDate)
	v.date("PostingDate", je.PostingDate)
	if len(je.Items)+len(je.CustomerItems)+len(je.SupplierItems) < 2 {
		v.fail("at least two lines are required")
	}
	for i, it := range je.Items {
		p := "Items[" + strconv.Itoa(i) + "]."
		v.required(p+"GLAccount", it.GLAccount, 10)
		v.optional(p+"CostCenter", it.CostCenter, 10)
		v.optional(p+"Text", it.Text, 50)
	}
	for name, items := range map[string][]JournalEntryPartnerItem{"CustomerItems": je.CustomerItems, "SupplierItems": je.SupplierItems} {
		for i, it := range items {
			p := name + "[" + strconv.Itoa(i) + "]."
			v.required(p+"Partner", it.Partner, 10)
			v.optional(p+"Text", it.Text, 50)
		}
	}
	return v.err(c)
}

// journalEntryRequest maps a journal entry posting to the SOAP request.
func journalEntryRequest(p *tasks.JournalEntry) (Request, error) {
	docDate, err1 := tasks.ParseDate(p.DocumentDate)
	postDate, err2 := tasks.ParseDate(p.PostingDate)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("dates: %v %v", err1, err2)
	}
	je := JournalEntry{
		CompanyCode:         p.CompanyCode,
		DocumentType:        p.DocType(),
		DocumentReferenceID: p.Reference,
		HeaderText:          p.HeaderText,
		Currency:            p.Currency,
		DocumentDate:        docDate,
		PostingDate:         postDate,
	}
	amount := func(field, v string) (decimal.Decimal, error) {
		d, err := decimal.NewFromString(v)
		if err != nil {
			return d, fmt.Errorf("%s: %w", field, err)
		}
		return d, nil
	}
	for i, it := range p.Items {
		a, err := amount(fmt.Sprintf("items[%d].amount", i), it.Amount)
		if err != nil {
			return nil, err
		}
		je.Items = append(je.Items, JournalEntryItem{GLAccount: it.GLAccount, Amount: a, CostCenter: it.CostCenter, Text: it.Text})
	}
	for i, it := range p.CustomerItems {
		a, err := amount(fmt.Sprintf("customer_items[%d].amount", i), it.Amount)
		if err != nil {
			return nil, err
		}
		je.CustomerItems = append(je.CustomerItems, JournalEntryPartnerItem{Partner: it.Customer, Amount: a, Text: it.Text})
	}
	for i, it := range p.SupplierItems {
		a, err := amount(fmt.Sprintf("supplier_items[%d].amount", i), it.Amount)
		if err != nil {
			return nil, err
		}
		je.SupplierItems = append(je.SupplierItems, JournalEntryPartnerItem{Partner: it.Supplier, Amount: a, Text: it.Text})
	}
	return journalEntryCall{je}, nil
}

// journalEntryCall is the Request of a journal entry: the reference goes
// into every line's AssignmentReference, the generation's UUID into the
// message header.
type journalEntryCall struct{ je JournalEntry }

func (journalEntryCall) Kind() tasks.Kind      { return tasks.KindJournalEntry }
func (r journalEntryCall) CompanyCode() string { return r.je.CompanyCode }

func (r journalEntryCall) post(ctx context.Context, c *Client, s Send) (Document, error) {
	je := r.je
	je.Reference, je.MessageUUID = s.Reference, s.MessageUUID
	return c.PostJournalEntry(ctx, je)
}

func (r journalEntryCall) check(ctx context.Context, c *Client, s Send) (CheckResult, error) {
	je := r.je
	je.Reference = s.Reference
	return c.CheckJournalEntry(ctx, je)
}

func (r journalEntryCall) find(ctx context.Context, c *Client, reference string) (Match, error) {
	return c.FindJournalEntry(ctx, r.je.CompanyCode, reference)
}
