package sim

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestJournalEntryPosted(t *testing.T) {
	h := newHarness(t, Options{})
	je := defaultJE("SQ-JE-1")
	resp, b := h.postJE(je.xml())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("Content-Type = %q", ct)
	}
	r := decodeJE(t, b)
	if r.Body.Conf == nil || len(r.Body.Conf.Confirmations) != 1 {
		t.Fatalf("no confirmation: %s", b)
	}
	c := r.Body.Conf.Confirmations[0]
	if c.Doc.AccountingDocument != "0100000001" || c.Doc.CompanyCode != "1010" || c.Doc.FiscalYear != "2026" {
		t.Errorf("document = %+v", c.Doc)
	}
	if c.Log.Max != "1" || len(c.Log.Items) != 1 || c.Log.Items[0].TypeID != "605(RW)" ||
		c.Log.Items[0].Note != "Document posted successfully: BKPFF 0100000001 1010 2026 S4HCLNT100" {
		t.Errorf("log = %+v", c.Log)
	}
	if r.Body.Conf.Log.Result != "5" || r.Body.Conf.Log.Max != "1" || r.Body.Conf.MessageHeader.ReferenceUUID != je.UUID {
		t.Errorf("outer = %+v %+v", r.Body.Conf.Log, r.Body.Conf.MessageHeader)
	}
	// The root element carries the SFIN namespace with a prefix; children are unqualified.
	if !bytes.Contains(b, []byte(`<n0:JournalEntryBulkCreateConfirmation xmlns:n0="http://sap.com/xi/SAPSCORE/SFIN"><MessageHeader>`)) {
		t.Errorf("unexpected shape: %s", b)
	}

	// Numbering: consecutive per company code and fiscal year.
	_, b = h.postJE(defaultJE("SQ-JE-2").xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument; got != "0100000002" {
		t.Errorf("second document = %s", got)
	}
	other := defaultJE("SQ-JE-3")
	other.CompanyCode = "1710"
	for i := range other.Items {
		other.Items[i].Currency = "USD"
	}
	_, b = h.postJE(other.xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Doc; got.AccountingDocument != "0100000001" || got.CompanyCode != "1710" {
		t.Errorf("1710 document = %+v", got)
	}

	l := h.sim.Ledger()
	if len(l) != 3 || l[0].Kind != KindJournalEntry || l[0].Reference != "SQ-JE-1" || l[0].Document != "0100000001" {
		t.Errorf("ledger = %+v", l)
	}
}

func TestJournalEntryBusinessErrors(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*journalEntry)
		typeID string
		note   string
	}{
		{"closed period", func(j *journalEntry) { j.PostingDate = "2024-11-30" }, "201(F5)", "Posting period 011 2024 is not open"},
		{"unbalanced", func(j *journalEntry) { j.Items[1].Amount = "-90.00" }, "702(F5)", "Balance in transaction currency 10.00 EUR"},
		{"debit with negative amount", func(j *journalEntry) {
			j.Items[0].Amount, j.Items[1].Amount = "-100.00", "100.00"
		}, "702(F5)", "item 1 has debit/credit code S"},
		{"unknown G/L account", func(j *journalEntry) { j.Items[0].GL = "99999999" }, "507(F5)", "G/L account 99999999 is not defined in chart of accounts YCOA"},
		{"unknown cost center", func(j *journalEntry) { j.Items[0].CostCenter = "10109999" }, "248(KI)", "Cost center A000/10109999 does not exist on 25.11.2026"},
		{"unknown company code", func(j *journalEntry) { j.CompanyCode = "9999" }, "165(F5)", "Company code 9999 does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			je := defaultJE("SQ-ERR")
			c.mod(&je)
			resp, b := h.postJE(je.xml())
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %s", resp.StatusCode, b)
			}
			r := decodeJE(t, b)
			conf := r.Body.Conf.Confirmations[0]
			if conf.Doc.AccountingDocument != "0000000000" || conf.Doc.FiscalYear != "0000" || conf.Doc.CompanyCode != je.CompanyCode {
				t.Errorf("document = %+v", conf.Doc)
			}
			if conf.Log.Max != "3" || r.Body.Conf.Log.Max != "3" || r.Body.Conf.Log.Result == "5" {
				t.Errorf("severities: inner %s outer %+v", conf.Log.Max, r.Body.Conf.Log)
			}
			items := conf.Log.Items
			if len(items) < 2 || items[0].TypeID != "609(RW)" || items[0].Note != "Error in document: BKPFF $ S4HCLNT100" {
				t.Fatalf("log items = %+v", items)
			}
			found := false
			for _, it := range items[1:] {
				if it.TypeID == c.typeID && strings.Contains(it.Note, c.note) && it.SeverityCode == "3" {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s item containing %q in %+v", c.typeID, c.note, items)
			}
			if len(h.sim.Ledger()) != 0 || h.sim.Stats().Rejected[KindJournalEntry] != 1 {
				t.Errorf("ledger %v stats %+v", h.sim.Ledger(), h.sim.Stats())
			}
		})
	}
}

func TestJournalEntryReplay(t *testing.T) {
	h := newHarness(t, Options{})
	je := defaultJE("SQ-REPLAY")
	_, first := h.postJE(je.xml())
	_, second := h.postJE(je.xml())
	if !bytes.Equal(first, second) {
		t.Errorf("replay differs:\n%s\n%s", first, second)
	}
	if n := h.sim.CountByReference("SQ-REPLAY"); n != 1 {
		t.Errorf("posted %d times", n)
	}
	if st := h.sim.Stats(); st.Replayed != 1 || st.Posted[KindJournalEntry] != 1 || st.Attempts[KindJournalEntry] != 2 {
		t.Errorf("stats = %+v", st)
	}

	// A refusal is remembered like a posting: the same UUID gets it again,
	// even after the data was fixed. A corrected resend needs a new UUID.
	bad := defaultJE("SQ-FIXED")
	bad.Items[0].GL = "99999999"
	_, refused := h.postJE(bad.xml())
	if decodeJE(t, refused).Body.Conf.Confirmations[0].Log.Max != "3" {
		t.Fatalf("expected rejection: %s", refused)
	}
	bad.Items[0].GL = "61003000"
	if _, b := h.postJE(bad.xml()); !bytes.Equal(b, refused) {
		t.Errorf("fixed resend under the same UUID was not answered with the refusal:\n%s", b)
	}
	bad.UUID = newUUID()
	_, b := h.postJE(bad.xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument; got != "0100000002" {
		t.Errorf("fixed resend under a new UUID: document %s", got)
	}
}

// A repeat that arrives while SAP is still processing the first request of a
// UUID (a client that timed out and resent) is refused unprocessed; once the
// first has committed, repeats are answered from it.
func TestJournalEntryRepeatWhileProcessing(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{SlowLatency: 300 * time.Millisecond, Next: []FaultKind{FaultSlow}}})
	je := defaultJE("SQ-SLOW")
	first := make(chan []byte)
	go func() {
		_, b := h.postJE(je.xml())
		first <- b
	}()
	// Wait until the slow request is inside SAP, then repeat it.
	deadline := time.Now().Add(5 * time.Second)
	for h.sim.Stats().Faults[FaultSlow] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow request did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	resp, b := h.postJE(je.xml())
	if resp.StatusCode != http.StatusInternalServerError || decodeJE(t, b).Body.Fault == nil || !strings.Contains(string(b), "being processed") {
		t.Errorf("repeat during processing: %d %s", resp.StatusCode, b)
	}
	original := <-first
	if decodeJE(t, original).Body.Conf.Confirmations[0].Doc.AccountingDocument != "0100000001" {
		t.Fatalf("slow request: %s", original)
	}
	if _, b := h.postJE(je.xml()); !bytes.Equal(b, original) {
		t.Errorf("repeat after the commit: %s", b)
	}
	if n := h.sim.CountByReference("SQ-SLOW"); n != 1 {
		t.Errorf("posted %d times", n)
	}
}

func TestJournalEntryConcurrentReplay(t *testing.T) {
	h := newHarness(t, Options{})
	body := defaultJE("SQ-RACE").xml()
	done := make(chan []byte)
	for range 8 {
		go func() {
			_, b := h.postJE(body)
			done <- b
		}()
	}
	// Each answer is the one confirmation, or the refusal of a repeat that
	// arrived while the first was being processed.
	var first []byte
	for range 8 {
		b := <-done
		r := decodeJE(t, b)
		switch {
		case r.Body.Fault != nil && strings.Contains(r.Body.Fault.String, "being processed"):
		case first == nil:
			first = b
		case !bytes.Equal(b, first):
			t.Errorf("responses differ")
		}
	}
	if n := h.sim.CountByReference("SQ-RACE"); n != 1 {
		t.Errorf("posted %d times", n)
	}
}

func TestJournalEntryMalformed(t *testing.T) {
	qualified := strings.Replace(defaultJE("SQ-Q").xml(), `<sfin:JournalEntryBulkCreateRequest xmlns:sfin="http://sap.com/xi/SAPSCORE/SFIN">`,
		`<JournalEntryBulkCreateRequest xmlns="http://sap.com/xi/SAPSCORE/SFIN">`, 1)
	qualified = strings.Replace(qualified, `</sfin:JournalEntryBulkCreateRequest>`, `</JournalEntryBulkCreateRequest>`, 1)
	longRef := defaultJE(strings.Repeat("A", 19))
	badAmount := defaultJE("SQ-AMT")
	badAmount.Items[0].Amount = "1,00"
	badUUID := defaultJE("SQ-UUID")
	badUUID.UUID = "job-42"
	cases := map[string]string{
		"not XML":              `<soapenv:Envelope><oops`,
		"no request element":   `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`,
		"qualified children":   qualified,
		"assignment too long":  longRef.xml(),
		"amount not a decimal": badAmount.xml(),
		"UUID not a UUID":      badUUID.xml(),
		"bad date":             strings.Replace(defaultJE("SQ-D").xml(), "<PostingDate>2026-11-25", "<PostingDate>25.11.2026", 1),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			resp, b := h.postJE(body)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d body %s", resp.StatusCode, b)
			}
			r := decodeJE(t, b)
			if r.Body.Fault == nil || r.Body.Fault.Code != "soap-env:Client" || r.Body.Fault.String == "" {
				t.Errorf("fault = %+v (%s)", r.Body.Fault, b)
			}
			if len(h.sim.Ledger()) != 0 {
				t.Error("malformed request posted")
			}
		})
	}
	h := newHarness(t, Options{})
	resp, _ := h.mustRequest(http.MethodPost, JournalEntrySOAPPath, []byte(defaultJE("SQ-CT").xml()), map[string]string{"Content-Type": "application/soap+xml"})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("SOAP 1.2 content type: status %d", resp.StatusCode)
	}
}

func TestXMLMetacharactersRoundTrip(t *testing.T) {
	h := newHarness(t, Options{})
	const assignment = `A<&>'"]]>`
	const text = `Paper & "ink" <cheap> ]]> 'quoted'`
	je := defaultJE(assignment)
	je.HeaderText = `<b>&amp;</b>`
	je.DocRef = `R&D<1>`
	for i := range je.Items {
		je.Items[i].Text = text
	}
	resp, b := h.postJE(je.xml())
	if resp.StatusCode != http.StatusOK || decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument != "0100000001" {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	v := url.Values{"$filter": {"CompanyCode eq '1010' and AssignmentReference eq " + quoteLiteral(assignment)}}
	code, m := h.getJSON(glColl + query(v))
	rows := results(m)
	if code != http.StatusOK || len(rows) != 2 {
		t.Fatalf("lookup: %d %v", code, m)
	}
	if dig(rows[0], "DocumentItemText") != text || dig(rows[0], "AssignmentReference") != assignment {
		t.Errorf("row = %v", rows[0])
	}
	if h.sim.CountByReference(assignment) != 1 {
		t.Errorf("ledger = %+v", h.sim.Ledger())
	}

	// Metacharacters in values echoed in error notes are escaped as well.
	bad := defaultJE("SQ-META")
	bad.Items[0].GL = `6<&>"'`
	_, b = h.postJE(bad.xml())
	items := decodeJE(t, b).Body.Conf.Confirmations[0].Log.Items
	if len(items) < 2 || items[1].Note != `G/L account 6<&>"' is not defined in chart of accounts YCOA` {
		t.Errorf("items = %+v (%s)", items, b)
	}
}
