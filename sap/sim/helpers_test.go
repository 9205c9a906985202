package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the simulator clock in tests: November 2026, so 2026-11 and 2026-10 are
// open periods.
var testNow = time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)

const (
	siRoot  = SupplierInvoiceServicePath + "/"
	siColl  = SupplierInvoiceServicePath + "/A_SupplierInvoice"
	glColl  = GLAccountLineItemPath + "/GLAccountLineItem"
	jeAct   = "http://sap.com/xi/SAPSCORE/SFIN/JournalEntryCreateRequestConfirmation_In/JournalEntryCreateRequestConfirmation_InRequest"
	user    = "SAPQ_COMM"
	pass    = "sim-password"
	baseUID = "6f1c2a3e-0000-4000-8000-"
)

type harness struct {
	t   *testing.T
	sim *Server
	srv *httptest.Server
	hc  *http.Client // with cookie jar
	tok string
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sim := New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, sim: sim, srv: srv, hc: &http.Client{Jar: jar}}
}

// request sends an authenticated request; it adds sap-client=100.
func (h *harness) request(method, path string, body []byte, hdr map[string]string) (*http.Response, error) {
	h.t.Helper()
	u := h.srv.URL + path
	if strings.Contains(u, "?") {
		u += "&sap-client=100"
	} else {
		u += "?sap-client=100"
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.hc.Do(req)
}

func (h *harness) mustRequest(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	resp, err := h.request(method, path, body, hdr)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

// fetchToken does the CSRF fetch on the supplier invoice service root.
func (h *harness) fetchToken() string {
	h.t.Helper()
	resp, _ := h.mustRequest(http.MethodGet, siRoot, nil, map[string]string{"X-CSRF-Token": "Fetch"})
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("fetch: status %d", resp.StatusCode)
	}
	h.tok = resp.Header.Get("X-CSRF-Token")
	if h.tok == "" {
		h.t.Fatal("fetch: no token")
	}
	return h.tok
}

// postInvoice posts a supplier invoice with the cached token (fetching one first).
func (h *harness) postInvoice(body string) (*http.Response, []byte) {
	h.t.Helper()
	if h.tok == "" {
		h.fetchToken()
	}
	return h.mustRequest(http.MethodPost, siColl, []byte(body), map[string]string{
		"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": h.tok,
	})
}

func (h *harness) postJE(body string) (*http.Response, []byte) {
	h.t.Helper()
	return h.mustRequest(http.MethodPost, JournalEntrySOAPPath, []byte(body), map[string]string{
		"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"` + jeAct + `"`,
	})
}

func (h *harness) getJSON(path string) (int, map[string]any) {
	h.t.Helper()
	resp, b := h.mustRequest(http.MethodGet, path, nil, map[string]string{"Accept": "application/json"})
	return resp.StatusCode, decodeJSON(h.t, b)
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// dig walks a decoded JSON value: keys for objects, ints for arrays.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func results(m map[string]any) []any {
	r, _ := dig(m, "d", "results").([]any)
	return r
}

// odataCode returns the error code of an OData error body.
func odataCode(t *testing.T, b []byte) string {
	t.Helper()
	m := decodeJSON(t, b)
	code, _ := dig(m, "error", "code").(string)
	return code
}

func edmDateJSON(y int, m time.Month, d int) string {
	return fmt.Sprintf("/Date(%d)/", time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli())
}

// invoice is a supplier invoice payload; mutate fields before rendering.
type invoice struct {
	CompanyCode, Supplier, Ref, Currency, Gross, Posting string
	Assignment                                           string // sapq's reference
	Items                                                []invoiceItem
}

type invoiceItem struct{ GL, CostCenter, Amount, DC string }

func defaultInvoice(ref string) invoice {
	return invoice{
		CompanyCode: "1010", Supplier: "17300001", Ref: ref, Currency: "EUR", Gross: "119.00",
		Posting: edmDateJSON(2026, 11, 22), Assignment: "SQ-" + ref,
		Items: []invoiceItem{{GL: "61003000", CostCenter: "10101101", Amount: "119.00", DC: "S"}},
	}
}

func (inv invoice) json() string {
	items := make([]map[string]any, len(inv.Items))
	for i, it := range inv.Items {
		items[i] = map[string]any{
			"SupplierInvoiceItem": fmt.Sprint(i + 1), "CompanyCode": inv.CompanyCode, "GLAccount": it.GL,
			"CostCenter": it.CostCenter, "DocumentCurrency": inv.Currency, "SupplierInvoiceItemAmount": it.Amount,
			"TaxCode": "V1", "DebitCreditCode": it.DC, "SupplierInvoiceItemText": "Paper",
		}
	}
	b, _ := json.Marshal(map[string]any{
		"CompanyCode": inv.CompanyCode, "DocumentDate": edmDateJSON(2026, 11, 22), "PostingDate": inv.Posting,
		"InvoicingParty": inv.Supplier, "SupplierInvoiceIDByInvcgParty": inv.Ref, "DocumentCurrency": inv.Currency,
		"InvoiceGrossAmount": inv.Gross, "TaxIsCalculatedAutomatically": true, "AccountingDocumentType": "RE",
		"DocumentHeaderText": "Office supplies", "AssignmentReference": inv.Assignment,
		"to_SupplierInvoiceItemGLAcct": map[string]any{"results": items},
	})
	return string(b)
}

// journalEntry is a SOAP journal entry request; rendered with escaping.
type journalEntry struct {
	UUID, CompanyCode, PostingDate, DocRef, HeaderText string
	// ReversalRef and ReversalReason make the entry a reversal.
	ReversalRef, ReversalReason string
	Items                       []jeLine
}

type jeLine struct{ GL, Amount, Currency, DC, Text, Assignment, CostCenter string }

var uuidSeq atomic.Int64

func newUUID() string { return fmt.Sprintf("%s%012d", baseUID, uuidSeq.Add(1)) }

func defaultJE(assignment string) journalEntry {
	return journalEntry{
		UUID: newUUID(), CompanyCode: "1010", PostingDate: "2026-11-25", DocRef: "REF-1", HeaderText: "Accrual",
		Items: []jeLine{
			{GL: "61003000", Amount: "100.00", Currency: "EUR", DC: "S", Text: "Expense", Assignment: assignment, CostCenter: "10101101"},
			{GL: "21100000", Amount: "-100.00", Currency: "EUR", DC: "H", Text: "Accrual", Assignment: assignment},
		},
	}
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (je journalEntry) xml() string {
	var b strings.Builder
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body>`)
	b.WriteString(`<sfin:JournalEntryBulkCreateRequest xmlns:sfin="http://sap.com/xi/SAPSCORE/SFIN">`)
	hdr := `<MessageHeader><ID>SAPQ-1</ID><UUID>` + esc(je.UUID) + `</UUID><CreationDateTime>2026-11-25T10:00:00Z</CreationDateTime></MessageHeader>`
	b.WriteString(hdr + `<JournalEntryCreateRequest>` + hdr + `<JournalEntry>`)
	b.WriteString(`<OriginalReferenceDocumentType>BKPFF</OriginalReferenceDocumentType><BusinessTransactionType>RFBU</BusinessTransactionType><AccountingDocumentType>SA</AccountingDocumentType>`)
	if je.DocRef != "" {
		b.WriteString(`<DocumentReferenceID>` + esc(je.DocRef) + `</DocumentReferenceID>`)
	}
	if je.HeaderText != "" {
		b.WriteString(`<DocumentHeaderText>` + esc(je.HeaderText) + `</DocumentHeaderText>`)
	}
	if je.ReversalReason != "" {
		b.WriteString(`<ReversalReason>` + esc(je.ReversalReason) + `</ReversalReason>`)
	}
	if je.ReversalRef != "" {
		b.WriteString(`<ReversalReferenceDocument>` + esc(je.ReversalRef) + `</ReversalReferenceDocument>`)
	}
	b.WriteString(`<CreatedByUser>SAPQ_COMM</CreatedByUser><CompanyCode>` + esc(je.CompanyCode) + `</CompanyCode>`)
	b.WriteString(`<DocumentDate>2026-11-25</DocumentDate><PostingDate>` + esc(je.PostingDate) + `</PostingDate>`)
	for i, it := range je.Items {
		fmt.Fprintf(&b, `<Item><ReferenceDocumentItem>%d</ReferenceDocumentItem><GLAccount>%s</GLAccount>`, i+1, esc(it.GL))
		fmt.Fprintf(&b, `<AmountInTransactionCurrency currencyCode="%s">%s</AmountInTransactionCurrency>`, esc(it.Currency), esc(it.Amount))
		fmt.Fprintf(&b, `<DebitCreditCode>%s</DebitCreditCode>`, esc(it.DC))
		if it.Text != "" {
			b.WriteString(`<DocumentItemText>` + esc(it.Text) + `</DocumentItemText>`)
		}
		b.WriteString(`<AssignmentReference>` + esc(it.Assignment) + `</AssignmentReference>`)
		if it.CostCenter != "" {
			b.WriteString(`<AccountAssignment><CostCenter>` + esc(it.CostCenter) + `</CostCenter></AccountAssignment>`)
		}
		b.WriteString(`</Item>`)
	}
	b.WriteString(`</JournalEntry></JournalEntryCreateRequest></sfin:JournalEntryBulkCreateRequest></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

// jeResponse is the confirmation as a namespace-aware client reads it.
type jeResponse struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Conf *struct {
			MessageHeader struct {
				UUID          string `xml:"UUID"`
				ReferenceUUID string `xml:"ReferenceUUID"`
			} `xml:"MessageHeader"`
			Confirmations []struct {
				Doc struct {
					AccountingDocument string `xml:"AccountingDocument"`
					CompanyCode        string `xml:"CompanyCode"`
					FiscalYear         string `xml:"FiscalYear"`
				} `xml:"JournalEntryCreateConfirmation"`
				Log struct {
					Max   string `xml:"MaximumLogItemSeverityCode"`
					Items []struct {
						TypeID       string `xml:"TypeID"`
						SeverityCode string `xml:"SeverityCode"`
						Note         string `xml:"Note"`
					} `xml:"Item"`
				} `xml:"Log"`
			} `xml:"JournalEntryCreateConfirmation"`
			Log struct {
				Result string `xml:"BusinessDocumentProcessingResultCode"`
				Max    string `xml:"MaximumLogItemSeverityCode"`
			} `xml:"Log"`
		} `xml:"http://sap.com/xi/SAPSCORE/SFIN JournalEntryBulkCreateConfirmation"`
		Fault *struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func decodeJE(t *testing.T, b []byte) jeResponse {
	t.Helper()
	var r jeResponse
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode SOAP response %s: %v", b, err)
	}
	return r
}

func mustSetFaults(t *testing.T, s *Server, f Faults) {
	t.Helper()
	if err := s.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func query(v url.Values) string { return "?" + strings.ReplaceAll(v.Encode(), "+", "%20") }
