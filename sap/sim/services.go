package sim

import (
	"maps"
	"net/http"
	"net/http/httptest"
)

// A service is one SAP service the simulator offers: an OData service
// (odataService) or a SOAP endpoint. Each lives in its own file, built on
// the shared pieces (authentication, CSRF, the posting pipeline with its
// faults, number ranges, the books); services lists them, so that adding an
// SAP service is adding its file and one line here.
type service interface {
	// mount registers the service's handlers on the simulator's mux.
	mount(s *Server, mux *http.ServeMux)
}

var services = []service{
	supplierInvoiceService,
	glAccountLineItemService,
	journalEntryService,
	salesOrderService,
	billingDocumentService,
	billingDocumentV4Service,
	materialDocumentService,
}

// A postingService answers refusals in its protocol's error format: OData
// V2 (odataService) or V4 (odataV4Service).
type postingService interface {
	writeError(s *Server, w http.ResponseWriter, status int, msgs ...sapMessage)
}

func (svc *odataService) writeError(s *Server, w http.ResponseWriter, status int, msgs ...sapMessage) {
	s.writeODataError(w, status, svc, msgs...)
}

// servePosting runs a create request through what SAP and the gateway in
// front of it do to every posting, then hands it to process, the service's
// own validation and posting:
//
//  1. the gateway: faults "fail" (503 with Retry-After) and "throttle" (429)
//     answer at once, and the request never reaches SAP;
//  2. SAP's enqueue: the objects the posting changes (objects, nil for
//     none) are locked until it is processed; with Options.EnqueueLocks a
//     posting that meets a lock is refused with SAP's lock message;
//  3. SAP's processing time (latency, a slow commit, a held request), which
//     a client that leaves does not cut short;
//  4. the faults SAP itself shows: "lock" refuses with SAP's lock message,
//     "ambiguous" processes and loses the answer, "server_error" processes
//     and answers HTTP 500 with SAP's messages.
func (s *Server) servePosting(w http.ResponseWriter, r *http.Request, svc postingService, kind Kind, objects func([]byte) []string, process func(w http.ResponseWriter, r *http.Request, body []byte)) {
	s.countAttempt(kind)
	body, ok := readBody(w, r, func() {
		svc.writeError(s, w, http.StatusRequestEntityTooLarge, msgSyntax("request body too large"))
	})
	if !ok {
		return
	}
	fault, latency, ok := s.admit(w, kind, func() {
		svc.writeError(s, w, http.StatusServiceUnavailable,
			sapMessage{Code: "/IWFND/CM_BEC/026", Text: "Service unavailable: SAP system is temporarily not available"})
	})
	if !ok {
		return
	}
	if objects != nil {
		release, ok := s.enqueue(kind, objects(body))
		if !ok {
			svc.writeError(s, w, http.StatusBadRequest, msgLocked())
			return
		}
		defer release()
	}
	s.work(r, kind, fault, latency)
	switch fault {
	case FaultLock:
		svc.writeError(s, w, http.StatusBadRequest, msgLocked())
	case FaultAmbiguous:
		process(&discardWriter{}, r, body)
		s.loseResponse(w, r, kind)
	case FaultServerError:
		rec := httptest.NewRecorder()
		process(rec, r, body)
		if rec.Code < 300 {
			svc.writeError(s, w, http.StatusInternalServerError, msgRuntimeError())
			return
		}
		// The refusal's body, under a status that does not prove it.
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(rec.Body.Bytes())
	default:
		process(w, r, body)
	}
}
