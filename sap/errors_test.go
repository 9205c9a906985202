package sap

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestSecretsNeverLeak(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	cfg := Config{BaseURL: "https://s4.example.com", User: testUser, Password: testPassword}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "cfg", cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"%s":     fmt.Sprintf("%s", cfg),
		"ptr %v": fmt.Sprintf("%+v", &cfg),
		"client": fmt.Sprintf("%+v %#v", c, c),
		"slog":   logBuf.String(),
		"json":   mustJSON(t, cfg),
	} {
		if strings.Contains(s, testPassword) {
			t.Errorf("%s prints the password: %s", name, s)
		}
		if !strings.Contains(s, testUser) {
			t.Errorf("%s lost the user: %s", name, s)
		}
	}

	// A misbehaving server echoes the credentials back in its error.
	f := newFakeSAP(t)
	f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, pw, _ := r.BasicAuth()
		writeJSON(w, http.StatusBadRequest, v2Error("ZZ/001", "bad login "+pw+" header "+r.Header.Get("Authorization")))
	}
	_, err = f.client().PostSupplierInvoice(context.Background(), testInvoice())
	e := assertError(t, err, Permanent, http.StatusBadRequest, "ZZ/001")
	all := err.Error() + fmt.Sprintf("%+v", e.Messages)
	if strings.Contains(all, testPassword) || strings.Contains(all, basic) {
		t.Errorf("credentials in error: %s", all)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{BaseURL: "s4.example.com", User: "U"},
		{BaseURL: "ftp://s4.example.com", User: "U"},
		{BaseURL: "https://u:" + testPassword + "@s4.example.com", User: "U"},
		{BaseURL: "https://s4.example.com?sap-client=200", User: "U"},
		{BaseURL: "https://s4.example.com"},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("New(%v) succeeded", cfg)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	c, err := New(Config{BaseURL: "https://s4.example.com/", User: "U"})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Client != "100" || c.cfg.Timeout != 30*time.Second {
		t.Errorf("defaults: %v", c.cfg)
	}
	if got := c.url("/sap/x", nil); got != "https://s4.example.com/sap/x?sap-client=100&sap-language=EN" {
		t.Errorf("url = %s", got)
	}
}

func TestCategory(t *testing.T) {
	for cat, want := range map[Category]string{Transient: "transient", Permanent: "permanent", Unknown: "outcome_unknown", Duplicate: "duplicate", 0: "Category(0)"} {
		if cat.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(cat), cat.String(), want)
		}
	}
	wrapped := fmt.Errorf("job 7: %w", &Error{Category: Transient, RetryAfter: time.Minute})
	tests := []struct {
		err  error
		want Category
	}{
		{nil, 0},
		{wrapped, Transient},
		{context.Canceled, Unknown},
		{context.DeadlineExceeded, Unknown},
		{errors.New("boom"), Unknown},
	}
	for _, tt := range tests {
		if got := CategoryOf(tt.err); got != tt.want {
			t.Errorf("CategoryOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if RetryAfterOf(wrapped) != time.Minute || RetryAfterOf(errors.New("x")) != 0 {
		t.Error("RetryAfterOf")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Category: Permanent, Op: "post supplier invoice", HTTPStatus: 400, Code: "F5/201", Message: "Posting period 011 2024 is not open"}
	if got, want := e.Error(), "sap: post supplier invoice: permanent (HTTP 400): F5/201 Posting period 011 2024 is not open"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	cause := errors.New("connection reset by peer")
	e = &Error{Category: Unknown, Op: "post journal entry", Message: "connection to SAP failed", Err: cause}
	if !errors.Is(e, cause) || !strings.HasSuffix(e.Error(), ": connection reset by peer") {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"Wed, 25 Nov 2026 10:01:30 GMT", 90 * time.Second},
		{"Wednesday, 25-Nov-26 10:00:10 GMT", 10 * time.Second}, // RFC 850
		{"Wed, 25 Nov 2026 09:00:00 GMT", 0},                    // past
		{"99999999999999999999", 0},                             // overflows int64: not a number
		{"9999999999999", time.Duration(1<<63-1) / time.Second * time.Second},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestODataHelpers(t *testing.T) {
	for in, want := range map[string]string{"119": "119.00", "119.5": "119.50", "-100": "-100.00", "0.005": "0.005", "1234567.891": "1234567.891", "0": "0.00"} {
		if got := formatAmount(decimal.RequireFromString(in)); got != want {
			t.Errorf("formatAmount(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"INV-1": "'INV-1'", "O'Brien": "'O''Brien'", "''": "''''''"} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
	// A calendar date keeps its day whatever the location.
	berlin := time.FixedZone("CET", 3600)
	d, _ := odataDate(time.Date(2024, 11, 22, 0, 30, 0, 0, berlin)).MarshalJSON()
	if string(d) != `"\/Date(1732233600000)\/"` {
		t.Errorf("odataDate = %s", d)
	}
	h := http.Header{}
	h.Set("sap-message", "{not json")
	if msgs := parseSAPMessage(h); msgs != nil {
		t.Errorf("malformed sap-message parsed: %v", msgs)
	}
	if code, text, msgs, ok := parseODataError([]byte(`<html/>`)); ok {
		t.Errorf("html parsed as OData error: %q %q %v", code, text, msgs)
	}
}

func TestScrubKeepsChain(t *testing.T) {
	c, err := New(Config{BaseURL: "https://s4.example.com", User: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	cause := fmt.Errorf("proxy said %s: %w", testPassword, context.DeadlineExceeded)
	e := c.scrub(&Error{Category: Unknown, Op: "x", Message: "m " + testPassword, Err: cause})
	if strings.Contains(e.Error(), testPassword) {
		t.Errorf("password in %q", e.Error())
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Error("scrubbing broke the error chain")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
