package sap

import (
	"context"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const testMessageUUID = "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"

func testJournalEntry() JournalEntry {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	return JournalEntry{
		MessageUUID:         testMessageUUID,
		Reference:           "SQ-000042",
		CompanyCode:         "1010",
		DocumentReferenceID: "INV-77",
		HeaderText:          "Accrual November",
		Currency:            "EUR",
		DocumentDate:        day,
		PostingDate:         day,
		Items: []JournalEntryItem{
			{GLAccount: "61003000", Amount: decimal.RequireFromString("100"), CostCenter: "10101101", Text: "Office rent"},
			{GLAccount: "21100000", Amount: decimal.RequireFromString("-100.00")},
		},
	}
}

func TestPostJournalEntrySuccess(t *testing.T) {
	f := newFakeSAP(t)
	var envs []serverEnvelope
	f.soap = func(w http.ResponseWriter, r *http.Request, body []byte) {
		if got := r.Header.Get("SOAPAction"); got != journalEntryAction {
			t.Errorf("SOAPAction = %s", got)
		}
		if got := r.Header.Get("Content-Type"); got != "text/xml; charset=utf-8" {
			t.Errorf("Content-Type = %s", got)
		}
		if r.Header.Get("X-CSRF-Token") != "" {
			t.Error("SOAP request carries a CSRF token")
		}
		var env serverEnvelope
		if err := xml.Unmarshal(body, &env); err != nil {
			t.Errorf("server cannot parse request: %v\n%s", err, body)
			return
		}
		envs = append(envs, env)
		writeXML(w, http.StatusOK, soapConfirmation("0100000001", "1010", "2026", "1",
			logItem{"605(RW)", "1", "Document posted successfully: BKPFF 0100000001 1010 2026 S4HCLNT100"}))
	}
	c := f.client()

	doc, err := c.PostJournalEntry(context.Background(), testJournalEntry())
	if err != nil {
		t.Fatalf("PostJournalEntry: %v", err)
	}
	if doc.Number != "0100000001" || doc.FiscalYear != "2026" || doc.CompanyCode != "1010" {
		t.Errorf("doc = %+v", doc)
	}
	if len(doc.Messages) != 1 || doc.Messages[0].Code != "RW/605" || doc.Messages[0].Severity != "info" {
		t.Errorf("messages = %+v", doc.Messages)
	}
	if fetches, _, _ := f.counts(); fetches != 0 {
		t.Errorf("SOAP call fetched %d CSRF tokens", fetches)
	}

	env := envs[0]
	if env.XMLName.Space != soapEnvNS || env.XMLName.Local != "Envelope" {
		t.Errorf("envelope = %v", env.XMLName)
	}
	req := env.Body.Request
	if req.XMLName.Space != sfinNS {
		t.Errorf("root body element namespace = %q", req.XMLName.Space)
	}
	if req.MessageHeader.UUID != testMessageUUID {
		t.Errorf("MessageHeader/UUID = %q", req.MessageHeader.UUID)
	}
	if _, err := time.Parse(time.RFC3339, req.MessageHeader.CreationDateTime); err != nil || !strings.HasSuffix(req.MessageHeader.CreationDateTime, "Z") {
		t.Errorf("CreationDateTime = %q", req.MessageHeader.CreationDateTime)
	}
	if len(req.Requests) != 1 {
		t.Fatalf("%d JournalEntryCreateRequest elements", len(req.Requests))
	}
	inner := req.Requests[0]
	if inner.MessageHeader.UUID == "" || inner.MessageHeader.UUID == testMessageUUID {
		t.Errorf("inner UUID = %q, want one derived from the message UUID", inner.MessageHeader.UUID)
	}
	je := inner.JournalEntry
	if je.XMLName.Space != "" {
		t.Errorf("JournalEntry is qualified (%q); children must be unqualified", je.XMLName.Space)
	}
	got := []string{je.OriginalReferenceDocumentType, je.BusinessTransactionType, je.AccountingDocumentType,
		je.DocumentReferenceID, je.DocumentHeaderText, je.CreatedByUser, je.CompanyCode, je.DocumentDate, je.PostingDate}
	want := []string{"BKPFF", "RFBU", "SA", "INV-77", "Accrual November", testUser, "1010", "2026-11-25", "2026-11-25"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("header = %q, want %q", got, want)
	}
	if len(je.Items) != 2 {
		t.Fatalf("%d items", len(je.Items))
	}
	type item struct{ no, gl, amount, cur, dc, text, ref, cc string }
	wantItems := []item{
		{"1", "61003000", "100.00", "EUR", "S", "Office rent", "SQ-000042", "10101101"},
		{"2", "21100000", "-100.00", "EUR", "H", "", "SQ-000042", ""},
	}
	for i, it := range je.Items {
		g := item{it.ReferenceDocumentItem, it.GLAccount, it.Amount.Value, it.Amount.Currency, it.DebitCreditCode,
			it.DocumentItemText, it.AssignmentReference, it.CostCenter}
		if g != wantItems[i] {
			t.Errorf("item %d = %+v, want %+v", i, g, wantItems[i])
		}
	}

	// A resend of the same job carries the same UUIDs, so SAP can drop it.
	if _, err := c.PostJournalEntry(context.Background(), testJournalEntry()); err != nil {
		t.Fatal(err)
	}
	if envs[1].Body.Request.MessageHeader.UUID != testMessageUUID ||
		envs[1].Body.Request.Requests[0].MessageHeader.UUID != inner.MessageHeader.UUID {
		t.Error("UUIDs differ between sends of the same journal entry")
	}
}

func TestJournalEntryEscaping(t *testing.T) {
	f := newFakeSAP(t)
	nasty := `<a>&'"]]>`
	var raw string
	var env serverEnvelope
	f.soap = func(w http.ResponseWriter, r *http.Request, body []byte) {
		raw = string(body)
		if err := xml.Unmarshal(body, &env); err != nil {
			t.Errorf("server cannot parse request: %v", err)
		}
		writeXML(w, http.StatusOK, soapConfirmation("0100000002", "1010", "2026", "1"))
	}
	je := testJournalEntry()
	je.HeaderText = nasty
	je.DocumentReferenceID = "R&D<1>"
	je.Reference = `SQ'"&<>`
	je.Items[0].Text = nasty
	if _, err := f.client().PostJournalEntry(context.Background(), je); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, nasty) || strings.Contains(raw, "R&D<1>") {
		t.Errorf("unescaped text in request:\n%s", raw)
	}
	got := env.Body.Request.Requests[0].JournalEntry
	if got.DocumentHeaderText != nasty || got.DocumentReferenceID != "R&D<1>" ||
		got.Items[0].DocumentItemText != nasty || got.Items[1].AssignmentReference != je.Reference {
		t.Errorf("round trip changed the texts: %+v", got)
	}
}

func TestPostJournalEntryFailures(t *testing.T) {
	generic := logItem{"609(RW)", "3", "Error in document: BKPFF $ S4HCLNT100"}
	tests := []struct {
		name     string
		status   int
		body     string
		wantCat  Category
		wantCode string
		wantMsg  string
	}{
		{name: "period not open", status: 200,
			body: soapConfirmation("0000000000", "1010", "0000", "3", generic,
				logItem{"201(F5)", "3", "Posting period 011 2024 is not open"}),
			wantCat: Permanent, wantCode: "F5/201", wantMsg: "Posting period 011 2024 is not open"},
		{name: "lock", status: 200,
			body: soapConfirmation("0000000000", "1010", "0000", "3", generic,
				logItem{"601(MC)", "3", "Object requested is currently locked by user BATCH_01"}),
			wantCat: Transient, wantCode: "MC/601"},
		{name: "empty document number", status: 200,
			body:    soapConfirmation("", "1010", "2026", "3", logItem{"507(F5)", "3", "G/L account 99999999 is not defined in chart of accounts YCOA"}),
			wantCat: Permanent, wantCode: "F5/507"},
		{name: "only generic message", status: 200,
			body:    soapConfirmation("0000000000", "1010", "0000", "3", generic),
			wantCat: Permanent, wantCode: "RW/609"},
		{name: "neither document nor error", status: 200,
			body:    soapConfirmation("0000000000", "1010", "0000", "1"),
			wantCat: Unknown},
		{name: "number with errors", status: 200,
			body:    soapConfirmation("0100000009", "1010", "2026", "3", logItem{"201(F5)", "3", "Posting period closed"}),
			wantCat: Unknown},
		{name: "client fault", status: 500,
			body: `<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><soap-env:Fault>` +
				`<faultcode>soap-env:Client</faultcode><faultstring xml:lang="en">Error in XML deserialization</faultstring>` +
				`</soap-env:Fault></soap-env:Body></soap-env:Envelope>`,
			wantCat: Permanent, wantMsg: "Error in XML deserialization"},
		{name: "server fault", status: 500,
			body: `<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><soap-env:Fault>` +
				`<faultcode>soap-env:Server</faultcode><faultstring>Internal error</faultstring>` +
				`</soap-env:Fault></soap-env:Body></soap-env:Envelope>`,
			wantCat: Unknown, wantMsg: "Internal error"},
		{name: "500 without fault", status: 500, body: "<html>ICM error</html>", wantCat: Unknown},
		{name: "503 without Retry-After", status: 503, body: "", wantCat: Unknown},
		{name: "200 not a confirmation", status: 200, body: "<html>logon</html>", wantCat: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSAP(t)
			f.soap = func(w http.ResponseWriter, r *http.Request, _ []byte) { writeXML(w, tt.status, tt.body) }
			_, err := f.client().PostJournalEntry(context.Background(), testJournalEntry())
			e := assertError(t, err, tt.wantCat, tt.status, tt.wantCode)
			if tt.wantMsg != "" && e.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", e.Message, tt.wantMsg)
			}
		})
	}
}

func TestJournalEntryValidation(t *testing.T) {
	f := newFakeSAP(t)
	je := testJournalEntry()
	je.MessageUUID = "not-a-uuid"
	je.Reference = strings.Repeat("R", 19)
	je.Currency = "EURO"
	_, err := f.client().PostJournalEntry(context.Background(), je)
	e := assertError(t, err, Permanent, 0, "")
	for _, want := range []string{"MessageUUID", "Reference", "Currency"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not mention %s", e.Message, want)
		}
	}
}
