// Package mcpfront is sapq's Model Context Protocol front end: the tools an
// AI agent calls to post business documents into SAP exactly once.
//
// An agent submits a posting with submit_supplier_invoice or
// submit_journal_entry. The arguments are decoded strictly through
// tasks.Decode, recorded in the ledger under the caller's idempotency key and
// enqueued; the tool answers at once with a job ID. Workers post the job to
// SAP asynchronously and the agent polls get_posting until the job reaches a
// terminal status. Nothing here talks to SAP, and nothing here keeps state of
// its own: every answer comes from the ledger, so any number of instances can
// serve the same Redis and a lost HTTP response is repaired by calling again.
//
// Two transports are offered. HTTPHandler serves Streamable HTTP (both the
// 2025-11-25 session era and the stateless 2026-07-28 era that mcp-go
// negotiates) behind bearer-token authentication and a request size limit.
// ServeStdio serves one local client whose identity is fixed for the process.
//
// Every tool call runs as a caller, and the ledger confines a caller to its
// own jobs: another caller's job is "not found", never "forbidden", so IDs
// cannot be probed.
package mcpfront

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/tasks/ledger"
)

// Defaults for Options.
const (
	DefaultMaxRequestBytes = 1 << 20
	DefaultPollAfter       = 2 * time.Second

	// sessionIdleTTL bounds how long mcp-go keeps per-session transport state
	// for 2025-11-25 clients that vanish without DELETE. Tools keep no session
	// state, so forgetting a session costs a client nothing.
	sessionIdleTTL = time.Hour
)

// Version is reported to clients in the server info.
const Version = "0.1.0"

// Options configures a Server.
type Options struct {
	// Ledger records and answers for postings. Required.
	Ledger *ledger.Ledger
	// Tokens maps bearer tokens to caller names for HTTPHandler. It may be
	// empty when only ServeStdio is used; HTTP then rejects every request.
	Tokens TokenSet
	// Logger receives request logs and internal errors. Default slog.Default().
	Logger *slog.Logger
	// MaxRequestBytes bounds one HTTP request body or one stdio message.
	// Default 1 MiB, which is also the most tasks.Decode accepts.
	MaxRequestBytes int64
	// PollAfter is how long an agent is told to wait before polling a job,
	// returned as poll_after_seconds (whole seconds, at least 1). Default 2s.
	PollAfter time.Duration
	// Metrics, when set, receives tool call and authentication metrics.
	Metrics prometheus.Registerer
}

// Server is the MCP front end. It is safe for concurrent use.
type Server struct {
	ledger    *ledger.Ledger
	tokens    TokenSet
	log       *slog.Logger
	maxBytes  int64
	pollAfter int
	metrics   *metrics
	mcp       *server.MCPServer
	http      *server.StreamableHTTPServer
	handler   http.Handler
}

// New builds a Server and registers its tools.
func New(opts Options) (*Server, error) {
	if opts.Ledger == nil {
		return nil, errors.New("mcpfront: Options.Ledger is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.PollAfter <= 0 {
		opts.PollAfter = DefaultPollAfter
	}
	s := &Server{
		ledger:    opts.Ledger,
		tokens:    opts.Tokens,
		log:       opts.Logger.With("component", "mcpfront"),
		maxBytes:  opts.MaxRequestBytes,
		pollAfter: max(1, int((opts.PollAfter+time.Second-1)/time.Second)),
	}
	if opts.Metrics != nil {
		m, err := newMetrics(opts.Metrics)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}

	serverOpts := []server.ServerOption{
		server.WithInstructions(instructions),
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(false, false),
		server.WithLogger(s.log),
	}
	if s.metrics != nil {
		// Added before recovery so that it is the outer layer and also
		// counts calls that panicked.
		serverOpts = append(serverOpts, server.WithToolHandlerMiddleware(s.metrics.middleware))
	}
	serverOpts = append(serverOpts, server.WithRecovery(), server.WithResourceRecovery())
	s.mcp = server.NewMCPServer("sapq", Version, serverOpts...)
	s.registerTools()
	s.registerResources()

	s.http = server.NewStreamableHTTPServer(s.mcp,
		server.WithHTTPContextFunc(httpContext),
		server.WithStreamableHTTPLogger(s.log),
		server.WithSessionIdleTTL(sessionIdleTTL),
	)
	// Outermost first: authenticate before reading a byte of the body, then
	// bound the body, then MCP.
	s.handler = s.authenticate(http.MaxBytesHandler(s.limitBody(s.http), s.maxBytes))
	if s.tokens.Len() == 0 {
		s.log.Warn("no bearer tokens configured: the HTTP transport will reject every request")
	}
	return s, nil
}

// MCP returns the underlying mcp-go server, for embedding in other transports
// or in-process tests. Calls through it carry no caller unless the context
// was made with WithCaller, and tools refuse such calls.
func (s *Server) MCP() *server.MCPServer { return s.mcp }

// HTTPHandler serves Streamable HTTP at whatever path it is mounted on,
// behind bearer authentication and the request size limit.
func (s *Server) HTTPHandler() http.Handler { return s.handler }

// Close stops background work of the HTTP transport (its session sweeper)
// and ends open listening streams. It does not close the ledger.
func (s *Server) Close(ctx context.Context) error { return s.http.Shutdown(ctx) }

// callerKey is the context key of the authenticated caller's name.
type callerKey struct{}

// WithCaller returns a context whose tool calls run as caller.
func WithCaller(ctx context.Context, caller string) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFromContext returns the caller a tool call runs as. An empty caller
// is never returned as ok: the ledger treats "" as the operator, who sees
// every job, and no MCP client may act as that.
func CallerFromContext(ctx context.Context) (string, bool) {
	c, _ := ctx.Value(callerKey{}).(string)
	return c, c != ""
}

// httpContext carries the caller that authenticate put on the request into
// the context mcp-go hands to tool handlers.
func httpContext(ctx context.Context, r *http.Request) context.Context {
	if c, ok := CallerFromContext(r.Context()); ok {
		return WithCaller(ctx, c)
	}
	return ctx
}

const instructions = `sapq posts business documents (supplier invoices, G/L journal entries) into SAP exactly once.

Workflow:
1. Call submit_supplier_invoice or submit_journal_entry with a unique idempotency_key per business document. The call only records and queues the posting and returns a job_id at once; SAP is called later by a worker.
2. Wait poll_after_seconds, then call get_posting with the job_id. Repeat until status is succeeded (result.document holds the SAP document number), failed (error explains why) or cancelled.
3. If a submit call fails or times out, resend it unchanged with the SAME idempotency_key: you get the same job back (replayed=true) and the document is never posted twice. Never invent a new key for a retry.

Use list_postings to find your earlier jobs and cancel_posting to withdraw a job that SAP has not been called for yet.`
