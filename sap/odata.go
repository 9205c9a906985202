package sap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// odataRoot is where SAP Gateway publishes OData V2 services.
const odataRoot = "/sap/opu/odata/sap/"

// odataDate is an Edm.DateTime holding a calendar date; OData V2 JSON writes it
// as "/Date(<ms since epoch>)/" at UTC midnight.
type odataDate time.Time

func (d odataDate) MarshalJSON() ([]byte, error) {
	ms := calendarDay(time.Time(d)).UnixMilli()
	return []byte(`"\/Date(` + strconv.FormatInt(ms, 10) + `)\/"`), nil
}

// UnmarshalJSON reads "/Date(<ms>)/", also with an offset ("/Date(<ms>+0000)/"),
// which the instant alone decides.
func (d *odataDate) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	inner, hasPrefix := strings.CutPrefix(s, "/Date(")
	inner, hasSuffix := strings.CutSuffix(inner, ")/")
	if !hasPrefix || !hasSuffix || inner == "" {
		return fmt.Errorf("not an OData V2 date: %q", s)
	}
	if i := strings.IndexAny(inner[1:], "+-"); i >= 0 {
		inner = inner[:i+1]
	}
	ms, err := strconv.ParseInt(inner, 10, 64)
	if err != nil {
		return fmt.Errorf("not an OData V2 date: %q", s)
	}
	*d = odataDate(time.UnixMilli(ms).UTC())
	return nil
}

// calendarDay is the caller's calendar date of t (in t's own location) at
// UTC midnight: a posting date is a date, not an instant.
func calendarDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// odataDecimal is an Edm.Decimal, which OData V2 JSON writes as a string.
type odataDecimal decimal.Decimal

func (d odataDecimal) MarshalJSON() ([]byte, error) {
	return json.Marshal(formatAmount(decimal.Decimal(d)))
}

// UnmarshalJSON reads the string form, never through a float.
func (d *odataDecimal) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("Edm.Decimal must be a JSON string: %w", err)
	}
	v, err := decimal.NewFromString(s)
	if err != nil {
		return err
	}
	*d = odataDecimal(v)
	return nil
}

// formatAmount writes d with at least two fraction digits ("119.00",
// "0.005"): the currency's own number of decimals is the caller's business,
// SAP rounds nothing we send.
func formatAmount(d decimal.Decimal) string {
	s := d.String()
	frac := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac = len(s) - i - 1
	}
	if frac < 2 {
		return d.StringFixed(2)
	}
	return s
}

// quote makes s an OData string literal: single quotes, embedded quotes doubled.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// odataError covers both OData error formats:
//
//	V2: {"error":{"code","message":{"lang","value"},"innererror":{"errordetails":[{"code","message","severity"}]}}}
//	V4: {"error":{"code","message":"...","details":[{"code","message","@SAP__common.numericSeverity":3}]}}
type odataError struct {
	Error *struct {
		Code       string          `json:"code"`
		Message    json.RawMessage `json:"message"`
		Details    []odataDetail   `json:"details"`
		InnerError struct {
			// V2's errordetails is an array of messages. V4's innererror
			// has an ErrorDetails object (application, transaction id),
			// which encoding/json's case-insensitive matching would take
			// for it: it is read only when it is an array.
			ErrorDetails json.RawMessage `json:"errordetails"`
		} `json:"innererror"`
	} `json:"error"`
}

type odataDetail struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Severity string `json:"severity"` // V2
	// V4: SAP annotates details with a numeric severity 1..4.
	NumericSeverity    int `json:"@SAP__common.numericSeverity"`
	NumericSeverityAlt int `json:"@Common.numericSeverity"`
}

func (d odataDetail) message() Message {
	sev := strings.ToLower(d.Severity)
	if sev == "" {
		sev = numericSeverity(d.NumericSeverity)
		if sev == "" {
			sev = numericSeverity(d.NumericSeverityAlt)
		}
	}
	return Message{Code: d.Code, Text: d.Message, Severity: sev}
}

func numericSeverity(n int) string {
	switch n {
	case 1:
		return "success"
	case 2:
		return "info"
	case 3:
		return "warning"
	case 4:
		return "error"
	}
	return ""
}

// parseODataError extracts code, text and detail messages from an OData V2
// or V4 error body. ok is false when body is not an OData error.
func parseODataError(body []byte) (code, text string, msgs []Message, ok bool) {
	var oe odataError
	if err := json.Unmarshal(body, &oe); err != nil || oe.Error == nil {
		return "", "", nil, false
	}
	e := oe.Error
	var v2 struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(e.Message, &text); err != nil {
		if json.Unmarshal(e.Message, &v2) == nil {
			text = v2.Value
		}
	}
	var v2Details []odataDetail
	if d := bytes.TrimSpace(e.InnerError.ErrorDetails); len(d) > 0 && d[0] == '[' && json.Unmarshal(d, &v2Details) == nil {
		for _, d := range v2Details {
			msgs = append(msgs, d.message())
		}
	}
	for _, d := range e.Details {
		msgs = append(msgs, d.message())
	}
	if len(msgs) == 0 && (e.Code != "" || text != "") {
		msgs = []Message{{Code: e.Code, Text: text, Severity: "error"}}
	}
	return e.Code, text, msgs, true
}

// sapMessage is the JSON in the V2 "sap-message" response header, which
// carries informational and warning messages of a successful call.
type sapMessage struct {
	Code     string       `json:"code"`
	Message  string       `json:"message"`
	Severity string       `json:"severity"`
	Details  []sapMessage `json:"details"`
}

// parseSAPMessage returns the messages of a sap-message header; a malformed
// header is ignored (the call itself succeeded, the messages are extra).
func parseSAPMessage(h http.Header) []Message {
	v := h.Get("sap-message")
	if v == "" {
		return nil
	}
	var m sapMessage
	if json.Unmarshal([]byte(v), &m) != nil {
		return nil
	}
	msgs := []Message{{Code: m.Code, Text: m.Message, Severity: strings.ToLower(m.Severity)}}
	for _, d := range m.Details {
		msgs = append(msgs, Message{Code: d.Code, Text: d.Message, Severity: strings.ToLower(d.Severity)})
	}
	return msgs
}

// httpError turns a non-success HTTP answer into a classified *Error.
func (c *Client) httpError(op string, r *reply) *Error {
	e := &Error{
		Op:         op,
		HTTPStatus: r.status,
		RetryAfter: parseRetryAfter(r.header.Get("Retry-After"), time.Now()),
	}
	var sapMsgs []Message
	if code, text, msgs, ok := parseODataError(r.body); ok {
		e.Code, e.Message, e.Messages = code, text, msgs
		// The top-level message counts too: the details may hold only
		// generic gateway messages.
		sapMsgs = append([]Message{{Code: code, Text: text, Severity: "error"}}, msgs...)
	}
	if e.Message == "" {
		e.Message = statusMessage(r)
	}
	e.Category = classify(r.status, r.header.Get("Retry-After") != "", sapMsgs)
	if r.status == http.StatusForbidden && csrfRequired(r.header) {
		// The token was refused even after a fresh fetch (sessions churning
		// on SAP's side): nothing was processed, so a later retry is safe.
		e.Category = Transient
	}
	return c.scrub(e)
}

// statusMessage describes an answer that carries no SAP message.
func statusMessage(r *reply) string {
	switch r.status {
	case http.StatusUnauthorized:
		return "authentication failed"
	case http.StatusForbidden:
		if csrfRequired(r.header) {
			return "CSRF token rejected"
		}
		return "not authorized"
	}
	msg := http.StatusText(r.status)
	if msg == "" {
		msg = fmt.Sprintf("HTTP status %d", r.status)
	}
	// A short plain-text body (throttling gateways, "CSRF token validation
	// failed") says more than the status text.
	if ct := r.header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
		if t := strings.TrimSpace(string(r.body)); t != "" && len(t) <= 200 {
			msg += ": " + t
		}
	}
	return msg
}
