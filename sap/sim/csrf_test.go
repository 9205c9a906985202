package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuthentication(t *testing.T) {
	h := newHarness(t, Options{})
	cases := []struct {
		name string
		mod  func(*http.Request)
	}{
		{"no credentials", func(r *http.Request) { r.Header.Del("Authorization") }},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth(user, "wrong") }},
		{"wrong user", func(r *http.Request) { r.SetBasicAuth("OTHER", pass) }},
		{"other client", func(r *http.Request) { r.URL.RawQuery = "sap-client=200" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, JournalEntrySOAPPath+"?sap-client=100", strings.NewReader("<not-xml"))
			req.SetBasicAuth(user, pass)
			c.mod(req)
			rec := httptest.NewRecorder()
			h.sim.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", rec.Code)
			}
			if got, want := rec.Header().Get("WWW-Authenticate"), `Basic realm="SAP NetWeaver Application Server [S4H/100]"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
	if st := h.sim.Stats(); st.Attempts[KindJournalEntry] != 0 {
		t.Errorf("unauthenticated requests counted as attempts: %+v", st)
	}
	// Control endpoints need no credentials.
	resp, err := http.Get(h.srv.URL + "/sim/ledger")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/sim/ledger status = %d", resp.StatusCode)
	}
}

func TestCSRFDance(t *testing.T) {
	h := newHarness(t, Options{})
	body := defaultInvoice("INV-CSRF").json()
	jsonHdr := map[string]string{"Content-Type": "application/json"}

	// A POST without a token is refused before anything is read.
	resp, b := h.mustRequest(http.MethodPost, siColl, []byte(body), jsonHdr)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-CSRF-Token") != "Required" {
		t.Fatalf("no token: status %d, X-CSRF-Token %q", resp.StatusCode, resp.Header.Get("X-CSRF-Token"))
	}
	if string(b) != "CSRF token validation failed" {
		t.Errorf("body = %q", b)
	}

	// Fetch sets the session cookies and returns a token.
	resp, _ = h.mustRequest(http.MethodGet, siRoot, nil, map[string]string{"X-CSRF-Token": "Fetch"})
	token := resp.Header.Get("X-CSRF-Token")
	if resp.StatusCode != http.StatusOK || token == "" || token == "Required" {
		t.Fatalf("fetch: status %d token %q", resp.StatusCode, token)
	}
	cookies := map[string]*http.Cookie{}
	for _, c := range resp.Cookies() {
		cookies[c.Name] = c
	}
	if c := cookies["SAP_SESSIONID_S4H_100"]; c == nil || !c.HttpOnly || c.Path != "/" {
		t.Errorf("session cookie = %+v", c)
	}
	if c := cookies["sap-usercontext"]; c == nil || c.Value != "sap-client=100" {
		t.Errorf("sap-usercontext cookie = %+v", c)
	}

	// A second fetch in the same session returns the same token.
	resp, _ = h.mustRequest(http.MethodHead, siRoot, nil, map[string]string{"X-CSRF-Token": "fetch"})
	if got := resp.Header.Get("X-CSRF-Token"); got != token {
		t.Errorf("refetch token = %q, want %q", got, token)
	}

	// The token alone, without the session cookie, is not enough.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+siColl+"?sap-client=100", strings.NewReader(body))
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-CSRF-Token", token)
	req.Header.Set("Content-Type", "application/json")
	noJar, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	noJar.Body.Close()
	if noJar.StatusCode != http.StatusForbidden || noJar.Header.Get("X-CSRF-Token") != "Required" {
		t.Errorf("token without cookie: status %d", noJar.StatusCode)
	}

	// Token and cookie together: created.
	h.tok = token
	resp, b = h.postInvoice(body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("with token: status %d body %s", resp.StatusCode, b)
	}

	// After the tokens expire the client is told to fetch again, and a fresh fetch works.
	h.sim.ExpireCSRFTokens()
	resp, _ = h.postInvoice(defaultInvoice("INV-CSRF-2").json())
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-CSRF-Token") != "Required" {
		t.Fatalf("expired token: status %d", resp.StatusCode)
	}
	if h.fetchToken() == token {
		t.Error("token after expiry equals the expired one")
	}
	if resp, b = h.postInvoice(defaultInvoice("INV-CSRF-2").json()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after refetch: status %d body %s", resp.StatusCode, b)
	}

	st := h.sim.Stats()
	if st.CSRFRejected != 3 || st.Attempts[KindSupplierInvoice] != 2 || st.Posted[KindSupplierInvoice] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCSRFNotRequiredForSOAPOrReads(t *testing.T) {
	h := newHarness(t, Options{})
	if resp, b := h.postJE(defaultJE("SQ-NOCSRF").xml()); resp.StatusCode != http.StatusOK {
		t.Fatalf("SOAP without token: status %d body %s", resp.StatusCode, b)
	}
	if code, _ := h.getJSON(glColl + "?$format=json"); code != http.StatusOK {
		t.Fatalf("GET without token: status %d", code)
	}
}

func TestCSRFExpireEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	h.fetchToken()
	resp, err := http.Post(h.srv.URL+"/sim/csrf/expire", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := h.postInvoice(defaultInvoice("INV-X").json()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post after expiry: status %d", resp.StatusCode)
	}
}

func TestSessionStoreBounded(t *testing.T) {
	st := newSessionStore()
	first, _ := st.fetch("", testNow)
	for range maxSessions {
		st.fetch("", testNow)
	}
	if n := st.lru.Len(); n != maxSessions {
		t.Fatalf("sessions = %d, want %d", n, maxSessions)
	}
	if st.valid(first.id, first.token, testNow) {
		t.Error("oldest session survived eviction")
	}
	s, _ := st.fetch("", testNow)
	if !st.valid(s.id, s.token, testNow) || st.valid(s.id, s.token, testNow.Add(sessionIdleTTL+1)) {
		t.Error("idle TTL not applied")
	}
}
