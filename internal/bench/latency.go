package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
)

// sessions is how many MCP sessions the latency scenario's calls spread over.
const sessions = 16

// latencyRun is one open-loop run at a fixed rate: each call's latency is
// measured from when it was due, not from when it was sent, so a stall
// shows in every call it delays.
type latencyRun struct {
	lat     []time.Duration
	errors  int64
	gcShare float64 // GC pause time over wall time
}

func (r latencyRun) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(int(p*float64(len(r.lat))), len(r.lat)-1)
	return r.lat[i]
}

func openLoop(ctx context.Context, rate float64, d time.Duration, call func(i int) error) latencyRun {
	n := int(rate * d.Seconds())
	every := time.Duration(float64(time.Second) / rate)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	var mu sync.Mutex
	var r latencyRun
	var errs atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		due := start.Add(time.Duration(i) * every)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			err := call(i)
			took := time.Since(due)
			if err != nil {
				errs.Add(1)
			}
			mu.Lock()
			r.lat = append(r.lat, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	wall := time.Since(start)
	runtime.ReadMemStats(&ms1)
	r.errors = errs.Load()
	r.gcShare = float64(ms1.PauseTotalNs-ms0.PauseTotalNs) / float64(wall.Nanoseconds())
	slices.Sort(r.lat)
	return r
}

// latency measures submit_journal_entry over Streamable HTTP from a real
// MCP client against a plain asynq Enqueue of the same payload, each at
// the same fixed rates.
func (e *env) latency(ctx context.Context, rates []float64, d time.Duration) (Table, error) {
	t := Table{Title: fmt.Sprintf("Submission latency at fixed rates, %s each (open loop, from when each call was due)", d),
		Columns: []string{"run", "rate/s", "calls", "p50", "p99", "p99.9", "errors", "GC pause share", "p99 vs Enqueue p99"}, BarsUnit: "p99 ms"}
	if err := e.reset(ctx, 0); err != nil {
		return t, err
	}
	l, err := e.newLedger(ctx)
	if err != nil {
		return t, err
	}
	defer l.Close()
	const token = "bench-token-0123456789"
	tokens, err := mcpfront.ParseTokens("bench:" + token)
	if err != nil {
		return t, err
	}
	front, err := mcpfront.New(mcpfront.Options{Ledger: l, Redis: e.rdb, Tokens: tokens, Logger: e.log, SubmissionsPerMinute: -1, MaxSessionsPerCaller: sessions * 2})
	if err != nil {
		return t, err
	}
	defer front.Close(context.Background())
	mux := http.NewServeMux()
	front.Register(mux, "/mcp")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return t, err
	}
	srv := mcpfront.NewHTTPServer(mux, mcpfront.HTTPLimits{})
	go srv.Serve(ln)
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 512
	// Bounded, so that calls the server is slow to answer wait for a
	// connection (their latency still counts from when they were due)
	// instead of opening one each: at 2,000/s on a saturated machine that
	// ran the process out of file descriptors (20,000) and into errors of
	// the harness's own.
	tr.MaxConnsPerHost = 512
	defer tr.CloseIdleConnections()
	client := sdk.NewClient(&sdk.Implementation{Name: "sapq-bench", Version: "1"}, nil)
	var css []*sdk.ClientSession
	for range sessions {
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
			Endpoint: "http://" + ln.Addr().String() + "/mcp", HTTPClient: &http.Client{Transport: testutil.Bearer{Token: token, Next: tr}},
			DisableStandaloneSSE: true,
		}, nil)
		if err != nil {
			return t, fmt.Errorf("bench: MCP connect: %w", err)
		}
		defer cs.Close()
		css = append(css, cs)
	}
	spec, _ := tasks.SpecOf(tasks.KindJournalEntry)
	enqueue := asynq.NewClientFromRedisClient(e.rdb)
	for ri, rate := range rates {
		run := fmt.Sprintf("lat%d-%d", ri, time.Now().UnixNano())
		mcpRun := openLoop(ctx, rate, d, func(i int) error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			res, err := css[i%len(css)].CallTool(cctx, &sdk.CallToolParams{Name: spec.Tool, Arguments: journalEntry(run, i)})
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %v", res.Content)
			}
			return err
		})
		payload := []byte(fmt.Sprintf("%+v", journalEntry(run, 0)))
		enqRun := openLoop(ctx, rate, d, func(i int) error {
			_, err := enqueue.EnqueueContext(ctx, asynq.NewTask(baselineType, payload), asynq.Queue("bench-latency"))
			return err
		})
		for _, r := range []struct {
			name string
			r    latencyRun
		}{{"sapq " + spec.Tool + " (MCP, Streamable HTTP)", mcpRun}, {"asynq Enqueue", enqRun}} {
			t.Rows = append(t.Rows, []string{r.name, num(rate), fmt.Sprint(len(r.r.lat)), ms(r.r.pct(0.5)), ms(r.r.pct(0.99)), ms(r.r.pct(0.999)),
				fmt.Sprint(r.r.errors), fmt.Sprintf("%.2f%%", 100*r.r.gcShare), ratio(float64(r.r.pct(0.99)), float64(enqRun.pct(0.99)))})
			t.Bars = append(t.Bars, Bar{fmt.Sprintf("%s @%s/s", short(r.name), num(rate)), float64(r.r.pct(0.99)) / float64(time.Millisecond)})
		}
		t.Notes = append(t.Notes, fmt.Sprintf("At %s/s, target p99 within 5x the Enqueue p99: %s.", num(rate), verdict(mcpRun.pct(0.99) <= 5*enqRun.pct(0.99))))
	}
	t.Notes = append(t.Notes, fmt.Sprintf("GOGC=%q GOMEMLIMIT=%q (empty: Go's defaults, 100 and no limit). The MCP server, its client and Redis's client share this process; no worker runs.", os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT")))
	return t, nil
}

func short(name string) string {
	if len(name) > 4 && name[:4] == "sapq" {
		return "sapq submit (MCP)"
	}
	return name
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
