package sim

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFaultFail(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{FailRate: 1}})
	resp, b := h.postInvoice(defaultInvoice("INV-F").json())
	if resp.StatusCode != http.StatusServiceUnavailable || odataCode(t, b) == "" || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("invoice: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	resp, b = h.postJE(defaultJE("SQ-F").xml())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("journal entry: %d %s", resp.StatusCode, b)
	}
	if n := len(h.sim.Ledger()); n != 0 {
		t.Errorf("%d documents posted", n)
	}
	st := h.sim.Stats()
	if st.Faults[FaultFail] != 2 || st.Attempts[KindSupplierInvoice] != 1 || st.Attempts[KindJournalEntry] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaultsSpareReadsAndFetch(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{FailRate: 1}})
	h.fetchToken() // fails the test unless 200
	if code, _ := h.getJSON(siColl + "?$filter=CompanyCode%20eq%20'1010'"); code != http.StatusOK {
		t.Errorf("read: %d", code)
	}
	if code, _ := h.getJSON(glColl); code != http.StatusOK {
		t.Errorf("read: %d", code)
	}
}

func TestFaultLock(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{LockRate: 1}})
	resp, b := h.postInvoice(defaultInvoice("INV-L").json())
	m := decodeJSON(t, b)
	if resp.StatusCode != http.StatusBadRequest || dig(m, "error", "code") != "MC/601" ||
		dig(m, "error", "message", "value") != "Object requested is currently locked by user BATCH_01" {
		t.Errorf("invoice: %d %s", resp.StatusCode, b)
	}
	je := defaultJE("SQ-L")
	resp, b = h.postJE(je.xml())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("journal entry: %d %s", resp.StatusCode, b)
	}
	conf := decodeJE(t, b).Body.Conf.Confirmations[0]
	if conf.Log.Max != "3" || len(conf.Log.Items) != 2 || conf.Log.Items[1].TypeID != "601(MC)" || conf.Doc.AccountingDocument != "0000000000" {
		t.Errorf("confirmation = %+v", conf)
	}
	if n := len(h.sim.Ledger()); n != 0 {
		t.Errorf("%d documents posted", n)
	}
	// SAP processed the message and answered with the lock: a repeat of its
	// UUID gets that answer again. Once the lock is released, the entry
	// posts under a new UUID.
	mustSetFaults(t, h.sim, Faults{})
	_, b = h.postJE(je.xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Log.Items[1].TypeID; got != "601(MC)" {
		t.Errorf("repeat of the locked message: %s", b)
	}
	je.UUID = newUUID()
	_, b = h.postJE(je.xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument; got != "0100000001" {
		t.Errorf("after lock, new UUID: %s", got)
	}
}

func TestFaultThrottle(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{ThrottleRate: 1}})
	for name, post := range map[string]func() (*http.Response, []byte){
		"invoice":       func() (*http.Response, []byte) { return h.postInvoice(defaultInvoice("INV-T").json()) },
		"journal entry": func() (*http.Response, []byte) { return h.postJE(defaultJE("SQ-T").xml()) },
	} {
		resp, b := post()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: %d Retry-After %q %s", name, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	if n := len(h.sim.Ledger()); n != 0 {
		t.Errorf("%d documents posted", n)
	}
}

func TestFaultAmbiguous(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{AmbiguousRate: 1}})
	h.fetchToken()

	// First the connection drops without an answer...
	_, err := h.request(http.MethodPost, siColl, []byte(defaultInvoice("INV-A1").json()),
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": h.tok})
	if err == nil {
		t.Fatal("expected a transport error")
	}
	// ...then a gateway answers 504.
	resp, b := h.postInvoice(defaultInvoice("INV-A2").json())
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(b), "Gateway Time-out") {
		t.Errorf("second: %d %s", resp.StatusCode, b)
	}
	// Both were posted nevertheless.
	if h.sim.CountByReference("SQ-INV-A1") != 1 || h.sim.CountByReference("SQ-INV-A2") != 1 {
		t.Errorf("ledger = %+v", h.sim.Ledger())
	}
	// A look-up finds what the lost answer would have said.
	_, m := h.getJSON(siColl + "?$filter=SupplierInvoiceIDByInvcgParty%20eq%20'INV-A1'")
	if len(results(m)) != 1 {
		t.Errorf("lookup: %v", m)
	}

	// The same for journal entries, and the replay of the lost request is answered
	// from the UUID store without posting again.
	je := defaultJE("SQ-A")
	if _, err := h.request(http.MethodPost, JournalEntrySOAPPath, []byte(je.xml()), map[string]string{"Content-Type": "text/xml"}); err == nil {
		t.Error("journal entry: expected a transport error")
	}
	mustSetFaults(t, h.sim, Faults{})
	resp, b = h.postJE(je.xml())
	if got := decodeJE(t, b).Body.Conf.Confirmations[0].Doc.AccountingDocument; resp.StatusCode != 200 || got != "0100000001" {
		t.Errorf("replay after lost answer: %d %s", resp.StatusCode, got)
	}
	if n := h.sim.CountByReference("SQ-A"); n != 1 {
		t.Errorf("journal entry posted %d times", n)
	}
}

func TestFaultAmbiguousWithoutHijacker(t *testing.T) {
	sim := New(Options{Faults: Faults{AmbiguousRate: 1}, Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	req := httptest.NewRequest(http.MethodPost, JournalEntrySOAPPath, strings.NewReader(defaultJE("SQ-R").xml()))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "text/xml")
	rec := httptest.NewRecorder() // not a Hijacker
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusGatewayTimeout || sim.CountByReference("SQ-R") != 1 {
		t.Errorf("status %d, ledger %+v", rec.Code, sim.Ledger())
	}
}

// SAP does not stop processing when the client gives up: the document is
// posted and only the answer is lost.
func TestFaultLatencyOutlivesTheClient(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{Latency: 50 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, JournalEntrySOAPPath, strings.NewReader(defaultJE("SQ-LAT").xml()))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "text/xml")
	h.sim.ServeHTTP(httptest.NewRecorder(), req)
	if n := h.sim.CountByReference("SQ-LAT"); n != 1 {
		t.Errorf("posted %d documents for a client that left, want 1 (SAP commits anyway)", n)
	}

	mustSetFaults(t, h.sim, Faults{Latency: 20 * time.Millisecond})
	start := time.Now()
	resp, _ := h.postJE(defaultJE("SQ-LAT2").xml())
	if resp.StatusCode != http.StatusOK || time.Since(start) < 20*time.Millisecond {
		t.Errorf("status %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestFaultsValidation(t *testing.T) {
	for _, f := range []Faults{{FailRate: 1.5}, {LockRate: -0.1}, {FailRate: 0.6, ThrottleRate: 0.5}, {Latency: -time.Second}, {Latency: time.Hour}} {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	s := New(Options{})
	if err := s.SetFaults(Faults{AmbiguousRate: 2}); err == nil {
		t.Error("SetFaults accepted invalid faults")
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted invalid faults")
		}
	}()
	New(Options{Faults: Faults{FailRate: 2}})
}

func TestFaultsEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(h.srv.URL+"/sim/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, m := post(`{"fail_rate":0.1,"ambiguous_rate":0.05,"lock_rate":0.05,"throttle_rate":0.03,"slow_rate":0.02,"slow_latency":"3s","latency":"200ms","next":["slow",""]}`)
	if code != http.StatusOK || m["latency"] != "200ms" || m["fail_rate"] != 0.1 || m["slow_latency"] != "3s" {
		t.Errorf("set: %d %v", code, m)
	}
	want := Faults{FailRate: 0.1, AmbiguousRate: 0.05, LockRate: 0.05, ThrottleRate: 0.03, SlowRate: 0.02,
		SlowLatency: 3 * time.Second, Latency: 200 * time.Millisecond, Next: []FaultKind{FaultSlow, ""}}
	if got := h.sim.Faults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Faults() = %+v", got)
	}
	for _, bad := range []string{`{"fail_rte":0.1}`, `{"fail_rate":2}`, `{"latency":"soon"}`, `{"slow_latency":"1h"}`, `{"next":["crash"]}`, `not json`} {
		if code, m := post(bad); code != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("%s: %d %v", bad, code, m)
		}
	}
	resp, err := http.Get(h.srv.URL + "/sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Faults
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("GET: %+v %v", got, err)
	}
}

func TestFaultRollsDeterministicWithSeed(t *testing.T) {
	f := Faults{FailRate: 0.25, AmbiguousRate: 0.25, LockRate: 0.25}
	a, b := newFaultInjector(f, 42), newFaultInjector(f, 42)
	seen := map[FaultKind]int{}
	for range 200 {
		ka, _ := a.roll()
		kb, _ := b.roll()
		if ka != kb {
			t.Fatal("same seed, different rolls")
		}
		seen[ka]++
	}
	for _, k := range []FaultKind{"", FaultFail, FaultAmbiguous, FaultLock} {
		if seen[k] == 0 {
			t.Errorf("kind %q never rolled: %v", k, seen)
		}
	}
	if seen[FaultThrottle] != 0 {
		t.Errorf("throttle rolled at rate 0")
	}
}

// A held request stays inside SAP until released, then commits even though
// its client gave up long before.
func TestFaultHold(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{Next: []FaultKind{FaultHold}}})
	body := defaultInvoice("INV-HOLD").json()
	h.fetchToken()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+siColl+"?sap-client=100", strings.NewReader(body))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", h.tok)
	done := make(chan error, 1)
	go func() {
		resp, err := h.hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.sim.Held() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the request was not held")
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // the client gives up
	<-done
	if len(h.sim.Ledger()) != 0 {
		t.Fatal("posted while held")
	}
	if !h.sim.Release() || h.sim.Release() {
		t.Fatal("release: want exactly one held request")
	}
	for len(h.sim.Ledger()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the released request did not commit")
		}
		time.Sleep(time.Millisecond)
	}
}

// A server error after processing carries what SAP had to say: a refusal's
// messages, or a runtime error once the document was committed.
func TestFaultServerError(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{Next: []FaultKind{FaultServerError, FaultServerError}}})
	closed := defaultInvoice("INV-500-A")
	closed.Posting = edmDateJSON(2020, 1, 15)
	resp, b := h.postInvoice(closed.json())
	if resp.StatusCode != http.StatusInternalServerError || odataCode(t, b) != "F5/201" || len(h.sim.Ledger()) != 0 {
		t.Errorf("refused: %d %s", resp.StatusCode, b)
	}
	resp, b = h.postInvoice(defaultInvoice("INV-500-B").json())
	if resp.StatusCode != http.StatusInternalServerError || odataCode(t, b) != "/IWBEP/CM_MGW_RT/004" || len(h.sim.Ledger()) != 1 {
		t.Errorf("committed: %d %s", resp.StatusCode, b)
	}
}
