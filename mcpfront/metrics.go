package mcpfront

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/tasks"
)

// metrics holds the front end's Prometheus collectors. A nil *metrics is
// valid and records nothing, so call sites need no checks.
type metrics struct {
	calls        *prometheus.CounterVec
	submissions  *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	tooLarge     prometheus.Counter
	sessions     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "tool_calls_total",
			Help: "MCP tool calls by tool and outcome (ok, invalid_argument, idempotency_conflict, not_found, not_cancellable, unauthenticated, internal, protocol_error).",
		}, []string{"tool", "outcome"}),
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "submissions_total",
			Help: "Submissions by kind and outcome: accepted, replayed (the key's job returned again), awaiting_approval, dry_run, error, or the code or rule that refused it (idempotency_conflict: the key was used with another payload; invalid_argument; a policy rule; submissions_per_minute ...).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "tool_call_duration_seconds",
			Help:    "Latency of MCP tool calls.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"tool"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "http_unauthorized_total",
			Help: "HTTP requests rejected: missing or invalid bearer token, insufficient scope (forbidden), foreign origin.",
		}, []string{"reason"}),
		tooLarge: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "requests_too_large_total",
			Help: "Requests rejected because they exceeded the size limit.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sapq", Subsystem: "mcp", Name: "sessions",
			Help: "Open 2025-11-25 sessions (bounded per caller, ended when idle).",
		}),
	}
	var err error
	m.calls, err = register(reg, m.calls)
	if err != nil {
		return nil, err
	}
	m.submissions, err = register(reg, m.submissions)
	if err != nil {
		return nil, err
	}
	m.latency, err = register(reg, m.latency)
	if err != nil {
		return nil, err
	}
	m.authFailures, err = register(reg, m.authFailures)
	if err != nil {
		return nil, err
	}
	m.tooLarge, err = register(reg, m.tooLarge)
	if err != nil {
		return nil, err
	}
	m.sessions, err = register(reg, m.sessions)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name, so that several Servers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// middleware records every tool call's outcome and latency.
func (m *metrics) middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		start := time.Now()
		tool := req.Params.Name
		outcome := "protocol_error" // stays so if next panics
		defer func() {
			m.latency.WithLabelValues(tool).Observe(time.Since(start).Seconds())
			m.calls.WithLabelValues(tool, outcome).Inc()
		}()
		res, err = next(ctx, req)
		outcome = outcomeOf(res, err)
		return res, err
	}
}

func outcomeOf(res *mcp.CallToolResult, err error) string {
	switch {
	case err != nil || res == nil:
		return "protocol_error"
	case !res.IsError:
		return "ok"
	}
	if code := errorCodeOf(res); code != "" {
		return code
	}
	return "error"
}

// submitted counts a submission by the decision its audit record names.
func (m *metrics) submitted(kind tasks.Kind, n *auditNote) {
	if m == nil {
		return
	}
	outcome := n.decision
	if outcome == decisionRefused && n.rule != "" {
		outcome = n.rule
	}
	m.submissions.WithLabelValues(string(kind), outcome).Inc()
}

func (m *metrics) unauthorized(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) rejectedTooLarge() {
	if m != nil {
		m.tooLarge.Inc()
	}
}
