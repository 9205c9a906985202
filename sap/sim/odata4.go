package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// odataV4Service describes one OData V4 service (an RAP service binding
// under /sap/opu/odata4/): the actions it offers, each a posting run
// through the shared posting pipeline, with V4's own error bodies and
// message header. CSRF works as for V2: a token fetched on the service root,
// bound to the session cookie.
type odataV4Service struct {
	name        string // service name, e.g. API_BILLINGDOCUMENT
	path        string // service root without trailing slash
	componentID string
	// actions are the bound actions by their path below the root
	// ("BillingDocument/SAP__self.CreateFromSDDocument").
	actions map[string]v4Action
	// entitySets are named in the service document.
	entitySets []string
}

// v4Action is one action: a posting of kind.
type v4Action struct {
	kind Kind
	run  func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)
}

func (svc *odataV4Service) mount(s *Server, mux *http.ServeMux) {
	h := func(w http.ResponseWriter, r *http.Request) { s.serveODataV4(w, r, svc) }
	mux.HandleFunc(svc.path, h)
	mux.HandleFunc(svc.path+"/", h)
}

func (s *Server) serveODataV4(w http.ResponseWriter, r *http.Request, svc *odataV4Service) {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, svc.path), "/")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && isFetch(r) {
		s.issueCSRFToken(w, r)
	}
	if isModifying(r.Method) && !s.checkCSRF(w, r) {
		return
	}
	switch rest {
	case "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			svc.writeError(s, w, http.StatusMethodNotAllowed, msgMethodNotAllowed(r.Method))
			return
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		sets := make([]object, len(svc.entitySets))
		for i, n := range svc.entitySets {
			sets[i] = object{{"name", n}, {"url", n}}
		}
		writeJSONV4(w, http.StatusOK, object{{"@odata.context", "$metadata"}, {"value", sets}})
		return
	case "$metadata":
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("OData-Version", "4.0")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices><Schema Namespace="%s" Alias="SAP__self" xmlns="http://docs.oasis-open.org/odata/ns/edm"/></edmx:DataServices></edmx:Edmx>`, svc.name)
		return
	}
	if a, ok := svc.actions[rest]; ok {
		if r.Method != http.MethodPost {
			svc.writeError(s, w, http.StatusMethodNotAllowed, msgMethodNotAllowed(r.Method))
			return
		}
		s.servePosting(w, r, svc, a.kind, nil, func(w http.ResponseWriter, r *http.Request, body []byte) { a.run(s, w, r, body) })
		return
	}
	svc.writeError(s, w, http.StatusNotFound, msgNotFound(rest))
}

// The OData V4 error body as SAP's V4 runtime writes it: the first message
// is the main one, every message is a detail with its numeric severity
// (1 success, 2 info, 3 warning, 4 error).
type odataV4Error struct {
	Error v4ErrorBody `json:"error"`
}

type v4ErrorBody struct {
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	Target     string        `json:"target"`
	Details    []v4Message   `json:"details"`
	InnerError v4InnerDetail `json:"innererror"`
}

type v4Message struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Target   string `json:"target,omitempty"`
	Severity int    `json:"@SAP__common.numericSeverity"`
}

type v4InnerDetail struct {
	ErrorDetails struct {
		Application struct {
			ComponentID string `json:"ComponentId"`
			ServiceID   string `json:"ServiceId"`
			Version     string `json:"ServiceVersion"`
		} `json:"@SAP__common.Application"`
		TransactionID string `json:"@SAP__common.TransactionId"`
		Timestamp     string `json:"@SAP__common.Timestamp"`
	} `json:"ErrorDetails"`
}

// Numeric severities of V4 messages.
const (
	v4Success = 1
	v4Error   = 4
)

func (svc *odataV4Service) writeError(s *Server, w http.ResponseWriter, status int, msgs ...sapMessage) {
	main := msgs[0]
	details := make([]v4Message, len(msgs))
	for i, m := range msgs {
		details[i] = v4Message{Code: m.Code, Message: m.Text, Target: m.Target, Severity: v4Error}
	}
	body := odataV4Error{Error: v4ErrorBody{Code: main.Code, Message: main.Text, Target: main.Target, Details: details}}
	inner := &body.Error.InnerError.ErrorDetails
	inner.Application.ComponentID, inner.Application.ServiceID, inner.Application.Version = svc.componentID, svc.name, "0001"
	inner.TransactionID = transactionID()
	inner.Timestamp = s.opts.Now().UTC().Format("20060102150405.0000000")
	writeJSONV4(w, status, body)
}

// setSAPMessages sets the V4 sap-messages header: a JSON array of the
// informational messages of a successful call.
func setSAPMessages(w http.ResponseWriter, severity int, msgs ...sapMessage) {
	out := make([]object, len(msgs))
	for i, m := range msgs {
		out[i] = object{{"code", m.Code}, {"message", m.Text}, {"numericSeverity", severity}, {"target", m.Target}, {"transition", false}}
	}
	b, _ := json.Marshal(out)
	w.Header().Set("sap-messages", string(b))
}

func writeJSONV4(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sim: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8; odata.metadata=minimal")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	w.Write(b)
}
