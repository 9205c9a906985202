package sap

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file plays SAP per the wire contract (plan/wire.md) just far enough for
// the client's tests: Basic auth, sap-client, the CSRF token bound to a
// session cookie, and pluggable business endpoints.

const (
	testUser      = "SAPQ_COMM"
	testPassword  = "s3cret-Pa55w0rd!"
	sessionCookie = "SAP_SESSIONID_S4H_100"
)

type fakeSAP struct {
	t   *testing.T
	srv *httptest.Server

	// Business endpoints; nil ones answer 404. They run after auth and,
	// for OData posts, after the CSRF check.
	invoice func(w http.ResponseWriter, r *http.Request, body []byte)
	soap    func(w http.ResponseWriter, r *http.Request, body []byte)
	find    func(w http.ResponseWriter, r *http.Request)

	mu            sync.Mutex
	sessions      map[string]string // session cookie -> CSRF token
	seq           int
	fetches       int  // CSRF token fetches
	csrfRejects   int  // posts answered 403 Required
	posts         int  // posts that passed the CSRF check
	rejectAllCSRF bool // answer every post with 403 Required
	unauthorized  int  // requests answered 401
	// tokens, when set, makes SAP take OAuth bearer tokens from this token
	// endpoint instead of Basic authentication.
	tokens *tokenServer
}

// authorized checks a request's credentials: Basic, or a bearer token the
// token endpoint issued and has not revoked.
func (f *fakeSAP) authorized(r *http.Request) bool {
	if f.tokens != nil {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && f.tokens.valid(tok)
	}
	u, p, ok := r.BasicAuth()
	return ok && u == testUser && p == testPassword
}

func newFakeSAP(t *testing.T) *fakeSAP {
	t.Helper()
	f := &fakeSAP{t: t, sessions: map[string]string{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Client for f; tweak may adjust the Config.
func (f *fakeSAP) client(tweak ...func(*Config)) *Client {
	f.t.Helper()
	cfg := Config{
		BaseURL:  f.srv.URL,
		User:     testUser,
		Password: testPassword,
		Timeout:  5 * time.Second,
		Logger:   slog.New(slog.DiscardHandler),
	}
	for _, fn := range tweak {
		fn(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fakeSAP) counts() (fetches, rejects, posts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches, f.csrfRejects, f.posts
}

// expireSessions makes SAP forget every session, as after a restart or a
// session timeout: the next post carries a stale token.
func (f *fakeSAP) expireSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]string{}
}

func (f *fakeSAP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("sap-client") != "100" {
		http.Error(w, "wrong client", http.StatusUnauthorized)
		return
	}
	if !f.authorized(r) {
		f.mu.Lock()
		f.unauthorized++
		f.mu.Unlock()
		if f.tokens != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="SAP NetWeaver Application Server [S4H/100]", error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="SAP NetWeaver Application Server [S4H/100]"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/sap/bc/srt/"):
		serve(f.soap, w, r, body)
	case r.Method == http.MethodGet && r.Header.Get("X-CSRF-Token") == "Fetch":
		f.fetchToken(w)
	case r.Method == http.MethodPost:
		if !f.checkToken(r) {
			w.Header().Set("X-CSRF-Token", "Required")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "CSRF token validation failed")
			return
		}
		serve(f.invoice, w, r, body)
	case r.Method == http.MethodGet && f.find != nil:
		f.find(w, r)
	default:
		http.NotFound(w, r)
	}
}

func serve(h func(http.ResponseWriter, *http.Request, []byte), w http.ResponseWriter, r *http.Request, body []byte) {
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r, body)
}

func (f *fakeSAP) fetchToken(w http.ResponseWriter) {
	f.mu.Lock()
	f.seq++
	f.fetches++
	sid, tok := fmt.Sprintf("session-%d", f.seq), fmt.Sprintf("token-%d", f.seq)
	f.sessions[sid] = tok
	f.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: "sap-usercontext", Value: "sap-client=100", Path: "/"})
	w.Header().Set("X-CSRF-Token", tok)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"d":{"EntitySets":["A_SupplierInvoice"]}}`)
}

func (f *fakeSAP) checkToken(r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ck, err := r.Cookie(sessionCookie)
	ok := err == nil && !f.rejectAllCSRF && f.sessions[ck.Value] != "" &&
		f.sessions[ck.Value] == r.Header.Get("X-CSRF-Token")
	if ok {
		f.posts++
	} else {
		f.csrfRejects++
	}
	return ok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// v2Error is SAP Gateway's OData V2 error body.
func v2Error(code, text string) map[string]any {
	return map[string]any{"error": map[string]any{
		"code":    code,
		"message": map[string]any{"lang": "en", "value": text},
		"innererror": map[string]any{
			"transactionid": "0123456789ABCDEF0123456789ABCDEF",
			"timestamp":     "20261125101500.1234560",
			"errordetails": []any{map[string]any{
				"code": code, "message": text, "propertyref": "", "severity": "error", "target": "",
			}},
		},
	}}
}

// created answers a supplier invoice post the way SAP does.
func created(number, year, companyCode string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Location", fmt.Sprintf("%s(SupplierInvoice='%s',FiscalYear='%s')", r.URL.Path, number, year))
		w.Header().Set("sap-message", fmt.Sprintf(
			`{"code":"M8/060","message":"Document no. %s created","severity":"info","target":"",`+
				`"details":[{"code":"M8/111","message":"Check the payment block","severity":"warning","target":""}]}`, number))
		writeJSON(w, http.StatusCreated, map[string]any{"d": map[string]any{
			"__metadata":      map[string]any{"type": "API_SUPPLIERINVOICE_PROCESS_SRV.A_SupplierInvoiceType"},
			"SupplierInvoice": number, "FiscalYear": year, "CompanyCode": companyCode,
		}})
	}
}

// serverEnvelope decodes the journal entry request on the server side, by
// local names, and keeps the namespaces for assertions.
type serverEnvelope struct {
	XMLName xml.Name
	Body    struct {
		Request struct {
			XMLName       xml.Name
			MessageHeader struct{ ID, UUID, CreationDateTime string }
			Requests      []struct {
				MessageHeader struct{ ID, UUID string }
				JournalEntry  struct {
					XMLName                       xml.Name
					OriginalReferenceDocumentType string
					BusinessTransactionType       string
					AccountingDocumentType        string
					DocumentReferenceID           string
					DocumentHeaderText            string
					CreatedByUser                 string
					CompanyCode                   string
					DocumentDate                  string
					PostingDate                   string
					Items                         []struct {
						XMLName               xml.Name
						ReferenceDocumentItem string
						GLAccount             string
						Amount                struct {
							Currency string `xml:"currencyCode,attr"`
							Value    string `xml:",chardata"`
						} `xml:"AmountInTransactionCurrency"`
						DebitCreditCode     string
						DocumentItemText    string
						AssignmentReference string
						CostCenter          string `xml:"AccountAssignment>CostCenter"`
					} `xml:"Item"`
				}
			} `xml:"JournalEntryCreateRequest"`
		} `xml:"JournalEntryBulkCreateRequest"`
	} `xml:"Body"`
}

// logItem is one SOAP log line: TypeID like "201(F5)", severity "1".."3".
type logItem struct{ typeID, severity, note string }

// soapConfirmation renders SAP's JournalEntryBulkCreateConfirmation.
func soapConfirmation(doc, companyCode, year, maxSeverity string, items ...logItem) string {
	var log bytes.Buffer
	for _, it := range items {
		fmt.Fprintf(&log, `<Item><TypeID>%s</TypeID><SeverityCode>%s</SeverityCode><Note>%s</Note></Item>`,
			it.typeID, it.severity, it.note)
	}
	return `<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Header/><soap-env:Body>` +
		`<n0:JournalEntryBulkCreateConfirmation xmlns:n0="http://sap.com/xi/SAPSCORE/SFIN">` +
		`<MessageHeader><UUID>6f1c0e4e-0000-4000-8000-000000000001</UUID><CreationDateTime>2026-11-25T10:00:01Z</CreationDateTime></MessageHeader>` +
		`<JournalEntryCreateConfirmation><MessageHeader><CreationDateTime>2026-11-25T10:00:01Z</CreationDateTime></MessageHeader>` +
		`<JournalEntryCreateConfirmation><AccountingDocument>` + doc + `</AccountingDocument><CompanyCode>` + companyCode +
		`</CompanyCode><FiscalYear>` + year + `</FiscalYear></JournalEntryCreateConfirmation>` +
		`<Log><MaximumLogItemSeverityCode>` + maxSeverity + `</MaximumLogItemSeverityCode>` + log.String() + `</Log>` +
		`</JournalEntryCreateConfirmation>` +
		`<Log><BusinessDocumentProcessingResultCode>5</BusinessDocumentProcessingResultCode><MaximumLogItemSeverityCode>` +
		maxSeverity + `</MaximumLogItemSeverityCode></Log>` +
		`</n0:JournalEntryBulkCreateConfirmation></soap-env:Body></soap-env:Envelope>`
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
