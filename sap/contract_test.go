package sap

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sapq/sapq/internal/sapcontract"
	"github.com/sapq/sapq/tasks"
)

// The contract tests check what the client sends for every posting kind
// against SAP's own service definitions (tables derived from SAP's EDMX and
// WSDL files into testdata/sapcontract; see internal/sapcontract for how to
// regenerate them): only properties and elements the target declares, of
// their declared types, within their lengths, precision and scale, in the
// order a SOAP schema prescribes. A kind is checked as soon as it is in the
// registry and has its sample posting in testdata/postings/<kind>.json.

const contractDir = "../testdata/sapcontract"

// captured is one request as SAP would receive it.
type captured struct {
	method, path string
	query        url.Values
	body         []byte
}

// captureSAP answers just enough for every kind's calls to go out: a CSRF
// token, empty look-ups, and a generic answer to posts. What the client
// makes of the answers does not matter here; what it sent does.
type captureSAP struct {
	mu   sync.Mutex
	reqs []captured
}

func (c *captureSAP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("X-CSRF-Token") == "Fetch" {
		w.Header().Set("X-CSRF-Token", "contract-token")
		w.WriteHeader(http.StatusOK)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, captured{method: r.Method, path: r.URL.Path, query: r.URL.Query(), body: body})
	c.mu.Unlock()
	switch {
	case r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"d": map[string]any{"results": []any{}}})
	case strings.HasPrefix(r.URL.Path, "/sap/bc/srt/"):
		writeXML(w, http.StatusOK, soapConfirmation("0100000001", "1010", "2026", "1"))
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"d": map[string]any{}})
	}
}

func (c *captureSAP) take() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// samplePostings reads a kind's sample postings: testdata/postings/<kind>.json,
// which every kind has, and <kind>.<variant>.json for what it leaves out.
func samplePostings(t *testing.T, k tasks.Kind) map[string]tasks.Posting {
	t.Helper()
	main := filepath.Join("../testdata/postings", string(k)+".json")
	if _, err := os.Stat(main); err != nil {
		t.Fatalf("every kind needs a sample posting in testdata/postings/%s.json: %v", k, err)
	}
	variants, _ := filepath.Glob(filepath.Join("../testdata/postings", string(k)+".*.json"))
	out := map[string]tasks.Posting{}
	for _, f := range append([]string{main}, variants...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tasks.Decode(k, raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = p
	}
	return out
}

func TestRequestsKeepSAPsContract(t *testing.T) {
	contracts, err := sapcontract.Load(contractDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range tasks.Kinds {
		if !Supports(k) {
			t.Errorf("the client has no mapping for kind %s", k)
			continue
		}
		for file, p := range samplePostings(t, k) {
			t.Run(file, func(t *testing.T) { checkKindContract(t, contracts, p) })
		}
	}
}

// checkKindContract posts and looks up one posting against a capturing SAP
// and checks every request the client made.
func checkKindContract(t *testing.T, contracts *sapcontract.Contracts, p tasks.Posting) {
	{
		{
			sapSrv := &captureSAP{}
			srv := httptest.NewServer(sapSrv)
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			id := tasks.Identity{Caller: "contract", Key: "k", Fingerprint: "f", Destination: tasks.DefaultDestination}
			ctx := context.Background()
			c.Post(ctx, r, Send{Reference: id.Reference(), MessageUUID: id.MessageUUID(0)}) // the answer is not the point
			c.Find(ctx, r, id.Reference())

			reqs := sapSrv.take()
			posts := 0
			for _, req := range reqs {
				if req.method != http.MethodGet {
					posts++
				}
				for _, v := range checkContract(contracts, req) {
					t.Errorf("%s %s: %s", req.method, req.path, v)
				}
			}
			if posts == 0 {
				t.Errorf("posting a %s sent nothing", p.Kind())
			}
		}
	}
}

// checkContract checks one request against the service definition of its
// target.
func checkContract(contracts *sapcontract.Contracts, req captured) []string {
	if strings.HasPrefix(req.path, "/sap/opu/odata4/") {
		// The OData V4 service of billing documents (api_billingdocument)
		// is not among the service definitions the tables derive from;
		// its action's body is checked field by field in
		// billingdocument_test.go instead.
		return nil
	}
	if strings.HasPrefix(req.path, "/sap/bc/srt/") {
		// SOAP endpoints are named after their service definition:
		// .../journalentrycreaterequestconfi serves JOURNALENTRYCREATEREQUESTCONFI.
		name := strings.ToUpper(path.Base(req.path))
		schema, ok := contracts.SOAP[name]
		if !ok {
			return []string{"no service definition " + name + " in " + contractDir}
		}
		return schema.CheckSOAPBody(req.body)
	}
	if svc, fn, ok := contracts.ODataFunction(req.path); ok {
		return svc.CheckFunctionCall(fn, req.method, req.query, req.body)
	}
	svc, entityType, err := contracts.ODataTarget(req.path)
	if err != nil {
		return []string{err.Error()}
	}
	if req.method == http.MethodGet {
		return svc.CheckQuery(entityType, req.query)
	}
	return svc.CheckODataBody(entityType, req.body)
}

// The checks can fail: a body the client sends, spoiled in each way the
// contract forbids, is caught each time.
func TestContractCatchesViolations(t *testing.T) {
	contracts, err := sapcontract.Load(contractDir)
	if err != nil {
		t.Fatal(err)
	}
	sapSrv := &captureSAP{}
	srv := httptest.NewServer(sapSrv)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.PostSupplierInvoice(ctx, testInvoice())
	c.PostJournalEntry(ctx, testJournalEntry())
	var invoice, journal captured
	for _, req := range sapSrv.take() {
		switch {
		case strings.HasSuffix(req.path, "/A_SupplierInvoice"):
			invoice = req
		case strings.HasPrefix(req.path, "/sap/bc/srt/"):
			journal = req
		}
	}
	if v := checkContract(contracts, invoice); len(v) != 0 {
		t.Fatalf("the unspoiled invoice breaks the contract: %v", v)
	}

	spoil := func(edit func(m map[string]any)) captured {
		var m map[string]any
		if err := json.Unmarshal(invoice.body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		return captured{method: http.MethodPost, path: invoice.path, body: b}
	}
	item := func(m map[string]any) map[string]any {
		return m["to_SupplierInvoiceItemGLAcct"].(map[string]any)["results"].([]any)[0].(map[string]any)
	}
	for name, bad := range map[string]captured{
		"unknown property":         spoil(func(m map[string]any) { m["SupplierInvoiceNote"] = "x" }),
		"too long":                 spoil(func(m map[string]any) { m["DocumentHeaderText"] = strings.Repeat("x", 26) }),
		"decimal as number":        spoil(func(m map[string]any) { m["InvoiceGrossAmount"] = 1190.0 }),
		"too many fraction digits": spoil(func(m map[string]any) { m["InvoiceGrossAmount"] = "1190.0001" }),
		"too many integer digits":  spoil(func(m map[string]any) { m["InvoiceGrossAmount"] = "123456789012.00" }),
		"date as ISO string":       spoil(func(m map[string]any) { m["PostingDate"] = "2026-11-25" }),
		"boolean as string":        spoil(func(m map[string]any) { m["TaxIsCalculatedAutomatically"] = "true" }),
		"assigned by SAP":          spoil(func(m map[string]any) { m["SupplierInvoice"] = "5105600001" }),
		"unknown item property":    spoil(func(m map[string]any) { item(m)["MaterialDocument"] = "1" }),
		"too long in an item":      spoil(func(m map[string]any) { item(m)["GLAccount"] = "12345678901" }),
		"unknown navigation":       spoil(func(m map[string]any) { m["to_SuplrInvcItemGLAcctRecord"] = map[string]any{"results": []any{}} }),
		"SOAP unknown element": {method: http.MethodPost, path: journal.path,
			body: bytes.Replace(journal.body, []byte("<CompanyCode>"), []byte("<Plant>1010</Plant><CompanyCode>"), 1)},
		"SOAP out of order": {method: http.MethodPost, path: journal.path,
			body: bytes.Replace(journal.body, []byte("<CreatedByUser>"), []byte("<DocumentDate>2026-11-25</DocumentDate><CreatedByUser>"), 1)},
		"SOAP too long": {method: http.MethodPost, path: journal.path,
			body: bytes.Replace(journal.body, []byte("<CompanyCode>1010<"), []byte("<CompanyCode>10100<"), 1)},
		"SOAP qualified child": {method: http.MethodPost, path: journal.path,
			body: bytes.Replace(journal.body, []byte("<CompanyCode>1010</CompanyCode>"), []byte(`<CompanyCode xmlns="`+sfinNS+`">1010</CompanyCode>`), 1)},
	} {
		if v := checkContract(contracts, bad); len(v) == 0 {
			t.Errorf("%s: not caught", name)
		} else {
			t.Logf("%s: %s", name, v[0])
		}
	}
	if v := checkContract(contracts, journal); len(v) != 0 {
		t.Errorf("the unspoiled journal entry breaks the contract: %v", v)
	}

	c.CancelSupplierInvoice(ctx, "1010", SupplierInvoiceCancel{SupplierInvoice: "5105600001", FiscalYear: "2026", ReversalReason: "01",
		PostingDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)})
	var cancel captured
	for _, req := range sapSrv.take() {
		if strings.HasSuffix(req.path, "/Cancel") {
			cancel = req
		}
	}
	if v := checkContract(contracts, cancel); len(v) != 0 || cancel.path == "" {
		t.Fatalf("the unspoiled Cancel breaks the contract: %v (%+v)", v, cancel)
	}
	spoilQuery := func(edit func(q url.Values)) captured {
		q := url.Values{}
		for k, v := range cancel.query {
			q[k] = append([]string(nil), v...)
		}
		edit(q)
		return captured{method: cancel.method, path: cancel.path, query: q}
	}
	for name, bad := range map[string]captured{
		"function: unknown parameter":  spoilQuery(func(q url.Values) { q.Set("CompanyCode", "'1010'") }),
		"function: unquoted string":    spoilQuery(func(q url.Values) { q.Set("FiscalYear", "2026") }),
		"function: too long":           spoilQuery(func(q url.Values) { q.Set("ReversalReason", "'001'") }),
		"function: date as ISO string": spoilQuery(func(q url.Values) { q.Set("PostingDate", "'2026-11-30'") }),
		"function: wrong method":       {method: http.MethodGet, path: cancel.path, query: cancel.query},
		"function: a body":             {method: cancel.method, path: cancel.path, query: cancel.query, body: []byte(`{"SupplierInvoice":"1"}`)},
	} {
		if v := checkContract(contracts, bad); len(v) == 0 {
			t.Errorf("%s: not caught", name)
		} else {
			t.Logf("%s: %s", name, v[0])
		}
	}
}
