package sap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/sapq/sapq/tasks"
)

const (
	defaultSAPClient = "100"
	defaultLanguage  = "EN"
	defaultTimeout   = 30 * time.Second
	// maxBodyBytes bounds every response read: SAP answers for one document
	// are a few KB, and a misbehaving gateway must not exhaust memory.
	maxBodyBytes = 4 << 20
)

// Config configures a Client.
type Config struct {
	BaseURL string // e.g. https://my-s4.example.com; paths such as /sap/opu/odata/sap/... are appended
	Client  string // sap-client, default "100"
	// Language is sent as sap-language (default "EN"). Classification
	// falls back to SAP's message texts where a code is not in its table,
	// and those texts come in the logon language: without it, a lock
	// message in the communication user's German would be taken for a
	// data error.
	Language string
	// User is the communication user. With Basic authentication it logs
	// on; with OAuth it names the user journal entries are created by
	// (CreatedByUser), which SAP requires.
	User     string
	Password string `json:"-"` // Basic authentication; never logged, never in errors, never marshalled
	// OAuth, when set, authenticates with OAuth 2.0 client credentials
	// instead of Basic (Password must then be empty).
	OAuth *OAuth
	// RootCAs, when set, are the certificate authorities trusted for SAP's
	// and the token endpoint's TLS certificates (see LoadCAFile); nil means
	// the system's. It applies to the Client's own transport, so it cannot
	// be combined with an HTTPClient that brings a Transport.
	RootCAs *x509.CertPool
	// Timeout bounds each HTTP exchange with SAP (default 30s). It is applied
	// with context.WithTimeout on top of the caller's ctx, per request, so a
	// post that first needs a CSRF token still gets the full Timeout.
	Timeout time.Duration
	// HTTPClient is optional. The Client works on a copy: it adds a cookie jar
	// when the copy has none (the CSRF token is bound to the session cookie)
	// and turns off redirect following when CheckRedirect is nil (a redirect
	// from SAP is a logon page, never the answer to a post).
	HTTPClient *http.Client
	// MaxIdleConns is how many idle connections to SAP the client's own
	// transport keeps open for the next call (default 100): set it to the
	// most calls made at once, a worker's concurrency. Unused with an
	// HTTPClient that brings a Transport.
	MaxIdleConns int
	Logger       *slog.Logger // default slog.Default(); requests are logged at debug level
}

const redacted = "[REDACTED]"

// String describes cfg without the password, so a Config can be logged or
// printed with %v safely.
func (cfg Config) String() string {
	return fmt.Sprintf("sap.Config{BaseURL:%q Client:%q Language:%q User:%q Password:%q OAuth:%s CustomCAs:%t Timeout:%s}",
		cfg.BaseURL, cfg.Client, cfg.Language, cfg.User, redactedIf(cfg.Password), cfg.OAuth, cfg.RootCAs != nil, cfg.Timeout)
}

// GoString is String: %#v must not print the password either.
func (cfg Config) GoString() string { return cfg.String() }

// LogValue makes slog print cfg without the password.
func (cfg Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("base_url", cfg.BaseURL),
		slog.String("client", cfg.Client),
		slog.String("language", cfg.Language),
		slog.String("user", cfg.User),
		slog.String("auth", describeAuth(cfg)),
		slog.String("password", redactedIf(cfg.Password)),
		slog.Bool("custom_cas", cfg.RootCAs != nil),
		slog.Duration("timeout", cfg.Timeout),
	}
	if cfg.OAuth != nil {
		attrs = append(attrs, slog.Any("oauth", cfg.OAuth))
	}
	return slog.GroupValue(attrs...)
}

// Client talks to one SAP system. It is safe for concurrent use; share one
// per SAP system so that the CSRF token and session are shared too.
type Client struct {
	cfg     Config
	base    *url.URL
	hc      *http.Client
	log     *slog.Logger
	secrets []string // strings that must never appear in an error
	tokens  *tokens  // OAuth access tokens; nil with Basic authentication
	csrf    csrfCache
	// traced is true when the transport is net/http's, which reports
	// GotConn before it writes a request. Another transport may never report
	// it, and "no connection seen" would then wrongly prove "never sent".
	traced bool
}

// New validates cfg, fills in defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("sap: Config.BaseURL is required")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("sap: invalid Config.BaseURL: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, errors.New("sap: Config.BaseURL must be an absolute http(s) URL")
	}
	if base.User != nil {
		// Credentials in the URL would end up in error messages.
		return nil, errors.New("sap: Config.BaseURL must not contain credentials; use User and Password")
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, errors.New("sap: Config.BaseURL must not have a query or fragment")
	}
	if cfg.User == "" {
		return nil, errors.New("sap: Config.User is required")
	}
	if cfg.OAuth != nil {
		if cfg.Password != "" {
			return nil, errors.New("sap: Config.Password and Config.OAuth exclude each other")
		}
		if err := cfg.OAuth.validate(); err != nil {
			return nil, err
		}
	}
	if cfg.RootCAs != nil && cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		return nil, errors.New("sap: Config.RootCAs needs the Client's own transport; configure the HTTPClient's Transport instead")
	}
	if cfg.Client == "" {
		cfg.Client = defaultSAPClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Language == "" {
		cfg.Language = defaultLanguage
	}

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	if hc.Transport == nil {
		// A pool of its own, which CloseIdleConnections can empty without
		// touching anyone else's.
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Keep as many connections as the client's callers use at once:
		// net/http keeps two per host by default, so a worker with ten
		// postings in flight closed and dialed eight connections (with TLS,
		// eight handshakes) for every ten calls.
		if cfg.MaxIdleConns > 0 {
			t.MaxIdleConns = cfg.MaxIdleConns
		}
		t.MaxIdleConnsPerHost = t.MaxIdleConns
		if cfg.RootCAs != nil {
			t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		}
		hc.Transport = t
	}
	if hc.Jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return nil, fmt.Errorf("sap: cookie jar: %w", err)
		}
		hc.Jar = jar
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	_, stdTransport := hc.Transport.(*http.Transport)
	c := &Client{cfg: cfg, base: base, hc: &hc, log: log, traced: stdTransport}
	if cfg.Password != "" {
		c.secrets = append(c.secrets,
			cfg.Password,
			base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password)))
	}
	if cfg.OAuth != nil {
		c.secrets = append(c.secrets, cfg.OAuth.secrets()...)
		// The token endpoint is not SAP: no session cookies for it, no
		// redirects (a redirect would carry the credentials elsewhere).
		c.tokens = newTokens(cfg.OAuth, &http.Client{
			Transport:     hc.Transport,
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	return c, nil
}

// String describes c without credentials (a *Client printed with %v would
// otherwise dump its Config field by field).
// CloseIdleConnections closes the client's idle connections to SAP. A
// server in the same process as its client (sapq dev) calls it when it
// shuts down: a graceful shutdown waits up to five seconds for a connection
// that was dialed and never used.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

func (c *Client) String() string { return "sap.Client{" + c.cfg.String() + "}" }

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// call is one HTTP exchange with SAP.
type call struct {
	op     string
	method string
	path   string     // absolute path below BaseURL, e.g. /sap/opu/odata/sap/API_X/Entity
	query  url.Values // sap-client and sap-language are added by do
	header http.Header
	body   []byte
}

// reply is SAP's complete, size-bounded answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do performs one exchange. It returns a reply for every HTTP status; the
// error is a *Error for failures without a complete answer, classified by
// whether the request can have reached SAP.
//
// With OAuth, a 401 means SAP refused the access token before doing
// anything with the request (revoked, or its signing key rotated before the
// token expired): do drops the token and sends the request once more with a
// new one. A second 401 is returned as is.
func (c *Client) do(ctx context.Context, k call) (*reply, error) {
	var rejected string
	for attempt := 0; ; attempt++ {
		r, sent, err := c.exchange(ctx, k, rejected)
		if err != nil || r.status != http.StatusUnauthorized || c.tokens == nil || attempt > 0 {
			return r, err
		}
		rejected = sent
	}
}

// exchange is one HTTP round trip of do; sent is the access token it
// carried, if any.
func (c *Client) exchange(ctx context.Context, k call, rejected string) (_ *reply, sent string, _ error) {
	callerCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	// gotConn tells "never sent" from "sent, no answer": the transport hands
	// a request to a connection only after GotConn, so without it nothing
	// can have reached SAP.
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})

	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, c.url(k.path, k.query), body)
	if err != nil {
		return nil, "", c.scrub(&Error{Category: Permanent, Op: k.op, Message: "cannot build request", Err: err})
	}
	for name, vals := range k.header {
		req.Header[name] = vals
	}
	// The posting's trace goes on to SAP, whose ICM takes a W3C
	// traceparent into its own tracing.
	tasks.InjectTraceParent(ctx, propagation.HeaderCarrier(req.Header))
	if c.tokens != nil {
		tok, err := c.tokens.token(rejected)
		if err != nil {
			return nil, "", c.tokenError(err)
		}
		tok.SetAuthHeader(req)
		sent = tok.AccessToken
	} else {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	}

	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.logRequest(callerCtx, k, 0, start, err)
		return nil, sent, c.transportError(callerCtx, k.op, err, gotConn.Load() || !c.traced)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	c.logRequest(callerCtx, k, resp.StatusCode, start, err)
	if err != nil {
		// SAP answered but the answer broke off: for a post that may
		// already have committed.
		return nil, sent, c.scrub(&Error{Category: Unknown, Op: k.op, HTTPStatus: resp.StatusCode,
			Message: "response from SAP broke off", Err: err})
	}
	if len(data) > maxBodyBytes {
		return nil, sent, c.scrub(&Error{Category: Unknown, Op: k.op, HTTPStatus: resp.StatusCode,
			Message: fmt.Sprintf("response from SAP exceeds %d bytes", maxBodyBytes)})
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: data}, sent, nil
}

func (c *Client) url(path string, query url.Values) string {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("sap-client", c.cfg.Client)
	q.Set("sap-language", c.cfg.Language)
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	u.RawQuery = encodeQuery(q)
	return u.String()
}

// encodeQuery is url.Values.Encode with spaces as %20: "+" means a space only
// in HTML forms, and OData $filter expressions are full of spaces.
func encodeQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var b strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			// Keys are our own OData system options ($filter, ...): keep "$" readable.
			b.WriteString(strings.ReplaceAll(esc(k), "%24", "$"))
			b.WriteByte('=')
			b.WriteString(esc(val))
		}
	}
	return b.String()
}

// transportError classifies a failure without an HTTP response.
func (c *Client) transportError(callerCtx context.Context, op string, err error, gotConn bool) error {
	e := &Error{Op: op, Err: err}
	switch {
	case !gotConn || isDialError(err):
		// No connection was ever handed to the request: not a byte left.
		e.Category, e.Message = Transient, "request not sent: cannot connect to SAP"
	case callerCtx.Err() != nil:
		// The caller gave up; whatever state the request was in, we will not
		// learn what SAP did with it.
		e.Category, e.Message = Unknown, "call canceled; SAP may have received the request"
	case errors.Is(err, context.DeadlineExceeded):
		e.Category, e.Message = Unknown, fmt.Sprintf("no answer from SAP within %s", c.cfg.Timeout)
	default:
		e.Category, e.Message = Unknown, "connection to SAP failed after sending the request"
	}
	return c.scrub(e)
}

// isDialError reports whether err happened while connecting, that is before
// any byte of the request was written.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func (c *Client) logRequest(ctx context.Context, k call, status int, start time.Time, err error) {
	attrs := []slog.Attr{
		slog.String("op", k.op),
		slog.String("method", k.method),
		slog.String("path", k.path),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", c.scrubString(err.Error())))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "sap request", attrs...)
}

// scrub removes credentials from every text in e. SAP does not echo them,
// but a proxy or a misconfigured system might, and errors end up in logs,
// job records and user interfaces.
func (c *Client) scrub(e *Error) *Error {
	e.Message = c.scrubString(e.Message)
	e.Code = c.scrubString(e.Code)
	for i := range e.Messages {
		e.Messages[i].Text = c.scrubString(e.Messages[i].Text)
		e.Messages[i].Code = c.scrubString(e.Messages[i].Code)
	}
	if e.Err != nil && c.scrubString(e.Err.Error()) != e.Err.Error() {
		e.Err = scrubbedError{err: e.Err, text: c.scrubString(e.Err.Error())}
	}
	return e
}

func (c *Client) scrubString(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	if c.tokens != nil {
		for _, tok := range c.tokens.issued() {
			if tok != "" {
				s = strings.ReplaceAll(s, tok, redacted)
			}
		}
	}
	return s
}

// scrubbedError keeps the error chain (errors.Is/As still work) but prints
// the scrubbed text.
type scrubbedError struct {
	err  error
	text string
}

func (e scrubbedError) Error() string { return e.text }
func (e scrubbedError) Unwrap() error { return e.err }

// Ping checks that SAP answers the communication user: a GET of the
// supplier invoice service's root (its service document, a few hundred
// bytes) with the client's logon, sap-client and language. Any 2xx means
// SAP is up and the logon works; a 401 or 403 is reported as a refused
// logon, a redirect as a logon page.
func (c *Client) Ping(ctx context.Context) error {
	r, err := c.do(ctx, call{op: "ping", method: http.MethodGet, path: supplierInvoiceService,
		header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return err
	}
	switch {
	case r.status >= 200 && r.status < 300:
		return nil
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return fmt.Errorf("GET %s: HTTP %d: SAP refuses the logon of %s (check the user, its password or OAuth client, and the sap-client)", supplierInvoiceService, r.status, c.cfg.User)
	case r.status >= 300 && r.status < 400:
		return fmt.Errorf("GET %s: HTTP %d: SAP redirects (to a logon page?)", supplierInvoiceService, r.status)
	}
	return fmt.Errorf("GET %s: HTTP %d", supplierInvoiceService, r.status)
}
