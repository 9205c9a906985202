package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap/sim"
)

// SAP's reachability is checked once per TTL whatever the number of
// probes, and a probe whose request ends early does not leave its
// cancellation behind as the cached result.
func TestCachedCheckRunsOncePerTTL(t *testing.T) {
	var runs atomic.Int32
	c := &cachedCheck{ttl: time.Hour, timeout: time.Second, check: func(ctx context.Context) error {
		runs.Add(1)
		return ctx.Err()
	}}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.run(cancelled); err != nil {
		t.Fatalf("the check saw the probe's cancelled context: %v", err)
	}
	for range 10 {
		c.run(context.Background())
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("11 probes ran the check %d times, want once per TTL", n)
	}
	failing := &cachedCheck{ttl: time.Hour, timeout: time.Second, check: func(context.Context) error { return errors.New("down") }}
	if failing.run(context.Background()) == nil || failing.run(context.Background()) == nil {
		t.Fatal("a failed check is cached as failed")
	}
}

// countingSAP is the simulator behind a handler that counts the requests
// for the probe's service root.
func countingSAP(t *testing.T) (*sim.Server, string, *atomic.Int32) {
	s := sim.New(sim.Options{User: "SAPQ_COMM", Password: simPassword, Logger: testLog(t)})
	var roots atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV/" {
			roots.Add(1)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return s, hs.URL, &roots
}

// The worker's /healthz says it is up; its /readyz says whether Redis and
// SAP answer, and why not, without the password.
func TestWorkerHealthAndReadiness(t *testing.T) {
	_, db := redisSrv.NewDB(t)
	redisURL := fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	_, sapURL, roots := countingSAP(t)
	t.Setenv("SAPQ_LOG_LEVEL", "warn")
	worker := func(sapURL string) string {
		t.Helper()
		addr := freeAddr(t)
		p := startCommand(t, runWorker, "--redis-url", redisURL, "--sap-url", sapURL,
			"--sap-timeout", "2s", "--metrics-addr", addr)
		base := "http://" + addr
		awaitListening(t, p, base)
		return base
	}

	t.Setenv("SAPQ_SAP_PASSWORD", simPassword)
	good := worker(sapURL)
	code, body := probe(t, good, "/readyz")
	if code != http.StatusOK || !strings.Contains(body, "redis: ok") || !strings.Contains(body, "sap: ok") {
		t.Fatalf("/readyz = %d:\n%s", code, body)
	}
	before := roots.Load()
	for range 5 {
		probe(t, good, "/readyz")
	}
	if roots.Load() != before {
		t.Fatalf("5 more probes within %s sent %d more requests to SAP, want none (the result is cached)", sapReadyTTL, roots.Load()-before)
	}
	if code, body := probe(t, good, "/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d", code)
	}

	const wrong = "not-the-password-0123"
	t.Setenv("SAPQ_SAP_PASSWORD", wrong)
	refused := worker(sapURL)
	code, body = probe(t, refused, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis: ok") || !strings.Contains(body, "sap: ") || !strings.Contains(body, "refuses the logon") {
		t.Fatalf("/readyz with a wrong SAP password = %d:\n%s", code, body)
	}
	if strings.Contains(body, wrong) || strings.Contains(body, simPassword) {
		t.Fatalf("/readyz shows a password:\n%s", body)
	}
	if code, _ := probe(t, refused, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while SAP refuses the logon, want 200: the process is up", code)
	}

	t.Setenv("SAPQ_SAP_PASSWORD", simPassword)
	unreachable := worker("http://" + freeAddr(t))
	if code, body := probe(t, unreachable, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "sap: destination default") {
		t.Fatalf("/readyz with SAP unreachable = %d:\n%s", code, body)
	}
}

// The MCP front's /readyz follows Redis: down while Redis is, ready again
// once it is back; /healthz stays up throughout.
func TestMCPReadinessFollowsRedis(t *testing.T) {
	rs := redistest.StartPersistent(t, redistest.PersistentOptions{})
	t.Setenv("SAPQ_MCP_TOKENS", "agent:health-token-0123456789")
	t.Setenv("SAPQ_LOG_LEVEL", "warn")
	addr := freeAddr(t)
	p := startCommand(t, runMCP, "--redis-url", "redis://"+rs.Addr()+"/0", "--addr", addr)
	base := "http://" + addr
	awaitListening(t, p, base)
	awaitReady(t, base, 10*time.Second)

	rs.Kill()
	if code, body := probe(t, base, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis: ") {
		t.Fatalf("/readyz with Redis down = %d:\n%s", code, body)
	}
	if code, _ := probe(t, base, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with Redis down = %d, want 200", code)
	}
	rs.Start()
	awaitReady(t, base, 20*time.Second)
}
