package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks/taskstest"
)

// withTraceParent: every request of the MCP client
// carries the agent's traceparent, as an instrumented agent's does.
type withTraceParent struct {
	traceparent string
	next        http.RoundTripper
}

func (w withTraceParent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", w.traceparent)
	return w.next.RoundTrip(r)
}

// The agent's W3C trace goes through `sapq mcp`, the job in Redis and
// `sapq worker` to the SAP request, and the worker's JSON log lines name
// it with the job, its kind and the attempt.
func TestTraceFlowsFromTheMCPRequestToSAP(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const agentSpan = "00f067aa0ba902b7"
	simulator := sim.New(sim.Options{User: "SAPQ_COMM", Password: simPassword, Logger: testLog(t)})
	hs := httptest.NewServer(simulator)
	t.Cleanup(hs.Close)
	_, db := redisSrv.NewDB(t)
	const token = "trace-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword)
	t.Setenv("SAPQ_MCP_TOKENS", "agent:"+token)
	t.Setenv("SAPQ_REDIS_URL", fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db))
	t.Setenv("SAPQ_LOG_FORMAT", "json")
	t.Setenv("SAPQ_LOG_LEVEL", "info")
	logs := captureStderr(t)

	workerAddr, mcpAddr := freeAddr(t), freeAddr(t)
	w := startCommand(t, runWorker, "--sap-url", hs.URL, "--sap-timeout", "2s", "--reconcile-after", "3s", "--metrics-addr", workerAddr)
	m := startCommand(t, runMCP, "--addr", mcpAddr)
	awaitListening(t, w, "http://"+workerAddr)
	awaitListening(t, m, "http://"+mcpAddr)

	hc := httpClient(t)
	hc.Transport = withTraceParent{"00-" + traceID + "-" + agentSpan + "-01", testutil.Bearer{Token: token, Next: hc.Transport}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "traced-agent", Version: "1"}, nil).Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint: "http://" + mcpAddr + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	var s submitted
	call(t, cs, "submit_supplier_invoice", taskstest.SupplierInvoice("TRACED-1"), &s)
	if p := awaitPosting(t, cs, s.JobID); p.Status != "succeeded" {
		t.Fatalf("posting %+v", p)
	}

	// SAP received the trace, from a span of the worker's own: the look-up
	// and the post each carry it.
	var fromWorker int
	for _, tp := range simulator.TraceParents() {
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[1] != traceID {
			t.Errorf("SAP request with traceparent %q, want trace %s", tp, traceID)
			continue
		}
		if parts[2] == agentSpan {
			t.Errorf("SAP request's parent span %s is the agent's, not the worker's call", parts[2])
		}
		fromWorker++
	}
	if fromWorker < 2 {
		t.Fatalf("SAP saw %d requests of trace %s, want the look-up and the post: %q", fromWorker, traceID, simulator.TraceParents())
	}

	// The worker's line for the posted document names the job, its kind,
	// the attempt and the trace.
	await(t, "the worker's log line of the posting", func() bool {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "posted" {
				continue
			}
			if rec["job_id"] != s.JobID || rec["kind"] != "supplier_invoice" || rec["attempt"] != float64(1) || rec["trace_id"] != traceID || rec["span_id"] == "" {
				t.Fatalf("worker's log line %s: want job %s, kind supplier_invoice, attempt 1, trace %s", sc.Bytes(), s.JobID, traceID)
			}
			return true
		}
		return false
	})
}
