package sap

import (
	"encoding/json"
	"net/http"
	"strings"
)

// odata4Root is where SAP publishes OData V4 services (RAP service
// bindings); a service's root is below it, e.g.
// api_billingdocument/srvd_a2x/sap/billingdocument/0001/. CSRF works as for
// V2: postOData fetches the token on the service root. Errors come as
// {"error":{"code","message","target","details":[...]}}, which
// parseODataError reads.
const odata4Root = "/sap/opu/odata4/sap/"

// parseSAPMessages returns the messages of a V4 "sap-messages" header: a
// JSON array of {code, message, numericSeverity, target}. A malformed
// header is ignored: the call succeeded, the messages are extra.
func parseSAPMessages(h http.Header) []Message {
	v := h.Get("sap-messages")
	if v == "" {
		return nil
	}
	var raw []struct {
		Code            string `json:"code"`
		Message         string `json:"message"`
		NumericSeverity int    `json:"numericSeverity"`
		Severity        string `json:"severity"`
	}
	if json.Unmarshal([]byte(v), &raw) != nil {
		return nil
	}
	msgs := make([]Message, 0, len(raw))
	for _, m := range raw {
		sev := numericSeverity(m.NumericSeverity)
		if sev == "" {
			sev = strings.ToLower(m.Severity)
		}
		msgs = append(msgs, Message{Code: m.Code, Text: m.Message, Severity: sev})
	}
	return msgs
}
