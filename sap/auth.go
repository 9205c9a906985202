package sap

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuth configures OAuth 2.0 client credentials, as SAP's communication
// arrangements and BTP destinations offer beside Basic authentication: the
// client trades its ID and secret at the token endpoint for an access token,
// which each call to SAP carries as a bearer token.
type OAuth struct {
	TokenURL     string
	ClientID     string
	ClientSecret string `json:"-"` // never logged, never in errors, never marshalled
	Scopes       []string
}

func (o *OAuth) String() string {
	if o == nil {
		return "<nil>"
	}
	return fmt.Sprintf("sap.OAuth{TokenURL:%q ClientID:%q ClientSecret:%q Scopes:%q}",
		o.TokenURL, o.ClientID, redactedIf(o.ClientSecret), o.Scopes)
}

// GoString is String: %#v must not print the secret either.
func (o *OAuth) GoString() string { return o.String() }

// LogValue makes slog print o without the secret.
func (o *OAuth) LogValue() slog.Value {
	if o == nil {
		return slog.StringValue("")
	}
	return slog.GroupValue(
		slog.String("token_url", o.TokenURL),
		slog.String("client_id", o.ClientID),
		slog.String("client_secret", redactedIf(o.ClientSecret)),
		slog.Any("scopes", o.Scopes),
	)
}

func redactedIf(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

func (o *OAuth) validate() error {
	u, err := url.Parse(o.TokenURL)
	switch {
	case o.TokenURL == "":
		return errors.New("sap: OAuth.TokenURL is required")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return errors.New("sap: OAuth.TokenURL must be an absolute http(s) URL")
	case u.User != nil:
		return errors.New("sap: OAuth.TokenURL must not contain credentials; use ClientID and ClientSecret")
	case o.ClientID == "":
		return errors.New("sap: OAuth.ClientID is required")
	case o.ClientSecret == "":
		return errors.New("sap: OAuth.ClientSecret is required")
	}
	return nil
}

// secrets are the forms in which the client secret can appear on the wire:
// as is in a form body, and in the Basic header of the token request, whose
// parts the oauth2 package URL-encodes first.
func (o *OAuth) secrets() []string {
	return []string{
		o.ClientSecret,
		url.QueryEscape(o.ClientSecret),
		base64.StdEncoding.EncodeToString([]byte(o.ClientID + ":" + o.ClientSecret)),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(o.ClientID) + ":" + url.QueryEscape(o.ClientSecret))),
	}
}

// tokenRefreshEarly is how long before its expiry a cached access token is
// replaced, so that no call sets out with a token that expires on the way
// or by a slightly faster clock on SAP's side.
const tokenRefreshEarly = time.Minute

// tokens caches the access token of a Client. The oauth2 package fetches
// and caches it (refreshing it tokenRefreshEarly before it expires); what
// it cannot know is that SAP refused a token it still holds valid (revoked,
// signing key rotated), so tokens drops that one on request.
type tokens struct {
	mu     sync.Mutex
	cached oauth2.TokenSource
	fresh  func() oauth2.TokenSource
	// seen are the access tokens handed out, which scrub keeps out of
	// errors like any other credential (the last few: older ones expired).
	seen []string
}

func newTokens(o *OAuth, hc *http.Client) *tokens {
	cc := &clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: o.TokenURL, Scopes: o.Scopes}
	// The token requests go through the client's own transport (its CA
	// bundle) and time out with its calls. The oauth2 package keeps this
	// context for every later fetch, so it cannot be a caller's.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	fetch := tokenSourceFunc(func() (*oauth2.Token, error) { return cc.Token(ctx) })
	t := &tokens{fresh: func() oauth2.TokenSource { return oauth2.ReuseTokenSourceWithExpiry(nil, fetch, tokenRefreshEarly) }}
	t.cached = t.fresh()
	return t
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// token returns a valid access token. rejected is a token SAP has just
// refused: if it is still the cached one, it is dropped and a new one
// fetched. Passing the refused token rather than a "force" flag means that
// of many calls refused at once only the first fetches.
func (t *tokens) token(rejected string) (*oauth2.Token, error) {
	t.mu.Lock()
	src := t.cached
	t.mu.Unlock()
	tok, err := src.Token()
	if err == nil && rejected != "" && tok.AccessToken == rejected {
		t.mu.Lock()
		if t.cached == src {
			t.cached = t.fresh()
		}
		src = t.cached
		t.mu.Unlock()
		tok, err = src.Token()
	}
	if err != nil {
		return nil, err
	}
	t.remember(tok.AccessToken)
	return tok, nil
}

const rememberedTokens = 4

func (t *tokens) remember(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if slices.Contains(t.seen, tok) {
		return
	}
	t.seen = append(t.seen, tok)
	if len(t.seen) > rememberedTokens {
		t.seen = t.seen[1:]
	}
}

// issued returns the access tokens handed out lately.
func (t *tokens) issued() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.seen)
}

const opFetchToken = "fetch oauth token"

// tokenError classifies a failed token request. No call to SAP went out.
// The token endpoint refusing the client (RFC 6749 section 5.2) is a matter
// of configuration, like a 401 from SAP; anything else (endpoint down,
// timeout) passes.
func (c *Client) tokenError(err error) *Error {
	e := &Error{Category: Transient, Op: opFetchToken, Err: err,
		Message: "could not get an OAuth access token; nothing was sent to SAP"}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil {
			e.HTTPStatus = re.Response.StatusCode
		}
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope", "unsupported_grant_type":
			e.Category, e.Code = Permanent, re.ErrorCode
			e.Message = "the token endpoint refused the OAuth client (" + re.ErrorCode + "); nothing was sent to SAP"
		default:
			if e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusBadRequest {
				e.Category = Permanent
				e.Message = "the token endpoint refused the OAuth client; nothing was sent to SAP"
			}
		}
	}
	return c.scrub(e)
}

// LoadCAFile returns the system's trusted certificate authorities together
// with those in the PEM file at path, for Config.RootCAs: SAP systems are
// often served with certificates of a company's own CA. A file that cannot
// be read or holds no certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// describeAuth says how a Config authenticates, for String and LogValue.
func describeAuth(cfg Config) string {
	switch {
	case cfg.OAuth != nil:
		return "oauth2"
	default:
		return "basic"
	}
}
