package mcpfront_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks/ledger"
)

var benchRuns atomic.Int64

// BenchmarkSubmit measures a submit_journal_entry call end to end over
// Streamable HTTP (an official Go SDK client, JSON logs and an audit log as
// in production, spans made but not exported) against the baseline of a
// plain asynq Enqueue of the same JSON, on the same Redis in the same run.
// Figures, not assertions:
//
//	go test ./mcpfront -run '^$' -bench Submit -benchmem
func BenchmarkSubmit(b *testing.B) {
	rdb, _ := redisSrv.NewDB(b)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Redis: rdb, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.TrustRedis(ctx); err != nil {
		b.Fatal(err)
	}
	tokens, err := mcpfront.ParseTokens("alice:" + aliceToken)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := mcpfront.New(mcpfront.Options{Ledger: l, Redis: rdb, Tokens: tokens, SubmissionsPerMinute: -1,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics: prometheus.NewRegistry(), Tracer: sdktrace.NewTracerProvider()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(ctx)
	mux := http.NewServeMux()
	srv.Register(mux, "/mcp")
	hs := httptest.NewServer(mux)
	defer hs.Close()
	client := sdk.NewClient(&sdk.Implementation{Name: "sapq-bench", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint: hs.URL + "/mcp", HTTPClient: &http.Client{Transport: testutil.Bearer{Token: aliceToken, Next: http.DefaultTransport}},
		DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	run := benchRuns.Add(1)

	b.Run("baseline=asynq-Enqueue", func(b *testing.B) {
		b.ReportAllocs()
		enq := asynq.NewClientFromRedisClient(rdb)
		payload, _ := json.Marshal(journalEntry("payload"))
		for b.Loop() {
			if _, err := enq.EnqueueContext(ctx, asynq.NewTask("bench", payload), asynq.Queue("bench")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("submit_journal_entry", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "submit_journal_entry", Arguments: journalEntry(fmt.Sprintf("bench-%d-%d", run, i))})
			if err != nil || res.IsError {
				b.Fatal(err, res)
			}
		}
	})
}
