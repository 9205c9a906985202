package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/worker"
)

// devCaller is the identity of the token sapq dev prints.
const devCaller = "dev"

// runDev starts every piece in one process on one listener: an embedded
// Redis (unless --redis-url is given), the SAP simulator under /sap and
// /sim, a worker posting to it, MCP at /mcp, the console at /console/ and
// the Asynq UI at /ui/ behind a login with the same token, /metrics and
// /healthz.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address for everything")
	token := fs.String("token", "", "bearer token for MCP and the UI (a development convenience; random when empty)")
	redisURL := fs.String("redis-url", "", "use this Redis instead of the embedded one: "+redisURLForms)
	faults := fs.String("faults", "", `initial simulator faults as JSON, e.g. {"fail_rate":0.1,"ambiguous_rate":0.05}`)
	redisUnsafe := fs.Bool("redis-unsafe", false, "with --redis-url: allow a Redis that may evict keys or keeps nothing on disk")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	if *token == "" {
		*token = randomHex(16)
	}
	// The simulator's password is SAPQ_SAP_PASSWORD (or _FILE), so that its
	// OData and SOAP endpoints can be explored with curl; when unset it is
	// random and the worker's secret alone. It is never printed.
	simPassword, err := secret("SAP_PASSWORD")
	if err != nil {
		return err
	}
	if simPassword == "" {
		simPassword = randomHex(16)
	}

	// The embedded Redis keeps everything in this process's memory: it is
	// as durable as the process, which is the point of a development setup.
	unsafe := *redisURL == "" || *redisUnsafe
	var target redisTarget
	// jobsRedis is what `sapq jobs` needs to read this Redis.
	jobsRedis := "--redis-url " + redactURL(*redisURL)
	if *redisUnsafe {
		jobsRedis += " --redis-unsafe"
	}
	if *redisURL == "" {
		mr := miniredis.NewMiniRedis()
		// Without ClockTTL, miniredis never expires keys: asynq's leases,
		// unique locks and the ledger's retention would never end.
		mr.ClockTTL(true)
		if err := mr.Start(); err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		defer mr.Close()
		target.single = &redis.Options{Addr: mr.Addr()}
		jobsRedis = "--redis-url redis://" + mr.Addr() + "/0 --redis-unsafe"
	} else {
		var err error
		if target, err = redisTargetOf(*redisURL); err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
	}
	rdb, err := connectRedis(ctx, target, unsafe, log)
	if err != nil {
		return err
	}
	defer rdb.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()

	simOpts := sim.Options{User: "SAPQ_COMM", Password: simPassword, Logger: log}
	if *faults != "" {
		if err := json.Unmarshal([]byte(*faults), &simOpts.Faults); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
		if err := simOpts.Faults.Validate(); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
	}
	simulator := sim.New(simOpts)
	// The simulator runs in this process and answers at once unless told to
	// be slow: a short timeout keeps the waits after an unknown outcome short.
	const sapTimeout, settle = 5 * time.Second, 8 * time.Second
	sapClient, err := sap.New(sap.Config{BaseURL: base, User: "SAPQ_COMM", Password: simPassword, Timeout: sapTimeout, Logger: log})
	if err != nil {
		return err
	}
	destinations, err := sap.SingleDestination(tasks.DefaultDestination, sapClient)
	if err != nil {
		return err
	}

	tracer, stopTracing, err := newTracing(ctx, "dev")
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := newRegistry()
	l, err := ledger.New(ledger.Options{Redis: rdb, Logger: log, Settle: settle})
	if err != nil {
		return err
	}
	defer l.Close()
	w, err := worker.New(worker.Options{
		Redis: rdb, Ledger: l, SAP: destinations,
		SAPTimeout: sapTimeout, PollInterval: 200 * time.Millisecond,
		Retry: worker.RetryPolicy{Initial: time.Second, Max: time.Minute}, Logger: log, Metrics: reg, Tracer: tracer,
	})
	if err != nil {
		return err
	}
	tokens, err := mcpfront.ParseTokens(devCaller + ":" + *token)
	if err != nil {
		return err
	}
	front, err := mcpfront.New(mcpfront.Options{Ledger: l, Redis: rdb, Tokens: tokens, SAP: destinations, Logger: log, Audit: log.With("audit", true), Metrics: reg, Tracer: tracer})
	if err != nil {
		return err
	}
	uiRedis := target.connOpt()
	if *redisURL == "" {
		uiRedis = embeddedRedisOpt{opt: uiRedis.(asynq.RedisClientOpt), started: time.Now()}
	}
	ui := newUI(uiRedis, false, l, tasks.DefaultDestination)
	defer ui.Close()
	// The console takes the dev token as its shared UI token: it may
	// reprocess and discard, and approves nothing (dev has no operators).
	console, err := newConsole(consoleOptions{
		Ledger: l, Redis: rdb, Auth: operatorAuth{token: *token}, Queues: ui,
		SAP: oneSAPSystem(sap.Config{BaseURL: base, User: "SAPQ_COMM"}), Log: log, Audit: log.With("audit", true),
	})
	if err != nil {
		return err
	}
	defer console.Shutdown()

	var ready readiness
	ready.add("redis", pingRedis(rdb))
	ready.add("sap", sapReady(destinations, sapTimeout))
	mux := opsMux(reg, &ready)
	mux.Handle("/sap/", simulator)
	var simControl http.Handler = simulator
	if !isLoopback(ln.Addr()) {
		// Anyone who can reach the listener could change the faults.
		simControl = requireToken(*token, simulator)
	}
	mux.Handle("/sim/", simControl)
	front.Register(mux, "/mcp")
	console.register(mux)

	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()

	fmt.Fprintf(stdout, `sapq dev is running (Ctrl-C stops it)

  MCP (Streamable HTTP)  %[1]s/mcp      Authorization: Bearer %[2]s
  Console                %[1]s/console/   log in with the token; the Asynq UI is at %[1]s/ui/
  SAP simulator          %[1]s/sap/...   faults: POST %[1]s/sim/faults   ledger: GET %[1]s/sim/ledger
  Metrics, health        %[1]s/metrics  %[1]s/healthz  %[1]s/readyz
  Redis                  sapq jobs list %[4]s
  Token                  %[2]s (caller %[3]q)
`, base, *token, devCaller, jobsRedis)
	var limits mcpfront.HTTPLimits
	return serveWith(ctx, mcpfront.LimitListener(ln, limits), mcpfront.NewHTTPServer(mux, limits), func() { front.Close(context.Background()) }, sapClient.CloseIdleConnections)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
