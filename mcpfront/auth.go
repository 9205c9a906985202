package mcpfront

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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

// authenticate admits requests that carry a known bearer token and puts the
// token's caller on the request context. Everything else gets 401 with a
// WWW-Authenticate challenge (RFC 6750), before the body is read.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, given := bearerToken(r)
		caller, ok := "", false
		if given {
			caller, ok = s.tokens.Lookup(token)
		}
		if !ok {
			challenge := `Bearer realm="sapq"`
			msg := "missing bearer token"
			reason := "missing"
			if given {
				challenge += `, error="invalid_token", error_description="unknown bearer token"`
				msg, reason = "invalid bearer token", "invalid"
			}
			s.metrics.unauthorized(reason)
			// The token itself is never logged.
			s.log.Info("unauthenticated request rejected", "reason", reason, "remote", r.RemoteAddr, "method", r.Method)
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), caller)))
	})
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

// limitBody reads a POST body in full under http.MaxBytesHandler's limit, so
// that an oversized request is answered with 413 and a JSON-RPC error before
// mcp-go sees it (mcp-go would read it all and answer with a parse error).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
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
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	s.metrics.rejectedTooLarge()
	caller, _ := CallerFromContext(r.Context())
	s.log.Warn("request body too large", "caller", caller, "limit", s.maxBytes, "content_length", r.ContentLength)
	w.Header().Set("Content-Type", "application/json")
	// Tell the server to drop the connection: the rest of the body is unread.
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body exceeds the limit of %d bytes; nothing was recorded"}}`+"\n", s.maxBytes)
}
