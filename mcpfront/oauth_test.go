package mcpfront_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/mcpfront"
)

// issuer is a local OAuth authorization server as far as a resource server
// sees one: a JWKS endpoint and a key that signs access tokens.
type issuer struct {
	url string
	key *ecdsa.PrivateKey
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "test-key-1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	set := jwkset.NewMemoryStorage()
	if err := set.KeyWrite(context.Background(), jwk); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := set.JSONPublic(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return &issuer{url: srv.URL, key: key}
}

type tokenSpec struct {
	iss, sub, scope string
	aud             []string
	exp             time.Duration
}

func (is *issuer) sign(t *testing.T, resource string, spec tokenSpec) string {
	t.Helper()
	if spec.iss == "" {
		spec.iss = is.url
	}
	if spec.aud == nil {
		spec.aud = []string{resource}
	}
	if spec.exp == 0 {
		spec.exp = 5 * time.Minute
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": spec.iss, "sub": spec.sub, "aud": spec.aud, "scope": spec.scope,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(spec.exp).Unix(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "test-key-1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oauthEnv(t *testing.T, callers *mcpfront.Callers) (*env, *issuer) {
	t.Helper()
	is := startIssuer(t)
	e := newEnvWith(t, mcpfront.Options{Callers: callers, OAuth: &mcpfront.OAuthOptions{Issuer: is.url, JWKSURL: is.url}})
	return e, is
}

func TestOAuthAccessTokens(t *testing.T) {
	e, is := oauthEnv(t, nil)
	full := is.sign(t, e.url, tokenSpec{sub: "agent-7", scope: "openid postings:write postings:read"})

	// Real clients of every flavour post with a valid token.
	for _, k := range clientKinds {
		c := k.dial(t, e.url, full)
		job := submit(t, c, "submit_journal_entry", journalEntry("oauth-"+k.name))
		if _, err := e.ledger.Get(context.Background(), "oauth:agent-7", job.JobID); err != nil {
			t.Fatalf("%s: job not recorded for oauth:agent-7: %v", k.name, err)
		}
	}

	metadata := e.http.URL + "/.well-known/oauth-protected-resource/mcp"
	for name, tc := range map[string]struct {
		token  string
		status int
		want   string
	}{
		"missing":        {"", 401, ""},
		"expired":        {is.sign(t, e.url, tokenSpec{sub: "a", scope: "postings:read", exp: -2 * time.Minute}), 401, "the token has expired"},
		"wrong issuer":   {is.sign(t, e.url, tokenSpec{iss: "https://other.example", sub: "a", scope: "postings:read"}), 401, "another issuer"},
		"wrong audience": {is.sign(t, e.url, tokenSpec{aud: []string{"https://other.example/mcp"}, sub: "a", scope: "postings:read"}), 401, "another audience"},
		"no subject":     {is.sign(t, e.url, tokenSpec{scope: "postings:read"}), 401, "no usable subject"},
		"forged":         {forged(t, e.url, is.url), 401, "signature does not verify"},
		"hmac":           {hmacToken(t, e.url, is.url), 401, "signature does not verify"},
		"no sapq scope":  {is.sign(t, e.url, tokenSpec{sub: "a", scope: "openid profile"}), 403, "none of sapq's scopes"},
		"garbage":        {"a.b.c", 401, "malformed"},
	} {
		resp := postWith(t, e.url, tc.token, initialize, nil)
		io.Copy(io.Discard, resp.Body)
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.status)
		}
		if !strings.Contains(challenge, `resource_metadata="`+metadata+`"`) || !strings.Contains(challenge, tc.want) {
			t.Errorf("%s: WWW-Authenticate %q lacks resource_metadata or %q", name, challenge, tc.want)
		}
		if tc.status == 403 && !strings.Contains(challenge, `error="insufficient_scope"`) {
			t.Errorf("%s: %q", name, challenge)
		}
	}

	// RFC 9728 metadata, without authentication.
	resp, err := http.Get(metadata)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || md.Resource != e.url || !slices.Equal(md.AuthorizationServers, []string{is.url}) ||
		!slices.Equal(md.ScopesSupported, []string{"postings:write", "postings:read", "postings:operate"}) {
		t.Fatalf("metadata %+v %v", md, err)
	}
}

// A token with postings:read only sees the read tools; a call to a write
// tool is answered 403 insufficient_scope naming the scope, so that the
// client can ask for it.
func TestOAuthScopesSelectTools(t *testing.T) {
	e, is := oauthEnv(t, nil)
	read := is.sign(t, e.url, tokenSpec{sub: "reader", scope: "postings:read"})
	c := dialMCPGo(t, e.url, read, legacyVersion)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.c.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"get_posting", "list_postings"}) {
		t.Fatalf("read-only token sees %v", names)
	}
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"submit_journal_entry","arguments":{}}}`
	r := postWith(t, e.url, read, body, nil)
	if r.StatusCode != 403 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="postings:write"`) {
		t.Fatalf("write call with a read token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if _, err := c.callErr(ctx, "submit_journal_entry", journalEntry("ro-1")); err == nil {
		t.Fatal("a read-only token submitted")
	}
}

// With a callers file, a token's subject must be registered there: it acts
// as that caller with its role's scopes and policy; others are refused.
func TestOAuthSubjectsFromTheCallersFile(t *testing.T) {
	callers, err := mcpfront.ParseCallers([]byte(`{"callers":[
	  {"name":"ap-bot","subject":"client-42","role":"agent","policy":{"company_codes":["1010"]}}]}`), "c")
	if err != nil {
		t.Fatal(err)
	}
	e, is := oauthEnv(t, callers)
	tok := is.sign(t, e.url, tokenSpec{sub: "client-42", scope: "postings:write postings:read postings:operate"})
	c := dialSDK(t, e.url, tok, "")
	job := submit(t, c, "submit_journal_entry", journalEntry("sub-1"))
	if _, err := e.ledger.Get(context.Background(), "ap-bot", job.JobID); err != nil {
		t.Fatalf("job not recorded for ap-bot: %v", err)
	}
	other := journalEntry("sub-2")
	other["company_code"] = "1710"
	wantError(t, call(t, c, "submit_journal_entry", other), "policy_violation", "rule allowed_company_codes")
	recs := auditRecords(t, e)
	if len(recs) == 0 || recs[0].Caller != "ap-bot" || recs[0].Via != "oauth" {
		t.Fatalf("audit %+v", recs)
	}
	stranger := is.sign(t, e.url, tokenSpec{sub: "client-99", scope: "postings:write"})
	resp := postWith(t, e.url, stranger, initialize, nil)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "not registered") {
		t.Fatalf("unregistered subject: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// forged is a well-formed token signed by a key the issuer never published.
func forged(t *testing.T, resource, iss string) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "sub": "x", "aud": resource, "scope": "postings:write", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "test-key-1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hmacToken is signed with a shared secret: never accepted.
func hmacToken(t *testing.T, resource, iss string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "sub": "x", "aud": resource, "scope": "postings:write", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "test-key-1"
	s, err := tok.SignedString([]byte("guessable"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
