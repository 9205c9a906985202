package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/server"
)

// OAuthOptions configure the OAuth 2.0 resource-server mode: sapq accepts
// JWT access tokens that an authorization server issued for it, verifying
// them against the issuer's JWKS (github.com/golang-jwt/jwt and
// github.com/MicahParks/keyfunc, which caches and refreshes the key set).
type OAuthOptions struct {
	// Issuer is the authorization server's issuer identifier; a token's
	// iss must equal it. Required.
	Issuer string
	// Resource is this MCP server's URL as clients address it, such as
	// https://sapq.example.com/mcp. A token's aud must contain it (RFC 8707
	// resource indicators, as MCP requires), and it is the resource of the
	// protected-resource metadata. Required.
	Resource string
	// JWKSURL is where the issuer publishes its signing keys. Required.
	JWKSURL string
	// HTTPClient fetches the key set. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Leeway tolerates clock skew in exp, nbf and iat. Default 30s.
	Leeway time.Duration
}

// signingMethods are the asymmetric algorithms accepted; "none" and the
// HMAC ones never are (an HMAC key would be a shared secret).
var signingMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type oauthVerifier struct {
	opts            OAuthOptions
	keys            keyfunc.Keyfunc
	parser          *jwt.Parser
	cancel          context.CancelFunc
	metadataPath    string
	metadataURL     string
	metadataHandler http.Handler
}

func newOAuthVerifier(o OAuthOptions) (*oauthVerifier, error) {
	if o.Issuer == "" || o.Resource == "" || o.JWKSURL == "" {
		return nil, errors.New("mcpfront: OAuth needs an issuer, the resource (this server's URL) and the issuer's JWKS URL")
	}
	res, err := url.Parse(o.Resource)
	if err != nil || (res.Scheme != "https" && res.Scheme != "http") || res.Host == "" || res.Fragment != "" {
		return nil, fmt.Errorf("mcpfront: OAuth resource %q must be this server's absolute URL, such as https://sapq.example.com/mcp", o.Resource)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Leeway <= 0 {
		o.Leeway = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{Client: o.HTTPClient})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mcpfront: OAuth key set %s: %w", o.JWKSURL, err)
	}
	path := server.ProtectedResourceMetadataPath(o.Resource)
	scopes := make([]string, len(Scopes))
	for i, sc := range Scopes {
		scopes[i] = string(sc)
	}
	return &oauthVerifier{
		opts: o,
		keys: keys,
		parser: jwt.NewParser(
			jwt.WithIssuer(o.Issuer),
			jwt.WithAudience(o.Resource),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(o.Leeway),
			jwt.WithValidMethods(signingMethods),
		),
		cancel:       cancel,
		metadataPath: path,
		metadataURL:  res.Scheme + "://" + res.Host + path,
		metadataHandler: server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
			Resource:               o.Resource,
			AuthorizationServers:   []string{o.Issuer},
			ScopesSupported:        scopes,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "sapq",
		}),
	}, nil
}

func (v *oauthVerifier) close() { v.cancel() }

// accessClaims are the claims sapq reads from an access token. Scopes come
// as a space-separated "scope" (RFC 9068) or as an "scp" list (Entra ID,
// Okta).
type accessClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
	Scp   any    `json:"scp,omitempty"`
}

func (c *accessClaims) scopes() []Scope {
	var raw []string
	raw = append(raw, strings.Fields(c.Scope)...)
	switch s := c.Scp.(type) {
	case string:
		raw = append(raw, strings.Fields(s)...)
	case []any:
		for _, v := range s {
			if str, ok := v.(string); ok {
				raw = append(raw, str)
			}
		}
	}
	var out []Scope
	for _, r := range raw {
		if sc := Scope(r); slices.Contains(Scopes, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// accessDenied is a valid token that may not do what it asks (403).
type accessDenied struct {
	caller, reason string
	need           []Scope
}

func (d *accessDenied) Error() string { return d.reason }

// verify checks an access token and returns its caller. A subject listed
// in the callers file acts as that caller, with the token's scopes within
// its role's; when a callers file is in use, an unlisted subject is refused.
// Without one, the subject acts as "oauth:<sub>", an agent or operator by
// its scopes, without policy limits.
func (v *oauthVerifier) verify(ctx context.Context, raw string, file *Callers) (*Caller, error) {
	var claims accessClaims
	_, err := v.parser.ParseWithClaims(raw, &claims, v.keys.KeyfuncCtx(ctx))
	if err != nil {
		return nil, errors.New(tokenProblem(err))
	}
	if claims.Subject == "" || len(claims.Subject) > 255 || !printable(claims.Subject) {
		return nil, errors.New("the token has no usable subject (sub)")
	}
	granted := claims.scopes()
	if len(granted) == 0 {
		return nil, &accessDenied{caller: claims.Subject, reason: "the token grants none of sapq's scopes", need: []Scope{ScopeWrite, ScopeRead}}
	}
	if file != nil {
		listed, ok := file.BySubject(claims.Subject)
		if !ok {
			return nil, &accessDenied{caller: claims.Subject, reason: "the token's subject is not registered in sapq's callers file"}
		}
		c := *listed
		c.Scopes = nil
		for _, sc := range granted {
			if slices.Contains(listed.Scopes, sc) {
				c.Scopes = append(c.Scopes, sc)
			}
		}
		if len(c.Scopes) == 0 {
			return nil, &accessDenied{caller: c.Name, reason: fmt.Sprintf("none of the token's scopes is open to the role %s", c.Role)}
		}
		c.Via = "oauth"
		return &c, nil
	}
	role := RoleAgent
	if slices.Contains(granted, ScopeOperate) {
		role = RoleOperator
	}
	return &Caller{Name: "oauth:" + claims.Subject, Role: role, Scopes: granted, Via: "oauth"}, nil
}

// tokenProblem says what is wrong with a token, for error_description:
// enough for the client to act (refresh, ask for the right audience), and
// nothing about sapq's keys.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token was issued by another issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is for another audience (resource)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature does not verify"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token is invalid"
}

// looksLikeJWT reports whether a bearer token has a JWS compact form's three
// parts, so that static tokens are not parsed as JWTs.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }
