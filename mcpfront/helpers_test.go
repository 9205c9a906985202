package mcpfront_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) { redistest.Main(m, &redisSrv) }

const (
	aliceToken = "alice-token-3f9a1c"
	bobToken   = "bob-token-77d2e0"

	legacyVersion = "2025-11-25"
	modernVersion = "2026-07-28"
)

// env is one server over its own Redis database, served over real HTTP.
type env struct {
	t      *testing.T
	rdb    redis.UniversalClient
	ledger *ledger.Ledger
	srv    *mcpfront.Server
	http   *httptest.Server
	url    string
	logs   *testutil.SyncBuffer
	audit  *testutil.SyncBuffer
	reg    *prometheus.Registry
}

// newEnv serves alice and bob from SAPQ_MCP_TOKENS (agents without limits).
func newEnv(t *testing.T) *env {
	t.Helper()
	tokens, err := mcpfront.ParseTokens("alice:" + aliceToken + ", bob:" + bobToken)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, mcpfront.Options{Tokens: tokens, SAP: simDestinations(t)})
}

// simDestinations is SAP for the MCP front: the simulator, which it asks
// to check dry runs and to look up postings never sent before cancelling
// them.
func simDestinations(t *testing.T) *sap.Destinations {
	t.Helper()
	hs := httptest.NewServer(sim.New(sim.Options{User: "SAPQ_COMM", Password: "secret"}))
	t.Cleanup(hs.Close)
	client, err := sap.New(sap.Config{BaseURL: hs.URL, User: "SAPQ_COMM", Password: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	destinations, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		t.Fatal(err)
	}
	return destinations
}

// newEnvWith fills in the ledger, Redis, logs, audit log and metrics of
// opts and serves it.
func newEnvWith(t *testing.T, opts mcpfront.Options) *env {
	t.Helper()
	rdb := freshDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err == nil {
		// A fresh database counts as one that lost its data; these tests
		// are not about that.
		err = l.TrustRedis(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	logs, audit := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	reg := prometheus.NewRegistry()
	opts.Ledger, opts.Redis, opts.Metrics = l, rdb, reg
	opts.Tracer = sdktrace.NewTracerProvider() // spans, and so trace IDs, without exporting them
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts.Audit = slog.New(slog.NewJSONHandler(audit, nil))
	// The listener first: in OAuth mode the server must know its own URL.
	hs := httptest.NewUnstartedServer(nil)
	if opts.OAuth != nil && opts.OAuth.Resource == "" {
		opts.OAuth.Resource = "http://" + hs.Listener.Addr().String() + "/mcp"
	}
	srv, err := mcpfront.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux, "/mcp")
	hs.Config.Handler = mux
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
	})
	return &env{t: t, rdb: rdb, ledger: l, srv: srv, http: hs, url: hs.URL + "/mcp", logs: logs, audit: audit, reg: reg}
}

func freshDB(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb, _ := redisSrv.NewDB(t)
	return rdb
}

// result is a tool result as any client saw it.
type result struct {
	IsError    bool
	Text       string
	Structured json.RawMessage
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if r.IsError {
		t.Fatalf("tool call failed: %s", r.Text)
	}
	if err := json.Unmarshal(r.Structured, v); err != nil {
		t.Fatalf("structured content %s: %v", r.Structured, err)
	}
}

// mcpClient is a real MCP client over a real transport.
type mcpClient interface {
	callErr(ctx context.Context, tool string, args any) (result, error)
	protocolVersion() string
}

// clientKind builds one flavour of client for a caller's token.
type clientKind struct {
	name    string
	version string // protocol version the client is expected to end up on
	dial    func(t *testing.T, url, token string) mcpClient
}

var clientKinds = []clientKind{
	{"go-sdk/modern", modernVersion, func(t *testing.T, url, token string) mcpClient { return dialSDK(t, url, token, "") }},
	{"go-sdk/legacy", legacyVersion, func(t *testing.T, url, token string) mcpClient { return dialSDK(t, url, token, legacyVersion) }},
	{"mcp-go/modern", modernVersion, func(t *testing.T, url, token string) mcpClient { return dialMCPGo(t, url, token, "") }},
	{"mcp-go/legacy", legacyVersion, func(t *testing.T, url, token string) mcpClient { return dialMCPGo(t, url, token, legacyVersion) }},
}

// forEachClient runs f once per client flavour, each with a fresh server.
func forEachClient(t *testing.T, f func(t *testing.T, e *env, dial func(token string) mcpClient)) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t)
			f(t, e, func(token string) mcpClient {
				c := k.dial(t, e.url, token)
				if got := c.protocolVersion(); got != k.version {
					t.Fatalf("negotiated protocol %q, want %q", got, k.version)
				}
				return c
			})
		})
	}
}

// --- official Go SDK client ---

type sdkClient struct{ cs *sdk.ClientSession }

func dialSDK(t *testing.T, url, token, version string) *sdkClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := connectSDK(ctx, url, token, version)
	if err != nil {
		t.Fatalf("go-sdk connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return &sdkClient{cs}
}

func connectSDK(ctx context.Context, url, token, version string) (*sdk.ClientSession, error) {
	c := sdk.NewClient(&sdk.Implementation{Name: "sapq-test", Version: "1"}, nil)
	return c.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: testutil.Bearer{Token: token, Next: http.DefaultTransport}},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, &sdk.ClientSessionOptions{ProtocolVersion: version})
}

func (c *sdkClient) protocolVersion() string { return c.cs.InitializeResult().ProtocolVersion }

func (c *sdkClient) callErr(ctx context.Context, tool string, args any) (result, error) {
	res, err := c.cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return result{}, err
	}
	var r result
	r.IsError = res.IsError
	for _, ct := range res.Content {
		if tc, ok := ct.(*sdk.TextContent); ok {
			r.Text += tc.Text
		}
	}
	if res.StructuredContent != nil {
		r.Structured, _ = json.Marshal(res.StructuredContent)
	}
	return r, nil
}

// call calls a tool and fails the test on a protocol error; a tool error is
// a result like any other.
func call(t *testing.T, c mcpClient, tool string, args any) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.callErr(ctx, tool, args)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return r
}

// --- mcp-go's own client ---

type mcpGoClient struct{ c *mcpgoclient.Client }

func dialMCPGo(t *testing.T, url, token, version string) *mcpGoClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mcpgoclient.NewStreamableHttpClient(url,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var init mcpgo.InitializeRequest
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcpgo.Implementation{Name: "sapq-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("mcp-go initialize: %v", err)
	}
	return &mcpGoClient{c}
}

func (c *mcpGoClient) protocolVersion() string { return c.c.ProtocolVersion() }

func (c *mcpGoClient) callErr(ctx context.Context, tool string, args any) (result, error) {
	var req mcpgo.CallToolRequest
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.c.CallTool(ctx, req)
	if err != nil {
		return result{}, err
	}
	var r result
	r.IsError = res.IsError
	for _, ct := range res.Content {
		if tc, ok := ct.(mcpgo.TextContent); ok {
			r.Text += tc.Text
		}
	}
	switch {
	case len(res.RawStructuredContent) > 0:
		r.Structured = res.RawStructuredContent
	case res.StructuredContent != nil:
		r.Structured, _ = json.Marshal(res.StructuredContent)
	}
	return r, nil
}

// --- fixtures and assertions ---

func invoice(key string) map[string]any {
	return map[string]any{
		"idempotency_key":   key,
		"company_code":      "1010",
		"supplier":          "17300001",
		"invoice_reference": "INV-2024-0042",
		"document_date":     "2024-11-05",
		"posting_date":      "2024-11-06",
		"currency":          "EUR",
		"gross_amount":      "1190.00",
		"header_text":       "Office supplies",
		"items": []any{
			map[string]any{"gl_account": "61003000", "amount": "1000.00", "tax_code": "V1", "cost_center": "10101101"},
			map[string]any{"gl_account": "61003100", "amount": "190.00"},
		},
	}
}

func journalEntry(key string) map[string]any {
	return map[string]any{
		"idempotency_key": key,
		"company_code":    "1010",
		"document_date":   "2024-11-05",
		"posting_date":    "2024-11-06",
		"currency":        "EUR",
		"items": []any{
			map[string]any{"gl_account": "61003000", "amount": "250.00", "cost_center": "10101101"},
			map[string]any{"gl_account": "11001000", "amount": "-250.00"},
		},
	}
}

type submitResult struct {
	JobID            string `json:"job_id"`
	Kind             string `json:"kind"`
	Status           string `json:"status"`
	Replayed         *bool  `json:"replayed"`
	PollAfterSeconds int    `json:"poll_after_seconds"`
}

type posting struct {
	JobID          string          `json:"job_id"`
	Kind           string          `json:"kind"`
	IdempotencyKey string          `json:"idempotency_key"`
	Status         string          `json:"status"`
	Attempts       *int            `json:"attempts"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Result         json.RawMessage `json:"result"`
	Error          json.RawMessage `json:"error"`
}

type postingList struct {
	Postings   []posting `json:"postings"`
	NextCursor *string   `json:"next_cursor"`
}

func submit(t *testing.T, c mcpClient, tool string, args any) submitResult {
	t.Helper()
	var r submitResult
	call(t, c, tool, args).decode(t, &r)
	if r.JobID == "" || r.Replayed == nil {
		t.Fatalf("incomplete submit result %+v", r)
	}
	return r
}

func list(t *testing.T, c mcpClient, args map[string]any) postingList {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	var l postingList
	call(t, c, "list_postings", args).decode(t, &l)
	if l.Postings == nil || l.NextCursor == nil {
		t.Fatalf("list_postings must send postings and next_cursor, got %+v", l)
	}
	return l
}

// wantError asserts an IsError result whose text holds every fragment.
func wantError(t *testing.T, r result, fragments ...string) {
	t.Helper()
	if !r.IsError {
		t.Fatalf("want an error result, got success: %s", r.Structured)
	}
	for _, f := range fragments {
		if !strings.Contains(r.Text, f) {
			t.Errorf("error text lacks %q:\n%s", f, r.Text)
		}
	}
}

func item(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }
