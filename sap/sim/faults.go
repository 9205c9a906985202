package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Faults configures the failures injected into posting requests (POST of a supplier
// invoice or a journal entry). Reads, CSRF fetches and /sim/* are never affected.
// Each posting request rolls once; the rates are probabilities in [0,1] whose sum must
// not exceed 1.
//
// The JSON form (used by POST /sim/faults) is
//
//	{"fail_rate":0.1,"ambiguous_rate":0.05,"lock_rate":0.05,"throttle_rate":0.03,
//	 "slow_rate":0.02,"slow_latency":"3s","latency":"200ms","next":["slow","ambiguous"]}
type Faults struct {
	// FailRate answers 503 Service Unavailable with Retry-After: 1 before
	// anything is posted, as a gateway shedding load does.
	FailRate float64 `json:"fail_rate"`
	// AmbiguousRate posts the document and then loses the answer: alternately the
	// connection is closed without a response and a gateway answers 504. This is the
	// case an exactly-once client must resolve by looking the document up.
	AmbiguousRate float64 `json:"ambiguous_rate"`
	// LockRate answers with SAP's lock message MC/601 and posts nothing.
	LockRate float64 `json:"lock_rate"`
	// ThrottleRate answers 429 with Retry-After: 1 and posts nothing.
	ThrottleRate float64 `json:"throttle_rate"`
	// SlowRate makes a posting request take SlowLatency instead of Latency
	// and then commit normally: a slow commit, which outlasts a client's
	// timeout and, if long enough, its wait before a look-up.
	SlowRate    float64       `json:"slow_rate"`
	SlowLatency time.Duration `json:"slow_latency"`
	// Next are faults for the next posting requests, one each, in order,
	// before any rate is rolled: a test's script of exactly what happens
	// ("" for a request without fault). They are used up as requests arrive.
	Next []FaultKind `json:"next,omitempty"`
	// Latency is how long SAP takes to process each posting request. As in
	// SAP, a client that gives up meanwhile does not stop it: the work
	// process finishes and commits the document, and only the answer is
	// lost. This is the case a client timeout or a crashed worker leaves.
	Latency time.Duration `json:"latency"`
}

// MaxLatency bounds Faults.Latency. A request sleeps through its latency
// whatever the client does, as SAP would, and a server cannot stop
// gracefully while requests sleep: an hour would hold it for an hour.
const MaxLatency = 2 * time.Minute

// Validate reports whether the rates are probabilities summing to at most 1 and the
// latency is not negative.
func (f Faults) Validate() error {
	rates := []struct {
		name string
		v    float64
	}{{"fail_rate", f.FailRate}, {"ambiguous_rate", f.AmbiguousRate}, {"lock_rate", f.LockRate}, {"throttle_rate", f.ThrottleRate}, {"slow_rate", f.SlowRate}}
	sum := 0.0
	for _, r := range rates {
		// The negated comparison also rejects NaN.
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("sim: %s must be between 0 and 1, got %v", r.name, r.v)
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("sim: fault rates sum to %v, must not exceed 1", sum)
	}
	for _, l := range []struct {
		name string
		v    time.Duration
	}{{"latency", f.Latency}, {"slow_latency", f.SlowLatency}} {
		if l.v < 0 || l.v > MaxLatency {
			return fmt.Errorf("sim: %s must be between 0 and %v, got %v", l.name, MaxLatency, l.v)
		}
	}
	for i, k := range f.Next {
		if !k.valid() {
			return fmt.Errorf("sim: next[%d]: unknown fault %q; one of fail, ambiguous, lock, throttle, slow, hold, server_error or \"\"", i, k)
		}
	}
	return nil
}

// faultsJSON is the wire form of Faults: latencies are Go duration strings.
type faultsJSON struct {
	FailRate      float64     `json:"fail_rate"`
	AmbiguousRate float64     `json:"ambiguous_rate"`
	LockRate      float64     `json:"lock_rate"`
	ThrottleRate  float64     `json:"throttle_rate"`
	SlowRate      float64     `json:"slow_rate"`
	SlowLatency   string      `json:"slow_latency"`
	Latency       string      `json:"latency"`
	Next          []FaultKind `json:"next,omitempty"`
}

// MarshalJSON encodes latencies as duration strings such as "200ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{f.FailRate, f.AmbiguousRate, f.LockRate, f.ThrottleRate, f.SlowRate,
		f.SlowLatency.String(), f.Latency.String(), f.Next})
}

// UnmarshalJSON decodes the JSON form strictly: unknown fields are rejected so that a
// typo in a test setup does not silently mean "no faults".
func (f *Faults) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var raw faultsJSON
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	var latency, slow time.Duration
	for _, d := range []struct {
		name, text string
		dst        *time.Duration
	}{{"latency", raw.Latency, &latency}, {"slow_latency", raw.SlowLatency, &slow}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return fmt.Errorf("sim: %s: %w", d.name, err)
		}
		*d.dst = v
	}
	*f = Faults{FailRate: raw.FailRate, AmbiguousRate: raw.AmbiguousRate, LockRate: raw.LockRate,
		ThrottleRate: raw.ThrottleRate, SlowRate: raw.SlowRate, SlowLatency: slow, Latency: latency, Next: raw.Next}
	return nil
}

// FaultKind names an injected fault.
type FaultKind string

// The fault kinds, as counted in Stats.Faults.
const (
	FaultFail      FaultKind = "fail"
	FaultAmbiguous FaultKind = "ambiguous"
	FaultLock      FaultKind = "lock"
	FaultThrottle  FaultKind = "throttle"
	FaultSlow      FaultKind = "slow"
	// FaultHold keeps the request inside SAP until Server.Release lets it
	// go on: a test decides exactly when SAP commits. It is only scripted
	// (Faults.Next), never rolled.
	FaultHold FaultKind = "hold"
	// FaultServerError processes the request and answers HTTP 500 with
	// what SAP had to say: a refusal's messages, or a runtime error after
	// the document was committed. Only scripted.
	FaultServerError FaultKind = "server_error"
)

func (k FaultKind) valid() bool {
	switch k {
	case "", FaultFail, FaultAmbiguous, FaultLock, FaultThrottle, FaultSlow, FaultHold, FaultServerError:
		return true
	}
	return false
}

// faultInjector holds the current faults and the random source they are rolled with.
type faultInjector struct {
	mu        sync.Mutex
	faults    Faults
	rng       *rand.Rand
	ambiguous map[Kind]uint64 // ambiguous faults so far per kind; alternates connection drop and 504
}

func newFaultInjector(f Faults, seed int64) *faultInjector {
	var src rand.Source
	if seed != 0 {
		src = rand.NewPCG(uint64(seed), uint64(seed)^0x5eed)
	} else {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	return &faultInjector{faults: f, rng: rand.New(src), ambiguous: map[Kind]uint64{}}
}

func (fi *faultInjector) get() Faults {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f := fi.faults
	f.Next = slices.Clone(f.Next)
	return f
}

func (fi *faultInjector) set(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f.Next = slices.Clone(f.Next)
	fi.faults = f
	return nil
}

// roll decides the fault for one posting request ("" for none) and returns how
// long SAP takes to process it.
func (fi *faultInjector) roll() (FaultKind, time.Duration) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f := &fi.faults
	fault := FaultKind("")
	if len(f.Next) > 0 {
		fault, f.Next = f.Next[0], f.Next[1:]
	} else {
		x := fi.rng.Float64()
		for _, c := range []struct {
			kind FaultKind
			rate float64
		}{{FaultFail, f.FailRate}, {FaultAmbiguous, f.AmbiguousRate}, {FaultLock, f.LockRate}, {FaultThrottle, f.ThrottleRate}, {FaultSlow, f.SlowRate}} {
			if x < c.rate {
				fault = c.kind
				break
			}
			x -= c.rate
		}
	}
	if fault == FaultSlow {
		return fault, f.SlowLatency
	}
	return fault, f.Latency
}

// dropConnection reports whether the next ambiguous fault of a kind should drop the
// connection (true) or answer 504 (false); they alternate per kind so both shapes are
// exercised for every kind of posting.
func (fi *faultInjector) dropConnection(kind Kind) bool {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.ambiguous[kind]++
	return fi.ambiguous[kind]%2 == 1
}

// loseResponse makes the outcome of an already processed request unknown to the
// client, the way a crashing gateway or a network partition does.
func (s *Server) loseResponse(w http.ResponseWriter, r *http.Request, kind Kind) {
	if s.faults.dropConnection(kind) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			s.log.Warn("sim: fault ambiguous: closing connection without response", "path", r.URL.Path)
			conn.Close()
			return
		}
		if !errors.Is(err, http.ErrNotSupported) {
			s.log.Warn("sim: hijack failed, answering 504 instead", "err", err)
		}
	}
	s.log.Warn("sim: fault ambiguous: answering 504 after posting", "path", r.URL.Path)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusGatewayTimeout)
	fmt.Fprint(w, gatewayTimeoutPage)
}

const gatewayTimeoutPage = `<html><head><title>504 Gateway Time-out</title></head>
<body><h1>504 Gateway Time-out</h1><p>The server didn't respond in time.</p></body></html>
`

// writeThrottled answers like an API gateway whose rate limit is exhausted.
func writeThrottled(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintln(w, "Rate limit quota violation. Quota limit exceeded.")
}

// discardWriter is the ResponseWriter of a request whose answer is going to be lost.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// holds are the requests a FaultHold keeps inside SAP, oldest first.
type holds struct {
	mu      sync.Mutex
	waiting []chan struct{}
}

func (h *holds) hold() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan struct{})
	h.waiting = append(h.waiting, c)
	return c
}

func (h *holds) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiting)
}

func (h *holds) release() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiting) == 0 {
		return false
	}
	close(h.waiting[0])
	h.waiting = h.waiting[1:]
	return true
}

// Held is how many posting requests a FaultHold keeps inside SAP now.
func (s *Server) Held() int { return s.holds.count() }

// Release lets the oldest held posting request go on to be processed; it
// reports false when none is held.
func (s *Server) Release() bool { return s.holds.release() }
