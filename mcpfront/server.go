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
// negotiates) behind an origin check, bearer authentication (static tokens
// from the callers file or SAPQ_MCP_TOKENS, or OAuth 2.0 JWT access tokens),
// request limits and per-caller session bookkeeping. ServeStdio serves one
// local client whose identity is fixed for the process.
//
// Each caller has a role and a policy (kinds, company codes, amounts per
// posting and per day, an approval threshold, a submissions quota); a
// refusal names the rule. Every tool call is written to the audit log.
//
// Every tool call runs as a caller, and the ledger confines a caller to its
// own jobs: another caller's job is "not found", never "forbidden", so IDs
// cannot be probed.
package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// Defaults for Options.
const (
	DefaultMaxRequestBytes      = 1 << 20
	DefaultMaxJSONDepth         = 32
	DefaultPollAfter            = 2 * time.Second
	DefaultSubmissionsPerMinute = 60
	DefaultMaxSessionsPerCaller = 16
	// DefaultSessionIdleTimeout bounds how long a 2025-11-25 session that
	// its client abandoned without DELETE keeps transport state. Tools
	// keep no session state, so forgetting a session costs a client
	// nothing but a new initialize.
	DefaultSessionIdleTimeout = 15 * time.Minute
)

// Version is reported to clients in the server info.
const Version = "0.2.0"

// GCPercent is the garbage collector's target percentage a process serving
// the front runs with unless GOGC is set (sapq mcp; sapq bench's latency
// scenario). A front's live heap is small (sessions, limiters: a few MB)
// and what it allocates per call is not (tens of KB, most of it mcp-go's
// decoding of each message, several times over), so with Go's default of
// 100 it collects every few hundred calls. Measured with sapq bench at
// 2,000 submissions/s on 2 cores (the MCP client in another process): p99
// 10.8-12.3 ms and GC pauses 1.4% of the wall time at 100, 9.4 ms and 0.30%
// at 400; the price is a heap up to five times the live one, which
// GOMEMLIMIT bounds.
const GCPercent = 400

// Options configures a Server.
type Options struct {
	// Ledger records and answers for postings. Required.
	Ledger *ledger.Ledger
	// Redis holds the counters every instance shares: submissions per
	// minute and amounts per day. Required; usually the ledger's Redis.
	Redis redis.UniversalClient
	// Callers is the directory from the callers file. Server.SetCallers
	// replaces it while serving.
	Callers *Callers
	// Tokens is the simple form, SAPQ_MCP_TOKENS: agents without policy
	// limits. Its callers are added to Callers'; a name in both is an error.
	Tokens TokenSet
	// OAuth, when set, also accepts JWT access tokens from one issuer.
	OAuth *OAuthOptions
	// Logger receives request logs and internal errors. Default slog.Default().
	Logger *slog.Logger
	// Audit receives one record per tool call. Nil: no audit records
	// (sapq mcp always sets one).
	Audit *slog.Logger
	// MaxRequestBytes bounds one HTTP request body or one stdio message.
	// Default 1 MiB, which is also the most tasks.Decode accepts.
	MaxRequestBytes int64
	// MaxJSONDepth bounds the nesting of a request's JSON. Default 32.
	MaxJSONDepth int
	// PollAfter is how long an agent is told to wait before polling a job,
	// returned as poll_after_seconds (whole seconds, at least 1). Default 2s.
	PollAfter time.Duration
	// SubmissionsPerMinute is each caller's quota of submit calls, unless
	// its policy sets another. 0 means DefaultSubmissionsPerMinute; a
	// negative value means no quota.
	SubmissionsPerMinute int
	// MaxSessionsPerCaller bounds the open 2025-11-25 sessions of one
	// caller; a new one ends the caller's least recently used. Default 16.
	MaxSessionsPerCaller int
	// SessionIdleTimeout ends sessions unused this long. Default 15 minutes.
	SessionIdleTimeout time.Duration
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// requests are served besides same-origin ones, and loopback ones when
	// the server itself is addressed as loopback. Any other Origin gets 403.
	AllowedOrigins []string
	// Retention is how long a replayed key is recognised by the daily
	// amount count; set it to the ledger's retention. Default
	// ledger.DefaultRetention.
	Retention time.Duration
	// ApprovalTTL is how long a posting above its submitter's approval
	// threshold waits for an operator's decision before it is rejected on
	// its own. Default ledger.DefaultApprovalTTL.
	ApprovalTTL time.Duration
	// Routes say which SAP destination each submission goes to, as the
	// worker's do (the same destinations file): a submission that names an
	// unknown destination, or whose company code no destination takes, is
	// refused. Zero: the one destination tasks.DefaultDestination.
	Routes tasks.Routes
	// SAP, when set, is asked to check dry runs' documents without posting
	// them (*sap.Destinations), and to look up a posting never sent before
	// it is cancelled; without it, dry runs check everything but SAP's own
	// rules and say so, and a posting never sent cannot be cancelled (SAP
	// may hold a document under its reference from a job of the same key
	// that the ledger forgot).
	SAP SAPChecker
	// Metrics, when set, receives tool call and authentication metrics.
	Metrics prometheus.Registerer
	// Tracer makes a span of each HTTP request and each tool call; a
	// submission's trace is recorded with its job. Default
	// otel.GetTracerProvider().
	Tracer trace.TracerProvider
	// Now is the clock for the daily amounts' day. Default time.Now.
	Now func() time.Time
}

// Server is the MCP front end. It is safe for concurrent use.
type Server struct {
	ledger      *ledger.Ledger
	budget      *budget
	fromFile    atomic.Pointer[Callers] // the callers file's part, swapped on reload
	callers     atomic.Pointer[Callers] // fromFile merged with tokens
	tokens      *Callers
	oauth       *oauthVerifier
	log         *slog.Logger
	audit       *slog.Logger
	maxBytes    int64
	maxDepth    int
	pollAfter   int
	quota       int // default submissions per minute; 0: none
	approvalTTL time.Duration
	origins     []string
	routes      tasks.Routes
	checker     SAPChecker
	sessions    *sessionStore
	metrics     *metrics
	tracer      trace.Tracer
	// submitTools are the submit tools' names and the kinds they post.
	submitTools map[string]tasks.Kind
	mcp         *server.MCPServer
	http        *server.StreamableHTTPServer
	handler     http.Handler
	warnOnce    sync.Once
}

// New builds a Server and registers its tools.
func New(opts Options) (*Server, error) {
	if opts.Ledger == nil {
		return nil, errors.New("mcpfront: Options.Ledger is required")
	}
	if opts.Redis == nil {
		return nil, errors.New("mcpfront: Options.Redis is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxJSONDepth <= 0 {
		opts.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if opts.PollAfter <= 0 {
		opts.PollAfter = DefaultPollAfter
	}
	switch {
	case opts.SubmissionsPerMinute == 0:
		opts.SubmissionsPerMinute = DefaultSubmissionsPerMinute
	case opts.SubmissionsPerMinute < 0:
		opts.SubmissionsPerMinute = 0
	}
	if opts.MaxSessionsPerCaller <= 0 {
		opts.MaxSessionsPerCaller = DefaultMaxSessionsPerCaller
	}
	if opts.SessionIdleTimeout <= 0 {
		opts.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if opts.Retention <= 0 {
		opts.Retention = ledger.DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ApprovalTTL <= 0 {
		opts.ApprovalTTL = ledger.DefaultApprovalTTL
	}
	if opts.Tracer == nil {
		opts.Tracer = otel.GetTracerProvider()
	}
	origins, err := parseOrigins(opts.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	if len(opts.Routes.Destinations) == 0 {
		opts.Routes = tasks.SingleRoute(tasks.DefaultDestination)
	}
	if err := opts.Routes.Validate(); err != nil {
		return nil, fmt.Errorf("mcpfront: Options.Routes: %w", err)
	}
	s := &Server{
		ledger:      opts.Ledger,
		budget:      &budget{rdb: opts.Redis, limiter: redis_rate.NewLimiter(opts.Redis), retention: opts.Retention, now: opts.Now},
		tokens:      opts.Tokens.Callers(),
		log:         opts.Logger.With("component", "mcpfront"),
		audit:       opts.Audit,
		maxBytes:    opts.MaxRequestBytes,
		maxDepth:    opts.MaxJSONDepth,
		pollAfter:   max(1, int((opts.PollAfter+time.Second-1)/time.Second)),
		quota:       opts.SubmissionsPerMinute,
		approvalTTL: opts.ApprovalTTL,
		origins:     origins,
		routes:      opts.Routes,
		checker:     opts.SAP,
		tracer:      opts.Tracer.Tracer("github.com/sapq/sapq/mcpfront"),
		submitTools: map[string]tasks.Kind{},
	}
	for _, spec := range tasks.Specs() {
		s.submitTools[spec.Tool] = spec.Kind
	}
	if err := s.SetCallers(opts.Callers); err != nil {
		return nil, err
	}
	if opts.Metrics != nil {
		m, err := newMetrics(opts.Metrics)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	if opts.OAuth != nil {
		v, err := newOAuthVerifier(*opts.OAuth)
		if err != nil {
			return nil, err
		}
		s.oauth = v
	}

	hooks := &server.Hooks{}
	// A call to a tool the caller may not use is refused by mcp-go's tool
	// filter before any middleware runs: it is audited here.
	hooks.AddOnError(s.auditProtocolError)
	serverOpts := []server.ServerOption{
		server.WithInstructions(instructions),
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(false, false),
		server.WithPromptCapabilities(false),
		server.WithLogger(s.log),
		server.WithHooks(hooks),
		// Tools a caller may not use are neither listed to it nor callable
		// (mcp-go applies the filter to tools/call too).
		server.WithToolFilter(s.filterTools),
	}
	if s.metrics != nil {
		// Added before recovery so that it is the outer layer and also
		// counts calls that panicked.
		serverOpts = append(serverOpts, server.WithToolHandlerMiddleware(s.metrics.middleware))
	}
	serverOpts = append(serverOpts,
		server.WithToolHandlerMiddleware(s.auditMiddleware),
		server.WithRecovery(), server.WithResourceRecovery())
	s.mcp = server.NewMCPServer("sapq", Version, serverOpts...)
	s.registerTools()
	s.registerResources()
	s.registerPrompts()

	s.sessions = newSessionStore(opts.MaxSessionsPerCaller, opts.SessionIdleTimeout, s.endSession)
	if s.metrics != nil {
		s.sessions.gauge = func(n int) { s.metrics.sessions.Set(float64(n)) }
	}
	s.http = server.NewStreamableHTTPServer(s.mcp,
		server.WithHTTPContextFunc(httpContext),
		server.WithStreamableHTTPLogger(s.log),
		server.WithSessionIdManagerResolver(s.sessions),
		server.WithSessionIdleTTL(opts.SessionIdleTimeout),
	)
	// Outermost first: refuse foreign origins, authenticate before reading
	// a byte of the body, bound and check the body, check the session, then
	// MCP.
	s.handler = s.checkOrigin(s.authenticate(http.MaxBytesHandler(s.limitBody(s.checkSession(s.http)), s.maxBytes)))
	return s, nil
}

// SetCallers replaces the callers file's directory, atomically: requests
// in flight keep the caller they were authenticated as, later ones see the
// new directory. It fails, keeping the old directory, if the new one
// collides with the SAPQ_MCP_TOKENS callers.
func (s *Server) SetCallers(c *Callers) error {
	merged, err := c.Merge(s.tokens)
	if err != nil {
		return err
	}
	s.fromFile.Store(c)
	s.callers.Store(merged)
	return nil
}

// Callers returns the directory in use.
func (s *Server) Callers() *Callers { return s.callers.Load() }

// MCP returns the underlying mcp-go server, for embedding in other transports
// or in-process tests. Calls through it carry no caller unless the context
// was made with WithCaller, and tools refuse such calls.
func (s *Server) MCP() *server.MCPServer { return s.mcp }

// HTTPHandler serves Streamable HTTP at whatever path it is mounted on,
// behind the origin check, authentication, the request limits and the
// session check. Mount it with Register to also serve the OAuth
// protected-resource metadata.
func (s *Server) HTTPHandler() http.Handler {
	// Only here: the stdio transport has no use for HTTP callers and
	// must not warn about them.
	s.warnOnce.Do(func() {
		if s.callers.Load().Len() == 0 && s.oauth == nil {
			s.log.Warn("no callers configured: the HTTP transport will reject every request")
		}
	})
	return s.handler
}

// Register mounts the MCP endpoint at path on mux and, in OAuth mode, the
// RFC 9728 protected-resource metadata at its well-known path.
func (s *Server) Register(mux *http.ServeMux, path string) {
	mux.Handle(path, s.HTTPHandler())
	if s.oauth != nil {
		mux.Handle(s.oauth.metadataPath, s.oauth.metadataHandler)
	}
}

// Close stops background work of the HTTP transport (its session sweeper)
// and ends open listening streams. It does not close the ledger.
func (s *Server) Close(ctx context.Context) error {
	if s.oauth != nil {
		s.oauth.close()
	}
	return s.http.Shutdown(ctx)
}

// callerKey is the context key of the authenticated caller.
type callerKey struct{}

// WithCaller returns a context whose tool calls run as caller.
func WithCaller(ctx context.Context, caller *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFromContext returns the caller a tool call runs as. A caller with
// an empty name is never returned as ok: the ledger treats "" as the
// operator, who sees every job, and no MCP client may act as that.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c, c != nil && c.Name != ""
}

// httpContext carries the caller and trace ID that the middleware put on
// the request into the context mcp-go hands to tool handlers.
func httpContext(ctx context.Context, r *http.Request) context.Context {
	if c, ok := CallerFromContext(r.Context()); ok {
		ctx = WithCaller(ctx, c)
	}
	return trace.ContextWithSpan(ctx, trace.SpanFromContext(r.Context()))
}

// instructions tell a model what the server is for, from the kinds'
// declarations.
var instructions = func() string {
	var kinds, tools []string
	for _, spec := range tasks.Specs() {
		kinds = append(kinds, "- "+spec.Tool+": "+spec.Summary)
		tools = append(tools, spec.Tool)
	}
	return `sapq posts business documents into SAP exactly once:
` + strings.Join(kinds, "\n") + `

Workflow:
1. Call a submit tool (` + strings.Join(tools, ", ") + `) with a unique idempotency_key per business document. The call only records and queues the posting and returns a job_id at once; SAP is called later by a worker.
2. Wait poll_after_seconds, then call get_posting with the job_id. Repeat until status is succeeded (result.document holds the SAP document number), failed (error explains why) or cancelled.
3. If a submit call fails or times out, resend it unchanged with the SAME idempotency_key: you get the same job back (replayed=true) and the document is never posted twice. Never invent a new key for a retry.

Use list_postings to find your earlier jobs and cancel_posting to withdraw a job that SAP has not been called for yet.`
}()
