package mcpfront

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/net/netutil"
)

// HTTPLimits are the connection-level limits of the MCP listener.
type HTTPLimits struct {
	// MaxConnections caps the open connections; further clients wait in
	// the kernel's accept queue until one closes. Default 512.
	MaxConnections int
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body: a
	// client that sends headers and then a slow or no body is cut off.
	// Once the body is read the deadline is lifted, so that a listening
	// stream (GET, subscriptions/listen) may last. Default 30s.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 60s.
	IdleTimeout time.Duration
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = 512
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.ReadHeaderTimeout > l.ReadTimeout {
		l.ReadHeaderTimeout = l.ReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	return l
}

// NewHTTPServer returns an http.Server for h with the limits' timeouts.
// No WriteTimeout: a listening stream writes for as long as it is open.
func NewHTTPServer(h http.Handler, limits HTTPLimits) *http.Server {
	l := limits.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// LimitListener caps ln's open connections at the limits' MaxConnections.
func LimitListener(ln net.Listener, limits HTTPLimits) net.Listener {
	return netutil.LimitListener(ln, limits.withDefaults().MaxConnections)
}

// liftReadDeadline ends ReadTimeout's hold on a request whose body is read:
// from here on the request may stream. Writers that cannot (test
// recorders) are left alone.
func liftReadDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// rpcError writes a JSON-RPC error without an id, as the transport answers
// requests it refuses before reading them as JSON-RPC.
func rpcError(w http.ResponseWriter, status, code int, msg string) {
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// parseOrigins checks the configured origin allow-list.
func parseOrigins(origins []string) ([]string, error) {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("mcpfront: allowed origin %q must be scheme://host[:port], such as https://agent.example.com", o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// checkOrigin answers 403 to a browser request from a foreign origin, as
// the Streamable HTTP transport requires against DNS rebinding: a page on
// another site must not drive a local server. Same-origin requests pass, and
// loopback pages talking to a server addressed as loopback (the MCP
// Inspector), and the configured origins. Requests without Origin are not
// from a browser and pass to authentication.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || s.originAllowed(r, origin) {
			next.ServeHTTP(w, r)
			return
		}
		s.metrics.unauthorized("origin")
		s.log.Warn("request from a foreign origin refused", "origin", truncate(origin, 100), "host", truncate(r.Host, 100), "remote", r.RemoteAddr)
		rpcError(w, http.StatusForbidden, -32600, "origin not allowed: this server accepts browser requests from its own origin and configured ones only")
	})
}

func (s *Server) originAllowed(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // including the opaque origin "null"
	}
	if slices.Contains(s.origins, strings.ToLower(u.Scheme+"://"+u.Host)) {
		return true
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return isLoopback(u.Hostname()) && isLoopback(hostname(r.Host))
}

func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// limitBody reads a POST body in full under http.MaxBytesHandler's limit
// and checks it before mcp-go sees it: an oversized request gets 413 (mcp-go
// would read it all and answer with a parse error), a JSON-RPC batch a clear
// refusal (MCP removed batches in 2025-06-18; mcp-go calls one "not valid
// json"), JSON nested deeper than the limit 400. In OAuth mode a call of a
// tool whose scope the token lacks gets 403 insufficient_scope, so that the
// client can ask for the scope (step-up authorization).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			liftReadDeadline(w)
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.maxBytes {
			s.tooLarge(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.tooLarge(w, r)
				return
			}
			http.Error(w, "could not read request body", http.StatusBadRequest)
			return
		}
		liftReadDeadline(w)
		if msg := s.checkMessage(body); msg != "" {
			rpcError(w, http.StatusBadRequest, -32600, msg)
			return
		}
		if d := s.missingScope(r, body); d != nil {
			s.forbidden(w, r, d)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// checkMessage returns why a JSON-RPC message is refused before parsing,
// or "".
func (s *Server) checkMessage(body []byte) string {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return "JSON-RPC batches are not supported: MCP removed batching in protocol version 2025-06-18; send each request on its own (one POST, or one stdio line, per message)"
	}
	if jsonDepthExceeds(body, s.maxDepth) {
		return fmt.Sprintf("JSON nested deeper than %d levels; nothing was processed", s.maxDepth)
	}
	return ""
}

// jsonDepthExceeds reports whether raw nests objects and arrays deeper than
// max. It scans the bytes once, skipping strings, and stops at the first
// level too deep: mcp-go and encoding/json would otherwise build the whole
// structure first (encoding/json allows 10000 levels).
func jsonDepthExceeds(raw []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, b := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
			if depth > max {
				return true
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return false
}

// missingScope returns why an OAuth caller may not call the tool a
// tools/call names, or nil. Other callers' unusable tools are simply not
// there for them (the tool filter).
func (s *Server) missingScope(r *http.Request, body []byte) *accessDenied {
	c, ok := CallerFromContext(r.Context())
	if !ok || c.Via != "oauth" {
		return nil
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Method != string(mcp.MethodToolsCall) {
		return nil
	}
	need, known := toolScopes[msg.Params.Name]
	if !known || c.Has(need) {
		return nil
	}
	return &accessDenied{caller: c.Name, reason: fmt.Sprintf("%s needs the scope %s", msg.Params.Name, need), need: []Scope{need}}
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	s.metrics.rejectedTooLarge()
	name := ""
	if c, ok := CallerFromContext(r.Context()); ok {
		name = c.Name
	}
	s.log.Warn("request body too large", "caller", name, "limit", s.maxBytes, "content_length", r.ContentLength)
	// Tell the server to drop the connection: the rest of the body is unread.
	w.Header().Set("Connection", "close")
	rpcError(w, http.StatusRequestEntityTooLarge, -32600, fmt.Sprintf("request body exceeds the limit of %d bytes; nothing was recorded", s.maxBytes))
}

// checkSession answers 404 to a 2025-11-25 request whose session ID is not
// one of the caller's open sessions (unknown, expired, deleted, or
// another caller's), as the Streamable HTTP transport requires: the client
// then initializes a new session. 2026-07-28 requests have no sessions, and
// mcp-go ignores the header on them.
func (s *Server) checkSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Mcp-Session-Id")
		if id == "" || mcp.IsModernProtocol(r.Header.Get("MCP-Protocol-Version")) {
			next.ServeHTTP(w, r)
			return
		}
		c, _ := CallerFromContext(r.Context())
		if c == nil || !s.sessions.valid(c.Name, id) {
			rpcError(w, http.StatusNotFound, -32001, "session not found: it expired, was deleted or never existed; initialize a new session")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// endSession removes mcp-go's transport state of a session that sapq ended
// (evicted for the caller's session cap, or expired), as a DELETE from its
// client would: mcp-go offers no other way, and without it the state would
// stay until its own idle sweep.
func (s *Server) endSession(id string) {
	req, err := http.NewRequest(http.MethodDelete, "/mcp", nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	s.http.ServeHTTP(discardResponse{header: http.Header{}}, req)
}

type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d discardResponse) WriteHeader(int)             {}
