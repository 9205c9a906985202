package mcpfront

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sapq/sapq/tasks"
)

// TokensEnv is the environment variable conventionally holding tokens in
// the ParseTokens format.
const TokensEnv = "SAPQ_MCP_TOKENS"

// TokenSet maps bearer tokens to caller names. The zero value holds no
// tokens. Only SHA-256 digests of the tokens are kept, so a TokenSet printed
// or dumped by accident reveals nothing usable.
type TokenSet struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	caller string
}

// ParseTokens reads tokens from a comma-separated list of caller:token pairs,
// the format of SAPQ_MCP_TOKENS:
//
//	alice:tok1,bob:tok2
//
// Surrounding blanks are ignored; an empty value gives an empty set.
func ParseTokens(value string) (TokenSet, error) {
	var b tokenSetBuilder
	for i, pair := range strings.Split(value, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		if err := b.add(pair); err != nil {
			return TokenSet{}, fmt.Errorf("mcpfront: %s entry %d: %w", TokensEnv, i+1, err)
		}
	}
	return b.set, nil
}

// LoadTokenFile reads a token file: one caller:token pair per line, split at
// the first colon. Blank lines and lines starting with # are ignored:
//
//	# caller:token
//	alice:4f9c0d1e8b7a...
//	bob:0a1b2c3d4e5f...
//
// Caller names are letters, digits and . _ @ -; tokens are any printable
// characters without blanks or commas. A token may appear only once.
func LoadTokenFile(path string) (TokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return TokenSet{}, fmt.Errorf("mcpfront: token file: %w", err)
	}
	defer f.Close()
	return readTokens(f, path)
}

func readTokens(r io.Reader, name string) (TokenSet, error) {
	var b tokenSetBuilder
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := b.add(line); err != nil {
			// Never echo the line: it holds a token.
			return TokenSet{}, fmt.Errorf("mcpfront: token file %s line %d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return TokenSet{}, fmt.Errorf("mcpfront: token file %s: %w", name, err)
	}
	return b.set, nil
}

type tokenSetBuilder struct {
	set  TokenSet
	seen map[[sha256.Size]byte]bool
}

func (b *tokenSetBuilder) add(pair string) error {
	caller, token, ok := strings.Cut(strings.TrimSpace(pair), ":")
	caller, token = strings.TrimSpace(caller), strings.TrimSpace(token)
	switch {
	case !ok:
		return errors.New("want caller:token")
	case !validCaller(caller):
		return errors.New("caller name must be 1-64 letters, digits or . _ @ -")
	case token == "":
		return errors.New("empty token")
	case strings.ContainsAny(token, " \t,") || !printable(token):
		return errors.New("token must be printable, without blanks or commas")
	}
	d := sha256.Sum256([]byte(token))
	if b.seen == nil {
		b.seen = make(map[[sha256.Size]byte]bool)
	}
	if b.seen[d] {
		// Two callers sharing a token could not be told apart.
		return fmt.Errorf("token of caller %q is already assigned", caller)
	}
	b.seen[d] = true
	b.set.entries = append(b.set.entries, tokenEntry{digest: d, caller: caller})
	return nil
}

func validCaller(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// Len is the number of tokens in the set.
func (ts TokenSet) Len() int { return len(ts.entries) }

// Lookup returns the caller a token belongs to. It compares the token's
// digest with every entry in constant time and never stops early, so timing
// reveals neither whether nor which token matched.
func (ts TokenSet) Lookup(token string) (caller string, ok bool) {
	d := sha256.Sum256([]byte(token))
	match := -1
	for i := range ts.entries {
		eq := subtle.ConstantTimeCompare(d[:], ts.entries[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false
	}
	return ts.entries[match].caller, true
}

// authenticate admits requests that carry a known bearer token (from the
// callers file or SAPQ_MCP_TOKENS) or, in OAuth mode, a valid JWT access
// token, and puts the caller on the request context. Everything else gets
// 401 with a WWW-Authenticate challenge (RFC 6750; with resource_metadata,
// RFC 9728, in OAuth mode), before the body is read. Every request gets a
// span first, continuing the client's W3C traceparent if it sent one, so
// that refusals are traceable too.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := s.tracer.Start(tasks.ExtractTraceParent(r.Context(), propagation.HeaderCarrier(r.Header)), "mcp "+r.Method,
			trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
		token, given := bearerToken(r)
		if !given {
			s.challenge(w, r, "missing", "", "missing bearer token")
			return
		}
		if c, ok := s.callers.Load().ByToken(token); ok && token != "" {
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
			return
		}
		if s.oauth == nil || !looksLikeJWT(token) {
			s.challenge(w, r, "invalid", "unknown bearer token", "invalid bearer token")
			return
		}
		c, err := s.oauth.verify(r.Context(), token, s.fromFile.Load())
		var denied *accessDenied
		switch {
		case errors.As(err, &denied):
			s.forbidden(w, r, denied)
			return
		case err != nil:
			s.challenge(w, r, "invalid", err.Error(), "invalid access token: "+err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// challenge answers 401. The token itself is never logged.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, reason, description, msg string) {
	challenge := `Bearer realm="sapq"`
	if s.oauth != nil {
		challenge += fmt.Sprintf(`, resource_metadata=%q, scope=%q`, s.oauth.metadataURL, scopeList(Scopes))
	}
	if description != "" {
		challenge += fmt.Sprintf(`, error="invalid_token", error_description=%q`, description)
	}
	s.metrics.unauthorized(reason)
	s.log.Info("unauthenticated request rejected", "reason", reason, "detail", description, "remote", r.RemoteAddr, "method", r.Method, "trace_id", traceIDFrom(r.Context()))
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, msg, http.StatusUnauthorized)
}

// forbidden answers 403 insufficient_scope (RFC 6750 3.1): the token is
// valid but lacks what the request needs.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, d *accessDenied) {
	challenge := fmt.Sprintf(`Bearer realm="sapq", error="insufficient_scope", error_description=%q`, d.reason)
	if s.oauth != nil {
		challenge += fmt.Sprintf(`, resource_metadata=%q`, s.oauth.metadataURL)
	}
	if len(d.need) > 0 {
		challenge += fmt.Sprintf(`, scope=%q`, scopeList(d.need))
	}
	s.metrics.unauthorized("forbidden")
	s.log.Info("request forbidden", "reason", d.reason, "caller", d.caller, "remote", r.RemoteAddr, "trace_id", traceIDFrom(r.Context()))
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, "forbidden: "+d.reason, http.StatusForbidden)
}

func scopeList(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, sc := range scopes {
		parts[i] = string(sc)
	}
	return strings.Join(parts, " ")
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; given reports whether any Authorization header was sent.
func bearerToken(r *http.Request) (token string, given bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(rest), true
}
