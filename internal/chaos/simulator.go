package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sapq/sapq/sap/sim"
)

// Simulator faults while the chaos lasts. Each posting request rolls once.
// The flawed postings add about 2% permanent refusals.
const (
	// sapLatency is how long SAP takes to process any posting, faults or
	// not, so that a worker killed at any moment is likely in a call.
	sapLatency    = 200 * time.Millisecond
	failRate      = 0.03 // 503 with Retry-After, nothing posted
	ambiguousRate = 0.03 // posted, answer lost (connection drop or 504)
	lockRate      = 0.02 // MC/601, nothing posted
	throttleRate  = 0.02 // 429, nothing posted
	slowRate      = 0.02 // committed after SlowLatency, long after the client gave up
)

// simFaults is the JSON of the simulator's POST /sim/faults. The slow
// commit fields are left out for a simulator that has none.
type simFaults struct {
	FailRate      float64 `json:"fail_rate"`
	AmbiguousRate float64 `json:"ambiguous_rate"`
	LockRate      float64 `json:"lock_rate"`
	ThrottleRate  float64 `json:"throttle_rate"`
	SlowRate      float64 `json:"slow_rate,omitempty"`
	SlowLatency   string  `json:"slow_latency,omitempty"`
	Latency       string  `json:"latency"`
}

// setFaults sets the chaos faults, or clears them.
func (r *run) setFaults(ctx context.Context, on bool) error {
	f := simFaults{Latency: sapLatency.String()}
	if on {
		f.FailRate, f.AmbiguousRate, f.LockRate, f.ThrottleRate = failRate, ambiguousRate, lockRate, throttleRate
		f.SlowRate, f.SlowLatency = slowRate, r.opts.SlowLatency.String()
	}
	body, _ := json.Marshal(f)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.simURL+"/sim/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: set simulator faults: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("chaos: set simulator faults %s: %s: %s", body, resp.Status, bytes.TrimSpace(msg))
	}
	r.log.Info("simulator faults set", "faults", string(body))
	return nil
}

func (r *run) readSimulator(ctx context.Context) ([]sim.LedgerDocument, sim.Stats, error) {
	var ledgerDocs struct {
		Documents []sim.LedgerDocument `json:"documents"`
	}
	var stats sim.Stats
	if err := r.simGet(ctx, "/sim/ledger", &ledgerDocs); err != nil {
		return nil, stats, err
	}
	if err := r.simGet(ctx, "/sim/stats", &stats); err != nil {
		return nil, stats, err
	}
	return ledgerDocs.Documents, stats, nil
}

func (r *run) simGet(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.simURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chaos: GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("chaos: GET %s: %w", path, err)
	}
	return nil
}
