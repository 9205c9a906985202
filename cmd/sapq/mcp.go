package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks/ledger"
)

// mcpConfig is sapq mcp's configuration beyond the ledger's.
type mcpConfig struct {
	transport, addr, caller   string
	callersFile, auditLog     string
	oauthIssuer, oauthJWKS    string
	oauthResource, origins    string
	submissionsPerMinute      int
	maxSessions, maxConns     int
	maxDepth                  int
	maxRequestBytes           int64
	sessionIdle, readTimeout  time.Duration
	idleTimeout, readHeaderTo time.Duration
	approvalExpiry            time.Duration
}

func (c *mcpConfig) register(fs *flag.FlagSet, e *envDefaults) {
	fs.StringVar(&c.transport, "transport", env("MCP_TRANSPORT", "http"), "http (Streamable HTTP at /mcp) or stdio (env SAPQ_MCP_TRANSPORT)")
	fs.StringVar(&c.addr, "addr", env("MCP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env SAPQ_MCP_ADDR)")
	fs.StringVar(&c.caller, "caller", env("MCP_CALLER", "local"), "caller identity for stdio, whose jobs it sees; a caller of that name in the callers file brings its role and policy (env SAPQ_MCP_CALLER)")
	fs.StringVar(&c.callersFile, "callers-file", env("MCP_CALLERS_FILE", ""), "JSON file of callers: name, token SHA-256 or OAuth subject, role, policy; reloaded on SIGHUP (env SAPQ_MCP_CALLERS_FILE)")
	fs.StringVar(&c.auditLog, "audit-log", env("MCP_AUDIT_LOG", "-"), "where the audit log's JSON lines go: a file (appended, reopened on SIGHUP) or - for stderr (env SAPQ_MCP_AUDIT_LOG)")
	fs.StringVar(&c.oauthIssuer, "oauth-issuer", env("MCP_OAUTH_ISSUER", ""), "OAuth mode: the authorization server's issuer; JWT access tokens from it are accepted (env SAPQ_MCP_OAUTH_ISSUER)")
	fs.StringVar(&c.oauthJWKS, "oauth-jwks-url", env("MCP_OAUTH_JWKS_URL", ""), "OAuth mode: the issuer's JWKS URL (env SAPQ_MCP_OAUTH_JWKS_URL)")
	fs.StringVar(&c.oauthResource, "oauth-resource", env("MCP_OAUTH_RESOURCE", ""), "OAuth mode: this server's URL as clients use it, the tokens' audience, e.g. https://sapq.example.com/mcp (env SAPQ_MCP_OAUTH_RESOURCE)")
	fs.StringVar(&c.origins, "allowed-origins", env("MCP_ALLOWED_ORIGINS", ""), "comma-separated browser origins allowed besides same-origin and loopback (env SAPQ_MCP_ALLOWED_ORIGINS)")
	fs.IntVar(&c.submissionsPerMinute, "submissions-per-minute", e.int("MCP_SUBMISSIONS_PER_MINUTE", mcpfront.DefaultSubmissionsPerMinute), "each caller's submit calls per minute unless its policy says otherwise; -1 for no quota (env SAPQ_MCP_SUBMISSIONS_PER_MINUTE)")
	fs.IntVar(&c.maxSessions, "max-sessions-per-caller", e.int("MCP_MAX_SESSIONS_PER_CALLER", mcpfront.DefaultMaxSessionsPerCaller), "open 2025-11-25 sessions per caller; a new one ends the least recently used (env SAPQ_MCP_MAX_SESSIONS_PER_CALLER)")
	fs.DurationVar(&c.sessionIdle, "session-idle-timeout", e.duration("MCP_SESSION_IDLE_TIMEOUT", mcpfront.DefaultSessionIdleTimeout), "sessions unused this long end (env SAPQ_MCP_SESSION_IDLE_TIMEOUT)")
	fs.IntVar(&c.maxConns, "max-connections", e.int("MCP_MAX_CONNECTIONS", 512), "open HTTP connections at most; more wait to be accepted (env SAPQ_MCP_MAX_CONNECTIONS)")
	fs.DurationVar(&c.readHeaderTo, "read-header-timeout", e.duration("MCP_READ_HEADER_TIMEOUT", 10*time.Second), "time to read a request's headers (env SAPQ_MCP_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.readTimeout, "read-timeout", e.duration("MCP_READ_TIMEOUT", 30*time.Second), "time to read a whole request, headers and body (env SAPQ_MCP_READ_TIMEOUT)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", e.duration("MCP_IDLE_TIMEOUT", 60*time.Second), "idle keep-alive connections close after this (env SAPQ_MCP_IDLE_TIMEOUT)")
	fs.Int64Var(&c.maxRequestBytes, "max-request-bytes", int64(e.int("MCP_MAX_REQUEST_BYTES", mcpfront.DefaultMaxRequestBytes)), "largest request body or stdio message (env SAPQ_MCP_MAX_REQUEST_BYTES)")
	fs.DurationVar(&c.approvalExpiry, "approval-expiry", e.duration("APPROVAL_EXPIRY", ledger.DefaultApprovalTTL), "a posting above its submitter's approval threshold that no operator approves within this time is rejected (env SAPQ_APPROVAL_EXPIRY)")
	fs.IntVar(&c.maxDepth, "max-json-depth", e.int("MCP_MAX_JSON_DEPTH", mcpfront.DefaultMaxJSONDepth), "deepest JSON nesting of a request (env SAPQ_MCP_MAX_JSON_DEPTH)")
}

func (c *mcpConfig) limits() mcpfront.HTTPLimits {
	return mcpfront.HTTPLimits{MaxConnections: c.maxConns, ReadHeaderTimeout: c.readHeaderTo, ReadTimeout: c.readTimeout, IdleTimeout: c.idleTimeout}
}

func (c *mcpConfig) oauth() (*mcpfront.OAuthOptions, error) {
	if c.oauthIssuer == "" && c.oauthJWKS == "" && c.oauthResource == "" {
		return nil, nil
	}
	if c.oauthIssuer == "" || c.oauthJWKS == "" || c.oauthResource == "" {
		return nil, errors.New("OAuth mode needs all of --oauth-issuer, --oauth-jwks-url and --oauth-resource (SAPQ_MCP_OAUTH_ISSUER, SAPQ_MCP_OAUTH_JWKS_URL, SAPQ_MCP_OAUTH_RESOURCE)")
	}
	return &mcpfront.OAuthOptions{Issuer: c.oauthIssuer, JWKSURL: c.oauthJWKS, Resource: c.oauthResource}, nil
}

func runMCP(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	var e envDefaults
	var lf ledgerFlags
	lf.register(fs, &e)
	var cfg mcpConfig
	cfg.register(fs, &e)
	// The MCP front routes submissions as the worker does; with --sap-check
	// it also connects to SAP, with the worker's settings, to check dry
	// runs' documents.
	var sf sapFlags
	sf.register(fs, &e)
	sapCheck := fs.Bool("sap-check", e.bool("MCP_SAP_CHECK", false), "have SAP check the documents of dry runs (dry_run: true) without posting them, and look up postings never sent before cancelling them (without it, cancel_posting refuses those), connecting with the --sap-* settings or the destinations file as the worker does; without it, dry runs check everything but SAP's own rules and say so (env SAPQ_MCP_SAP_CHECK)")
	transportKnown := func() error {
		if cfg.transport != "http" && cfg.transport != "stdio" {
			return fmt.Errorf("--transport (SAPQ_MCP_TRANSPORT) must be http or stdio, got %q", cfg.transport)
		}
		return nil
	}
	if err := e.parse(fs, args, append(append(lf.checks(), sf.checks()...), transportKnown, positive("approval-expiry", "APPROVAL_EXPIRY", &cfg.approvalExpiry))...); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	tuneGC(log, mcpfront.GCPercent)
	audit, err := openAudit(cfg.auditLog)
	if err != nil {
		return err
	}
	defer audit.Close()

	opts := mcpfront.Options{
		Logger:               log,
		Audit:                slog.New(slog.NewJSONHandler(audit, nil)),
		SubmissionsPerMinute: cfg.submissionsPerMinute,
		MaxSessionsPerCaller: cfg.maxSessions,
		SessionIdleTimeout:   cfg.sessionIdle,
		MaxRequestBytes:      cfg.maxRequestBytes,
		MaxJSONDepth:         cfg.maxDepth,
		Retention:            lf.retention,
		ApprovalTTL:          cfg.approvalExpiry,
		Routes:               sf.routes(),
	}
	if *sapCheck {
		destinations, err := sf.destinations(log, 0)
		if err != nil {
			return err
		}
		defer destinations.CloseIdleConnections()
		opts.SAP = destinations
	}
	if cfg.callersFile != "" {
		if opts.Callers, err = mcpfront.LoadCallersFile(cfg.callersFile); err != nil {
			return err
		}
	}
	if cfg.transport == "http" {
		if opts.Tokens, err = loadTokens(); err != nil {
			return err
		}
		if opts.OAuth, err = cfg.oauth(); err != nil {
			return err
		}
		if opts.Callers.Len() == 0 && opts.Tokens.Len() == 0 && opts.OAuth == nil {
			return errors.New("no MCP callers: give --callers-file (SAPQ_MCP_CALLERS_FILE), SAPQ_MCP_TOKENS=caller:token,... or SAPQ_MCP_TOKENS_FILE, or OAuth mode (--oauth-issuer)")
		}
		if cfg.origins != "" {
			opts.AllowedOrigins = strings.Split(cfg.origins, ",")
		}
	}

	rdb, l, err := lf.open(ctx, log, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	defer l.Close()
	tracer, stopTracing, err := newTracing(ctx, "mcp")
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := newRegistry()
	opts.Ledger, opts.Redis, opts.Metrics, opts.Tracer = l, rdb, reg, tracer
	srv, err := mcpfront.New(opts)
	if err != nil {
		return err
	}
	stopReload := onSIGHUP(func() { reload(log, srv, cfg.callersFile, audit) })
	defer stopReload()

	if cfg.transport == "stdio" {
		return srv.ServeStdio(ctx, os.Stdin, stdout, cfg.caller)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ln = mcpfront.LimitListener(ln, cfg.limits())
	var ready readiness
	ready.add("redis", pingRedis(rdb))
	mux := opsMux(reg, &ready)
	srv.Register(mux, "/mcp")
	log.Info("MCP server listening", "url", "http://"+ln.Addr().String()+"/mcp")
	return serveWith(ctx, ln, mcpfront.NewHTTPServer(mux, cfg.limits()), func() { srv.Close(context.Background()) })
}

// onSIGHUP runs f on every SIGHUP until the returned function is called.
func onSIGHUP(f func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// reload re-reads the callers file and reopens the audit log (after
// logrotate moved it). A callers file that does not load keeps the callers
// in use, and the log says why.
func reload(log *slog.Logger, srv *mcpfront.Server, callersFile string, audit *auditFile) {
	if err := audit.Reopen(); err != nil {
		log.Error("audit log not reopened; still writing to the old file", "err", err)
	}
	if callersFile == "" {
		return
	}
	c, err := mcpfront.LoadCallersFile(callersFile)
	if err == nil {
		err = srv.SetCallers(c)
	}
	if err != nil {
		log.Error("callers file not reloaded; the previous callers stay in force", "file", callersFile, "err", err)
		return
	}
	log.Info("callers file reloaded", "file", callersFile, "callers", c.Len())
}

// loadTokens reads the MCP bearer tokens from SAPQ_MCP_TOKENS_FILE or
// SAPQ_MCP_TOKENS.
func loadTokens() (mcpfront.TokenSet, error) {
	if path := env("MCP_TOKENS_FILE", ""); path != "" {
		return mcpfront.LoadTokenFile(path)
	}
	return mcpfront.ParseTokens(env("MCP_TOKENS", ""))
}

// auditFile is the audit log's sink: stderr, or a file appended to and
// reopened on SIGHUP so that logrotate can move it.
type auditFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openAudit(path string) (*auditFile, error) {
	a := &auditFile{path: path}
	if path == "-" || path == "" {
		return a, nil
	}
	if err := a.Reopen(); err != nil {
		return nil, fmt.Errorf("--audit-log (SAPQ_MCP_AUDIT_LOG): %w", err)
	}
	return a, nil
}

func (a *auditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return os.Stderr.Write(p)
	}
	return a.f.Write(p)
}

func (a *auditFile) Reopen() error {
	if a.path == "-" || a.path == "" {
		return nil
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.f
	a.f = f
	a.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (a *auditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	return a.f.Close()
}
