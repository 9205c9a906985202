package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/child"
	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/tasks"
)

// The latency scenario's calls come from a process of their own (`sapq
// bench load`, Load), so that the client's CPU and garbage (the Go SDK
// allocates about three times per call what the server does) land in
// another process than the server measured, and the Enqueue baseline's
// calls come from the same kind of process.

// loadTokenEnv carries the MCP bearer token to the load process: secrets
// travel in env, never in args.
const loadTokenEnv = "SAPQ_BENCH_TOKEN"

// loadResult is what a load process writes to its --out file.
type loadResult struct {
	Latencies []time.Duration `json:"latencies_ns"` // sorted
	Errors    int64           `json:"errors"`
	CPU       time.Duration   `json:"cpu_ns"` // the load process's own, over its life
	FirstErr  string          `json:"first_error,omitempty"`
}

// Load is the load process: an open loop at --rate for --duration of
// submit_journal_entry calls over Streamable HTTP to --mcp-url, or of
// plain asynq Enqueues to --redis-url.
func Load(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("bench load", flag.ContinueOnError)
	mcpURL := fs.String("mcp-url", "", "the MCP endpoint to call submit_journal_entry on (token in "+loadTokenEnv+")")
	redisURL := fs.String("redis-url", "", "the Redis to Enqueue plain asynq tasks to, instead")
	rate := fs.Float64("rate", 500, "calls per second")
	d := fs.Duration("duration", 10*time.Second, "how long the rate is held")
	run := fs.String("run", "", "the run's name, part of every idempotency key")
	out := fs.String("out", "", "file to write the latencies to (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*mcpURL == "") == (*redisURL == "") || *out == "" || *rate <= 0 || *d <= 0 {
		return fmt.Errorf("bench load: one of --mcp-url and --redis-url, --out, and a positive --rate and --duration")
	}
	call, stop, err := loadCall(ctx, *mcpURL, *redisURL, *run)
	if err != nil {
		return err
	}
	defer stop()
	r := openLoop(ctx, *rate, *d, call)
	res := loadResult{Latencies: r.lat, Errors: r.errors}
	res.CPU, _ = processCPU()
	if r.firstErr != nil {
		res.FirstErr = r.firstErr.Error()
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o600)
}

// loadCall is one call of the load: submit_journal_entry on one of
// sessions MCP sessions, or an Enqueue of the same posting's JSON.
func loadCall(ctx context.Context, mcpURL, redisURL, run string) (call func(i int) error, stop func(), err error) {
	if redisURL != "" {
		ro, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, err
		}
		ro.PoolSize = 512
		rdb := redis.NewClient(ro)
		enqueue := asynq.NewClientFromRedisClient(rdb)
		payload, _ := json.Marshal(journalEntry(run, 0))
		return func(int) error {
			_, err := enqueue.EnqueueContext(ctx, asynq.NewTask(baselineType, payload), asynq.Queue("bench-latency"))
			return err
		}, func() { rdb.Close() }, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 512
	// Bounded, so that calls the server is slow to answer wait for a
	// connection (their latency still counts from when they were due)
	// instead of opening one each: at 2,000/s on a saturated machine that
	// ran the process out of file descriptors.
	tr.MaxConnsPerHost = 512
	client := sdk.NewClient(&sdk.Implementation{Name: "sapq-bench", Version: "1"}, nil)
	var css []*sdk.ClientSession
	stop = func() {
		for _, cs := range css {
			cs.Close()
		}
		tr.CloseIdleConnections()
	}
	for range sessions {
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
			Endpoint: mcpURL, HTTPClient: &http.Client{Transport: testutil.Bearer{Token: os.Getenv(loadTokenEnv), Next: tr}},
			DisableStandaloneSSE: true,
		}, nil)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("bench load: MCP connect: %w", err)
		}
		css = append(css, cs)
	}
	spec, _ := tasks.SpecOf(tasks.KindJournalEntry)
	return func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := css[i%len(css)].CallTool(cctx, &sdk.CallToolParams{Name: spec.Tool, Arguments: journalEntry(run, i)})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %v", res.Content)
		}
		return err
	}, stop, nil
}

// runLoad runs one load process to its end and reads its result.
func runLoad(ctx context.Context, o Options, name string, env []string, args ...string) (loadResult, error) {
	var res loadResult
	out := filepath.Join(o.logDir, name+".json")
	p, err := child.Start(name, filepath.Join(o.logDir, name+".log"), o.Binary, append([]string{"bench", "load", "--out", out}, args...), env)
	if err != nil {
		return res, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Kill()
		return res, ctx.Err()
	}
	if err := p.Err(); err != nil {
		return res, fmt.Errorf("bench: %s: %w (log: %s)", name, err, p.Log)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(b, &res)
}

func rateArg(rate float64) string { return strconv.FormatFloat(rate, 'f', -1, 64) }
