package sap

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestPostErrorClassification runs the supplier invoice post against every
// kind of failure answer SAP (or a gateway in front of it) gives.
func TestPostErrorClassification(t *testing.T) {
	httpDate := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		body     any // JSON-encoded unless a string
		wantCat  Category
		wantCode string
		wantMsg  string
		minRetry time.Duration
		maxRetry time.Duration
	}{
		{name: "period not open", status: 400, body: v2Error("F5/201", "Posting period 011 2024 is not open"),
			wantCat: Permanent, wantCode: "F5/201", wantMsg: "Posting period 011 2024 is not open"},
		{name: "unbalanced", status: 400, body: v2Error("F5/702", "Balance in transaction currency"),
			wantCat: Permanent, wantCode: "F5/702"},
		// The duplicate may be this posting's own document from a call whose
		// answer was lost: the worker looks it up before deciding.
		{name: "duplicate invoice", status: 400, body: v2Error("M8/108", "Check if invoice already entered under accounting document 5105600001 2026"),
			wantCat: Duplicate, wantCode: "M8/108"},
		{name: "already exists by text", status: 400, body: v2Error("ZZ/123", "Document 4711 already exists"),
			wantCat: Duplicate, wantCode: "ZZ/123"},
		{name: "lock in the logon language", status: 400, body: v2Error("ZZ/998", "Lieferant 17300001 ist gesperrt durch Benutzer JDOE"),
			wantCat: Transient, wantCode: "ZZ/998"},
		{name: "408", status: 408, body: "", wantCat: Transient},
		{name: "423", status: 423, body: "", wantCat: Transient},
		{name: "425", status: 425, body: "", wantCat: Transient},
		{name: "unknown business error", status: 400, body: v2Error("ZZ/001", "Something else is wrong"),
			wantCat: Permanent, wantCode: "ZZ/001"},
		{name: "lock by code", status: 400, body: v2Error("MC/601", "Object requested is currently locked by user BATCH_01"),
			wantCat: Transient, wantCode: "MC/601"},
		{name: "lock by text", status: 400, body: v2Error("ZZ/999", "Supplier 17300001 is locked by user JDOE"),
			wantCat: Transient, wantCode: "ZZ/999"},
		{name: "lock in details only", status: 400, body: map[string]any{"error": map[string]any{
			"code": "/IWBEP/CM_MGW_RT/022", "message": map[string]any{"lang": "en", "value": "Error while processing"},
			"innererror": map[string]any{"errordetails": []any{
				map[string]any{"code": "VL/045", "message": "Delivery is currently being processed by BATCH_02", "severity": "error"},
			}}}},
			wantCat: Transient, wantCode: "/IWBEP/CM_MGW_RT/022"},
		{name: "lock as warning does not count", status: 400, body: map[string]any{"error": map[string]any{
			"code": "F5/104", "message": map[string]any{"lang": "en", "value": "Vendor 17300001 is not defined in company code 1010"},
			"innererror": map[string]any{"errordetails": []any{
				map[string]any{"code": "F5/104", "message": "Vendor 17300001 is not defined in company code 1010", "severity": "error"},
				map[string]any{"code": "MC/601", "message": "Object was locked by user X", "severity": "warning"},
			}}}},
			wantCat: Permanent, wantCode: "F5/104"},
		{name: "V4 error", status: 400, body: map[string]any{"error": map[string]any{
			"code": "M7/502", "message": "Date check failed", "target": "PostingDate",
			"details": []any{map[string]any{"code": "M7/502", "message": "Date check failed", "@SAP__common.numericSeverity": 4}}}},
			wantCat: Permanent, wantCode: "M7/502", wantMsg: "Date check failed"},
		{name: "V4 lock", status: 400, body: map[string]any{"error": map[string]any{
			"code": "SY/530", "message": "Error",
			"details": []any{map[string]any{"code": "56/393", "message": "Cost center blocked by user X", "@SAP__common.numericSeverity": 4}}}},
			wantCat: Transient, wantCode: "SY/530"},
		{name: "429 seconds", status: 429, header: map[string]string{"Retry-After": "30", "Content-Type": "text/plain"},
			body: "Too many requests", wantCat: Transient, minRetry: 30 * time.Second, maxRetry: 30 * time.Second},
		{name: "429 http date", status: 429, header: map[string]string{"Retry-After": httpDate},
			body: v2Error("429", "Rate limit exceeded"), wantCat: Transient, wantCode: "429",
			minRetry: 60 * time.Second, maxRetry: 2 * time.Minute},
		{name: "503 without Retry-After", status: 503, body: "", wantCat: Unknown},
		{name: "503 with retry", status: 503, header: map[string]string{"Retry-After": "5"}, body: "",
			wantCat: Transient, minRetry: 5 * time.Second, maxRetry: 5 * time.Second},
		{name: "500", status: 500, body: v2Error("/IWBEP/CM_MGW_RT/004", "Runtime error"),
			wantCat: Unknown, wantCode: "/IWBEP/CM_MGW_RT/004"},
		// A 500 may follow a commit: even a data-error message does not prove
		// that nothing was posted, so the document is looked up first.
		{name: "500 known data error", status: 500, body: v2Error("F5/201", "Posting period 011 2024 is not open"),
			wantCat: Unknown, wantCode: "F5/201"},
		{name: "502", status: 502, body: "<html>Bad Gateway</html>", wantCat: Unknown},
		{name: "504", status: 504, body: "", wantCat: Unknown},
		{name: "other 5xx", status: 507, body: "", wantCat: Unknown},
		{name: "other 4xx", status: 404, body: "", wantCat: Permanent},
		{name: "redirect to logon", status: 302, header: map[string]string{"Location": "/sap/public/bc/icf/logoff"},
			body: "", wantCat: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSAP(t)
			f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if s, ok := tt.body.(string); ok {
					w.WriteHeader(tt.status)
					io.WriteString(w, s)
					return
				}
				writeJSON(w, tt.status, tt.body)
			}
			_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
			e := assertError(t, err, tt.wantCat, tt.status, tt.wantCode)
			if tt.wantMsg != "" && e.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", e.Message, tt.wantMsg)
			}
			if e.Message == "" {
				t.Error("empty Message")
			}
			if ra := RetryAfterOf(err); ra < tt.minRetry || ra > tt.maxRetry {
				t.Errorf("RetryAfter = %v, want in [%v, %v]", ra, tt.minRetry, tt.maxRetry)
			}
		})
	}
}

func TestClassifyTable(t *testing.T) {
	msg := func(code, text, sev string) []Message { return []Message{{Code: code, Text: text, Severity: sev}} }
	tests := []struct {
		name   string
		status int
		msgs   []Message
		want   Category
		// retryAfter: the answer carried Retry-After
		retryAfter bool
	}{
		{"permanent codes", 400, msg("KI/248", "Cost center 1010/1 does not exist", "error"), Permanent, false},
		{"lock codes", 400, msg("m3/897", "Plant data of material locked", "error"), Transient, false},
		{"lock beats data error", 400, append(msg("F5/201", "Period closed", "error"), msg("ME/006", "", "error")...), Transient, false},
		{"lock text case-insensitive", 400, msg("", "Object BLOCKED BY USER X", ""), Transient, false},
		{"a gateway failure stays unknown whatever the body", 502, msg("FH/004", "Account 4711 does not exist", "error"), Unknown, false},
		{"a lock on a 500 stays unknown", 500, msg("MC/601", "Object requested is currently locked by user X", "error"), Unknown, false},
		{"codes before texts", 400, msg("F5/201", "Posting blocked by the central posting block", "error"), Permanent, false},
		{"locked by is a word, not part of blocked by", 400, msg("", "Posting blocked by the central posting block", "error"), Permanent, false},
		{"info ignored", 500, msg("F5/201", "Posting period", "info"), Unknown, false},
		{"soap business error", 200, msg("RW/609", "Error in document", "error"), Permanent, false},
		{"401", 401, nil, Permanent, false},
		{"403", 403, nil, Permanent, false},
		{"429", 429, nil, Transient, false},
		{"503 asking to come back", 503, nil, Transient, true},
		{"503 without Retry-After may be a gateway that lost the backend", 503, nil, Unknown, false},
		{"429 without Retry-After is still a refusal", 429, nil, Transient, false},
		{"500", 500, nil, Unknown, false},
		{"502", 502, nil, Unknown, false},
		{"504", 504, nil, Unknown, false},
		{"409", 409, nil, Permanent, false},
		{"599", 599, nil, Unknown, false},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.retryAfter, tt.msgs); got != tt.want {
			t.Errorf("%s: classify = %v, want %v", tt.name, got, tt.want)
		}
	}
}
