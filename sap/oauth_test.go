package sap

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID     = "sapq-comm-arrangement"
	testClientSecret = "cl1ent-S3cret/with+chars=="
)

// tokenServer plays the OAuth 2.0 token endpoint of a communication
// arrangement: client credentials in, bearer tokens out.
type tokenServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	expiresIn int // seconds in the answer; 0 leaves expires_in out
	seq       int
	requests  int             // token requests, refused ones included
	live      map[string]bool // issued and not revoked
	// refuse, when set, answers every token request with this status and
	// body instead.
	refuseStatus int
	refuseBody   string
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ts := &tokenServer{expiresIn: 3600, live: map[string]bool{}}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.requests++
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
		return
	}
	if ts.refuseStatus != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ts.refuseStatus)
		fmt.Fprint(w, ts.refuseBody)
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: both parts are form-encoded inside the header.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != testClientID || secret != testClientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"Bad credentials"}`)
		return
	}
	ts.seq++
	tok := fmt.Sprintf("access-token-%d", ts.seq)
	ts.live[tok] = true
	w.Header().Set("Content-Type", "application/json")
	if ts.expiresIn > 0 {
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%d,"scope":"uaa.resource"}`, tok, ts.expiresIn)
	} else {
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer"}`, tok)
	}
}

func (ts *tokenServer) valid(tok string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.live[tok]
}

// revokeAll invalidates every token issued so far, before its expiry.
func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.live = map[string]bool{}
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests
}

func (ts *tokenServer) set(fn func(ts *tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	fn(ts)
}

// newOAuthSAP returns a fake SAP that takes bearer tokens from a token
// endpoint of its own, and a client for it.
func newOAuthSAP(t *testing.T, tweak ...func(*Config)) (*fakeSAP, *tokenServer, *Client) {
	t.Helper()
	f := newFakeSAP(t)
	ts := newTokenServer(t)
	f.tokens = ts
	c := f.client(append([]func(*Config){func(cfg *Config) {
		cfg.Password = ""
		cfg.OAuth = &OAuth{TokenURL: ts.srv.URL + "/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret}
	}}, tweak...)...)
	return f, ts, c
}

func (f *fakeSAP) unauthorizedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unauthorized
}

func TestOAuthPostsWithCachedTokenCSRFAndCookies(t *testing.T) {
	f, ts, c := newOAuthSAP(t)
	f.invoice = created("5105600001", "2026", "1010")
	f.soap = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeXML(w, http.StatusOK, soapConfirmation("0100000001", "1010", "2026", "1",
			logItem{"605(RW)", "1", "Document posted successfully"}))
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.PostSupplierInvoice(ctx, testInvoice()); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if _, err := c.PostJournalEntry(ctx, testJournalEntry()); err != nil {
		t.Fatal(err)
	}
	// One token for everything: it is valid for an hour.
	if n := ts.count(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	// The CSRF token is bound to the session cookie: one fetch means the
	// jar kept the cookie and the posts carried it with the token.
	fetches, rejects, posts := f.counts()
	if fetches != 1 || rejects != 0 || posts != 3 {
		t.Errorf("fetches %d, CSRF rejects %d, posts %d; want 1, 0, 3", fetches, rejects, posts)
	}
	if n := f.unauthorizedCount(); n != 0 {
		t.Errorf("%d requests answered 401", n)
	}
}

// A token SAP refuses before it expires (revoked, signing key rotated) is
// dropped and the request sent once more with a new one: SAP refused the
// first before doing anything with it, so the post reaches SAP once.
func TestOAuthRevokedTokenIsReplacedOnce(t *testing.T) {
	f, ts, c := newOAuthSAP(t)
	f.invoice = created("5105600001", "2026", "1010")
	var soapPosts int
	f.soap = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		soapPosts++
		writeXML(w, http.StatusOK, soapConfirmation("0100000001", "1010", "2026", "1"))
	}
	ctx := context.Background()
	if _, err := c.PostSupplierInvoice(ctx, testInvoice()); err != nil {
		t.Fatal(err)
	}
	ts.revokeAll()
	if _, err := c.PostSupplierInvoice(ctx, testInvoice()); err != nil {
		t.Fatalf("post after revocation: %v", err)
	}
	ts.revokeAll()
	if _, err := c.PostJournalEntry(ctx, testJournalEntry()); err != nil {
		t.Fatalf("SOAP post after revocation: %v", err)
	}
	if _, _, posts := f.counts(); posts != 2 || soapPosts != 1 {
		t.Errorf("SAP processed %d OData and %d SOAP posts, want 2 and 1", posts, soapPosts)
	}
	if n := ts.count(); n != 3 {
		t.Errorf("%d token requests, want 3 (one at first, one after each revocation)", n)
	}
	if n := f.unauthorizedCount(); n != 2 {
		t.Errorf("%d requests answered 401, want 2", n)
	}
}

// A token that is about to expire is replaced before a call sets out with
// it, and a token with no stated lifetime is kept until SAP refuses it.
func TestOAuthTokenRefreshedBeforeExpiry(t *testing.T) {
	f, ts, c := newOAuthSAP(t)
	f.invoice = created("5105600001", "2026", "1010")
	ts.set(func(ts *tokenServer) { ts.expiresIn = int((tokenRefreshEarly - time.Second) / time.Second) })
	ctx := context.Background()
	for i := range 2 {
		if _, err := c.PostSupplierInvoice(ctx, testInvoice()); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	// Three calls (CSRF fetch, two posts), each with a token of its own:
	// none was valid for long enough to be reused.
	if n := ts.count(); n != 3 {
		t.Errorf("%d token requests, want 3", n)
	}
	if n := f.unauthorizedCount(); n != 0 {
		t.Errorf("%d requests answered 401", n)
	}

	f2, ts2, c2 := newOAuthSAP(t)
	f2.invoice = created("5105600001", "2026", "1010")
	ts2.set(func(ts *tokenServer) { ts.expiresIn = 0 })
	for range 2 {
		if _, err := c2.PostSupplierInvoice(ctx, testInvoice()); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts2.count(); n != 1 {
		t.Errorf("token without expires_in: %d token requests, want 1", n)
	}
}

func TestOAuthFailures(t *testing.T) {
	ctx := context.Background()

	t.Run("SAP refusing the new token too is permanent, after one retry", func(t *testing.T) {
		f, ts, c := newOAuthSAP(t)
		f.soap = func(w http.ResponseWriter, r *http.Request, _ []byte) { t.Error("SAP processed the post") }
		f.tokens = &tokenServer{live: map[string]bool{}} // SAP trusts no token of that endpoint
		_, err := c.PostJournalEntry(ctx, testJournalEntry())
		assertError(t, err, Permanent, http.StatusUnauthorized, "")
		if n, m := ts.count(), f.unauthorizedCount(); n != 2 || m != 2 {
			t.Errorf("%d token requests, %d refused calls; want 2 and 2", n, m)
		}
	})

	t.Run("a refused client is permanent and nothing reaches SAP", func(t *testing.T) {
		f, ts, c := newOAuthSAP(t, func(cfg *Config) { cfg.OAuth.ClientSecret = "wrong-" + testClientSecret })
		// A careless endpoint echoes what it got.
		ts.set(func(ts *tokenServer) {
			ts.refuseStatus = http.StatusUnauthorized
			ts.refuseBody = `{"error":"invalid_client","error_description":"Bad credentials for wrong-` + testClientSecret + `"}`
		})
		_, err := c.PostSupplierInvoice(ctx, testInvoice())
		e := assertError(t, err, Permanent, http.StatusUnauthorized, "invalid_client")
		if e.Op != opFetchToken || !strings.Contains(e.Message, "nothing was sent") {
			t.Errorf("Op %q, message %q", e.Op, e.Message)
		}
		if strings.Contains(err.Error(), testClientSecret) {
			t.Errorf("error shows the secret: %v", err)
		}
		if fetches, _, posts := f.counts(); fetches+posts != 0 {
			t.Errorf("SAP was called %d times", fetches+posts)
		}
	})

	t.Run("a token endpoint that is down is transient", func(t *testing.T) {
		f, ts, c := newOAuthSAP(t)
		ts.set(func(ts *tokenServer) { ts.refuseStatus, ts.refuseBody = http.StatusServiceUnavailable, "maintenance" })
		_, err := c.PostJournalEntry(ctx, testJournalEntry())
		e := assertError(t, err, Transient, http.StatusServiceUnavailable, "")
		if e.Op != opFetchToken {
			t.Errorf("Op = %q", e.Op)
		}
		if fetches, _, posts := f.counts(); fetches+posts != 0 {
			t.Errorf("SAP was called %d times", fetches+posts)
		}
	})

	t.Run("a token endpoint that cannot be reached is transient", func(t *testing.T) {
		_, ts, c := newOAuthSAP(t)
		ts.srv.Close()
		_, err := c.FindSupplierInvoice(ctx, "1010", "SQ-000042")
		assertError(t, err, Transient, 0, "")
	})
}

func TestOAuthSecretsNeverLeak(t *testing.T) {
	o := &OAuth{TokenURL: "https://auth.example.com/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret}
	cfg := Config{BaseURL: "https://s4.example.com", User: testUser, OAuth: o}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "cfg", cfg, "oauth", o)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"oauth":  fmt.Sprintf("%v %+v %#v %s", o, o, o, o),
		"client": fmt.Sprintf("%+v %#v", c, c),
		"slog":   logBuf.String(),
		"json":   mustJSON(t, cfg),
	} {
		if strings.Contains(s, testClientSecret) {
			t.Errorf("%s prints the client secret: %s", name, s)
		}
		if !strings.Contains(s, testClientID) {
			t.Errorf("%s lost the client ID: %s", name, s)
		}
	}

	// SAP echoes the Authorization header (with the access token) and the
	// token endpoint's Basic header form of the secret in an error.
	f, _, oc := newOAuthSAP(t)
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(testClientID) + ":" + url.QueryEscape(testClientSecret)))
	f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, http.StatusBadRequest, v2Error("ZZ/001", "header "+r.Header.Get("Authorization")+" basic "+basic+" secret "+testClientSecret))
	}
	var out bytes.Buffer
	oc.log = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err = oc.PostSupplierInvoice(context.Background(), testInvoice())
	e := assertError(t, err, Permanent, http.StatusBadRequest, "ZZ/001")
	all := err.Error() + fmt.Sprintf("%+v", e.Messages) + out.String()
	for _, secret := range []string{testClientSecret, basic, "access-token-"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q in error or log: %s", secret, all)
		}
	}
}

func TestOAuthConfigChecked(t *testing.T) {
	good := func() *OAuth {
		return &OAuth{TokenURL: "https://auth.example.com/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret}
	}
	for name, tweak := range map[string]func(*Config){
		"password too":       func(c *Config) { c.Password = testPassword },
		"no token URL":       func(c *Config) { c.OAuth.TokenURL = "" },
		"relative token URL": func(c *Config) { c.OAuth.TokenURL = "/oauth/token" },
		"credentials in URL": func(c *Config) { c.OAuth.TokenURL = "https://id:" + testClientSecret + "@auth.example.com/t" },
		"no client ID":       func(c *Config) { c.OAuth.ClientID = "" },
		"no client secret":   func(c *Config) { c.OAuth.ClientSecret = "" },
		"CAs with own transport": func(c *Config) {
			c.HTTPClient = &http.Client{Transport: http.DefaultTransport}
			c.RootCAs = mustPool(t)
		},
	} {
		cfg := Config{BaseURL: "https://s4.example.com", User: testUser, OAuth: good()}
		tweak(&cfg)
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if strings.Contains(err.Error(), testClientSecret) || strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
}
