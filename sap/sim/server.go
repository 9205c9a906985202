package sim

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes bounds request bodies; SAP's ICM has a comparable limit.
const maxBodyBytes = 10 << 20

// Options configures a Server. The zero value is usable.
type Options struct {
	// User and Password are the communication user's Basic credentials
	// (defaults "SAPQ_COMM" / "sim-password").
	User     string
	Password string
	// Client is the SAP client (default "100"); a request whose sap-client query
	// parameter names another client is refused like a failed logon.
	Client string
	// SystemID is the SAP system id (default "S4H"); it names the session cookie
	// SAP_SESSIONID_<SystemID>_<Client>.
	SystemID string
	// Now is the simulator's clock (default time.Now). Open posting periods are the
	// month of Now and the month before, and OpenPeriods.
	Now func() time.Time
	// OpenPeriods are further open posting periods, as months: "2026-11".
	OpenPeriods []string
	// Faults are injected into posting requests from the start. New panics if they
	// are invalid; use Faults.Validate on untrusted input first.
	Faults Faults
	// Seed makes the fault rolls deterministic when non-zero.
	Seed int64
	// MasterData is what postings are validated against (nil = DefaultMasterData()).
	MasterData *MasterData
	// OpenSalesOrders is how many open standard orders the simulator holds
	// from the start, waiting to be billed: numbered 1 to OpenSalesOrders,
	// customer 10100001 in sales area 1010/10/00, one piece of TG11 each.
	// They are not in the ledger. The master data must hold that sales area,
	// customer and material (DefaultMasterData does).
	OpenSalesOrders int
	// NoDuplicateInvoiceCheck switches SAP's duplicate invoice check off,
	// as customizing can (transaction OMRDC): then nothing in SAP stops a
	// second equal invoice.
	NoDuplicateInvoiceCheck bool
	// EnqueueLocks refuses a posting with SAP's lock message (MC/601) while
	// another posting being processed holds one of its objects (a
	// supplier's account, say), as SAP's enqueue server does. Without it
	// such overlaps are only counted (Stats.LockCollisions).
	EnqueueLocks bool
	// Logger receives the simulator's logs (nil = slog.Default()).
	Logger *slog.Logger
}

// Server is the simulated SAP system. It is an http.Handler and safe for concurrent
// use.
type Server struct {
	opts     Options
	log      *slog.Logger
	md       *MasterData
	sessions *sessionStore
	faults   *faultInjector
	holds    holds
	locks    enqueueTable

	mux *http.ServeMux // the services'

	mu       sync.Mutex // guards books, stats, inFlight and traces
	books    books
	stats    Stats
	inFlight int // requests being processed
	// traces are the W3C traceparent headers of the last requests that
	// carried one, oldest first, at most maxTraces.
	traces []string
}

// maxTraces bounds the traceparents a simulator remembers.
const maxTraces = 1000

// New returns a simulator with an empty ledger.
func New(opts Options) *Server {
	if opts.User == "" {
		opts.User = "SAPQ_COMM"
	}
	if opts.Password == "" {
		opts.Password = "sim-password"
	}
	if opts.Client == "" {
		opts.Client = "100"
	}
	if opts.SystemID == "" {
		opts.SystemID = "S4H"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.Faults.Validate(); err != nil {
		panic(err)
	}
	md := opts.MasterData
	if md == nil {
		md = DefaultMasterData()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		opts:     opts,
		log:      log,
		md:       md.clone(),
		sessions: newSessionStore(),
		faults:   newFaultInjector(opts.Faults, opts.Seed),
		books:    newBooks(),
		stats:    newStats(),
	}
	for _, m := range opts.OpenPeriods {
		if err := s.OpenPeriod(m); err != nil {
			panic(err)
		}
	}
	s.seedSalesOrders(opts.OpenSalesOrders)
	s.mux = http.NewServeMux()
	for _, svc := range services {
		svc.mount(s, s.mux)
	}
	return s
}

// SetFaults replaces the injected faults at runtime.
func (s *Server) SetFaults(f Faults) error {
	if err := s.faults.set(f); err != nil {
		return err
	}
	s.log.Info("sim: faults set", "faults", f)
	return nil
}

// Faults returns the faults currently injected.
func (s *Server) Faults() Faults { return s.faults.get() }

// ExpireCSRFTokens ends all sessions, invalidating every CSRF token issued so far;
// clients must fetch a new one (after a 403 "X-CSRF-Token: Required").
func (s *Server) ExpireCSRFTokens() {
	n := s.sessions.expireAll()
	s.log.Info("sim: CSRF tokens expired", "sessions", n)
}

// logicalSystem is the name SAP reports as the origin of documents, e.g. S4HCLNT100.
func (s *Server) logicalSystem() string {
	return s.opts.SystemID + "CLNT" + s.opts.Client
}

// ServeHTTP routes a request to the SAP service or /sim/ control endpoint it addresses.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/sim/") {
		s.serveControl(w, r)
		return
	}
	s.enterRequest()
	defer s.leaveRequest()
	if !s.authenticate(w, r) {
		return
	}
	if tp := r.Header.Get("traceparent"); tp != "" {
		s.log.Debug("sim: request", "method", r.Method, "path", r.URL.Path, "traceparent", tp)
		s.mu.Lock()
		s.traces = append(s.traces, tp)
		if len(s.traces) > maxTraces {
			s.traces = slices.Delete(s.traces, 0, len(s.traces)-maxTraces)
		}
		s.mu.Unlock()
	}
	s.mux.ServeHTTP(w, r)
}

// TraceParents returns the W3C traceparent headers of the last requests
// (up to 1000) that SAP accepted the logon of and that carried one, oldest
// first: what SAP's ICM would take into its trace.
func (s *Server) TraceParents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.traces)
}

// authenticate checks Basic credentials and the client, answering 401 like the SAP
// ICM does when the logon fails.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	ok = ok &&
		subtle.ConstantTimeCompare([]byte(strings.ToUpper(user)), []byte(strings.ToUpper(s.opts.User))) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) == 1
	if c := r.URL.Query().Get("sap-client"); c != "" && c != s.opts.Client {
		ok = false
	}
	if ok {
		return true
	}
	s.log.Info("sim: logon failed", "method", r.Method, "path", r.URL.Path, "user", user)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="SAP NetWeaver Application Server [%s/%s]"`, s.opts.SystemID, s.opts.Client))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprint(w, "<html><head><title>Logon Error Message</title></head><body>Logon failed</body></html>\n")
	return false
}

// readBody reads a request body up to maxBodyBytes. On failure it has answered with
// tooLarge or a plain 400.
func readBody(w http.ResponseWriter, r *http.Request, tooLarge func()) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		return body, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		tooLarge()
	} else {
		http.Error(w, "cannot read request body", http.StatusBadRequest)
	}
	return nil, false
}

// admit rolls the fault for a posting request. It answers the faults that an
// API gateway in front of SAP produces (fail, throttle) itself and reports false
// for them: those requests never reach SAP. The others (lock, ambiguous, slow)
// are returned for the service to play out, with SAP's processing time.
func (s *Server) admit(w http.ResponseWriter, kind Kind, fail func()) (FaultKind, time.Duration, bool) {
	fault, latency := s.faults.roll()
	if fault == "" {
		return "", latency, true
	}
	s.mu.Lock()
	s.stats.Faults[fault]++
	s.mu.Unlock()
	s.log.Warn("sim: injecting fault", "fault", fault, "kind", kind)
	switch fault {
	case FaultFail:
		// Saying when to come back is what marks the 503 as a refusal.
		w.Header().Set("Retry-After", "1")
		fail()
		return fault, 0, false
	case FaultThrottle:
		writeThrottled(w)
		return fault, 0, false
	}
	return fault, latency, true
}

// work takes SAP's processing time, or for a held request the time until
// the test releases it. As in SAP, a client that gives up meanwhile does not
// cut it short: the work process finishes and commits.
func (s *Server) work(r *http.Request, kind Kind, fault FaultKind, latency time.Duration) {
	switch {
	case fault == FaultHold:
		<-s.holds.hold()
	case latency > 0:
		time.Sleep(latency)
	default:
		return
	}
	if r.Context().Err() != nil {
		s.log.Info("sim: client left while SAP was processing; processing anyway", "kind", kind)
	}
}

func (s *Server) countAttempt(kind Kind) {
	s.mu.Lock()
	s.stats.Attempts[kind]++
	s.mu.Unlock()
}
