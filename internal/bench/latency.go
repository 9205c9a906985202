package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sapq/sapq/internal/child"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
)

// sessions is how many MCP sessions the latency scenario's calls spread over.
const sessions = 16

// latencyRun is one open-loop run at a fixed rate: each call's latency is
// measured from when it was due, not from when it was sent, so a stall
// shows in every call it delays.
type latencyRun struct {
	lat      []time.Duration
	errors   int64
	firstErr error
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
	start := time.Now()
	var mu sync.Mutex
	var r latencyRun
	var wg sync.WaitGroup
	for i := range n {
		due := start.Add(time.Duration(i) * every)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			err := call(i)
			took := time.Since(due)
			mu.Lock()
			r.lat = append(r.lat, took)
			if err != nil {
				r.errors++
				if r.firstErr == nil {
					r.firstErr = err
				}
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(r.lat)
	return r
}

// serverLoad is what the measured process spent while a load ran: CPU
// (getrusage) and GC pauses, over the load's wall time.
type serverLoad struct {
	wall, cpu, gcPause time.Duration
}

func measureServer(load func() error) (serverLoad, error) {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, _ := processCPU()
	began := time.Now()
	err := load()
	s := serverLoad{wall: time.Since(began)}
	cpu1, _ := processCPU()
	runtime.ReadMemStats(&ms1)
	s.cpu = cpu1 - cpu0
	s.gcPause = time.Duration(ms1.PauseTotalNs - ms0.PauseTotalNs)
	return s, err
}

// latency measures submit_journal_entry over Streamable HTTP from a real
// MCP client against a plain asynq Enqueue of the same payload, each at
// the same fixed rates, each from a load process of its own (Load); the
// server, mcpfront on the bench's Redis, runs in this process.
func (e *env) latency(ctx context.Context, o Options) (Table, error) {
	rates, d := o.Rates, o.Duration
	t := Table{Title: fmt.Sprintf("Submission latency at fixed rates, %s each (open loop, from when each call was due)", d),
		Columns: []string{"run", "rate/s", "calls", "p50", "p99", "p99.9", "errors", "server CPU per call", "server GC pause share", "p99 vs Enqueue p99"}, BarsUnit: "p99 ms"}
	if err := e.reset(ctx, 0); err != nil {
		return t, err
	}
	// The server runs as sapq mcp does: its GC target unless GOGC is set.
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(mcpfront.GCPercent))
		gogc = fmt.Sprint(mcpfront.GCPercent) + " (mcpfront.GCPercent, as sapq mcp)"
	}
	l, err := e.newLedger(ctx)
	if err != nil {
		return t, err
	}
	defer l.Close()
	token := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
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
	spec, _ := tasks.SpecOf(tasks.KindJournalEntry)
	for ri, rate := range rates {
		run := fmt.Sprintf("lat%d-%d", ri, time.Now().UnixNano())
		var mcpRun, enqRun loadResult
		mcpLoad, err := measureServer(func() (err error) {
			mcpRun, err = runLoad(ctx, o, fmt.Sprintf("load-mcp-%d", ri), child.Env(loadTokenEnv+"="+token),
				"--mcp-url", "http://"+ln.Addr().String()+"/mcp", "--rate", rateArg(rate), "--duration", d.String(), "--run", run)
			return err
		})
		if err != nil {
			return t, err
		}
		enqRun, err = runLoad(ctx, o, fmt.Sprintf("load-enqueue-%d", ri), child.Env(),
			"--redis-url", "redis://"+e.redisSrv.Addr+"/0", "--rate", rateArg(rate), "--duration", d.String(), "--run", run)
		if err != nil {
			return t, err
		}
		mcp, enq := latencyRun{lat: mcpRun.Latencies, errors: mcpRun.Errors}, latencyRun{lat: enqRun.Latencies, errors: enqRun.Errors}
		for _, r := range []struct {
			name   string
			r      latencyRun
			server string
			gc     string
		}{
			{"sapq " + spec.Tool + " (MCP, Streamable HTTP)", mcp, perCall(mcpLoad.cpu, len(mcp.lat)), share(mcpLoad.gcPause, mcpLoad.wall)},
			{"asynq Enqueue", enq, "(Redis only)", "n/a"},
		} {
			t.Rows = append(t.Rows, []string{r.name, num(rate), fmt.Sprint(len(r.r.lat)), ms(r.r.pct(0.5)), ms(r.r.pct(0.99)), ms(r.r.pct(0.999)),
				fmt.Sprint(r.r.errors), r.server, r.gc, ratio(float64(r.r.pct(0.99)), float64(enq.pct(0.99)))})
			t.Bars = append(t.Bars, Bar{fmt.Sprintf("%s @%s/s", short(r.name), num(rate)), float64(r.r.pct(0.99)) / float64(time.Millisecond)})
		}
		t.Notes = append(t.Notes, fmt.Sprintf("At %s/s, CPU per call: the server %s, the MCP client's process %s, the Enqueue client's process %s; busy cores: server %.2f, MCP client %.2f of %d.",
			num(rate), perCall(mcpLoad.cpu, len(mcp.lat)), perCall(mcpRun.CPU, len(mcp.lat)), perCall(enqRun.CPU, len(enq.lat)),
			mcpLoad.cpu.Seconds()/mcpLoad.wall.Seconds(), mcpRun.CPU.Seconds()/mcpLoad.wall.Seconds(), runtime.NumCPU()))
		if mcpRun.FirstErr != "" {
			t.Notes = append(t.Notes, fmt.Sprintf("At %s/s, the first MCP error: %s.", num(rate), mcpRun.FirstErr))
		}
		t.Notes = append(t.Notes, fmt.Sprintf("At %s/s, target p99 within 5x the Enqueue p99: %s.", num(rate), verdict(mcp.pct(0.99) <= 5*enq.pct(0.99))))
	}
	t.Notes = append(t.Notes, fmt.Sprintf("The server (mcpfront and its ledger on the bench's redis-server) runs in the bench process with GOGC %s and GOMEMLIMIT=%q (empty: no limit); "+
		"each load (a real MCP client, the official Go SDK, over %d sessions; or an asynq Client) runs in a process of its own (`sapq bench load`). "+
		"Server CPU and GC pauses are the bench process's over the load's run.", gogc, os.Getenv("GOMEMLIMIT"), sessions))
	return t, nil
}

func perCall(cpu time.Duration, calls int) string {
	if calls == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f us", microsPer(cpu, calls))
}

func share(part, whole time.Duration) string {
	return fmt.Sprintf("%.2f%%", 100*float64(part)/float64(whole))
}

func short(name string) string {
	if len(name) > 4 && name[:4] == "sapq" {
		return "sapq submit (MCP)"
	}
	return name
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
