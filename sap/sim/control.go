package sim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// serveControl serves the simulator's own endpoints under /sim/. They need no
// authentication: they are for test harnesses and operators, not for the SAP client.
//
//	GET  /sim/faults        current faults
//	POST /sim/faults        replace the faults (JSON, unknown fields rejected); answers the new faults
//	GET  /sim/ledger        {"documents":[...]} everything posted
//	GET  /sim/stats         counters (see Stats)
//	POST /sim/csrf/expire   invalidate every CSRF token issued so far
//	POST /sim/release       let the oldest request held by a "hold" fault go on (404 when none is held)
//	POST /sim/periods       open a posting period: {"open":"2026-11"}
//	POST /sim/reverse       reverse a document as a person in SAP would (Reverse):
//	                        {"kind":"supplier_invoice","company_code":"1010","document":"5105600001","fiscal_year":"2026"}
//	                        answers {"reversal":"5105600002"}
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/")
	switch route {
	case "GET /sim/faults":
		writeJSON(w, http.StatusOK, s.Faults())
	case "POST /sim/faults":
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		if err := dec.Decode(&f); err != nil {
			writeControlError(w, http.StatusBadRequest, "invalid faults: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case "GET /sim/ledger":
		docs := s.Ledger()
		if docs == nil {
			docs = []LedgerDocument{}
		}
		writeJSON(w, http.StatusOK, struct {
			Documents []LedgerDocument `json:"documents"`
		}{docs})
	case "GET /sim/stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "POST /sim/csrf/expire":
		s.ExpireCSRFTokens()
		w.WriteHeader(http.StatusNoContent)
	case "POST /sim/periods":
		var req struct {
			Open string `json:"open"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeControlError(w, http.StatusBadRequest, "invalid request: "+err.Error())
			return
		}
		if err := s.OpenPeriod(req.Open); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "POST /sim/reverse":
		var req struct {
			Kind        Kind   `json:"kind"`
			CompanyCode string `json:"company_code"`
			Document    string `json:"document"`
			FiscalYear  string `json:"fiscal_year"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeControlError(w, http.StatusBadRequest, "invalid request: "+err.Error())
			return
		}
		rev, err := s.Reverse(req.Kind, req.CompanyCode, req.Document, req.FiscalYear)
		if err != nil {
			writeControlError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Reversal string `json:"reversal"`
		}{rev})
	case "POST /sim/release":
		if !s.Release() {
			writeControlError(w, http.StatusNotFound, "no request is held")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeControlError(w, http.StatusNotFound, "unknown simulator endpoint "+route)
	}
}

func writeControlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
