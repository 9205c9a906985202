// Package bench measures sapq against asynq baselines in one process and
// one run: the same redis-server, the same SAP simulator and the same SAP
// client for the thing measured and for its baseline, so that a ratio
// between them says what sapq's guarantees cost on this machine now.
// cmd/sapq's bench subcommand drives it and writes the tables and plots.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// simUser is the simulator's communication user; its password is random
// per run and never leaves the process.
const simUser = "SAPQ_COMM"

// env is what every scenario shares: a private redis-server, the SAP
// simulator on a loopback listener and a SAP client posting to it.
type env struct {
	redisSrv *redistest.Server
	rdb      *redis.Client
	acct     *accounting // counts the rdb's round trips by step
	// sim is the simulator serving now; reset replaces it with a fresh one
	// (see there).
	sim         atomic.Pointer[sim.Server]
	simHTTP     *http.Server
	simURL      string
	simPassword string
	sap         *sap.Client
	dest        *sap.Destinations
	log         *slog.Logger

	// Requests SAP is processing now, and the most since resetPeak.
	inFlight, peak atomic.Int64
}

// serveSim serves the simulator of the moment and counts its requests in
// flight.
func (e *env) serveSim(w http.ResponseWriter, r *http.Request) {
	n := e.inFlight.Add(1)
	for p := e.peak.Load(); n > p && !e.peak.CompareAndSwap(p, n); p = e.peak.Load() {
	}
	defer e.inFlight.Add(-1)
	e.sim.Load().ServeHTTP(w, r)
}

// newSim is a simulator that takes latency to process each posting.
func (e *env) newSim(latency time.Duration) *sim.Server {
	return sim.New(sim.Options{User: simUser, Password: e.simPassword, Logger: e.log, Faults: sim.Faults{Latency: latency}})
}

func newEnv(log *slog.Logger) (*env, error) {
	e := &env{log: log}
	var err error
	if e.redisSrv, err = redistest.Start(); err != nil {
		return nil, err
	}
	e.acct = &accounting{}
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redisSrv.Addr, PoolSize: 256})
	e.rdb.AddHook(e.acct)
	password := strconv.FormatInt(time.Now().UnixNano(), 36)
	e.simPassword = password
	e.sim.Store(e.newSim(0))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.close()
		return nil, err
	}
	e.simURL = "http://" + ln.Addr().String()
	e.simHTTP = &http.Server{Handler: http.HandlerFunc(e.serveSim)}
	go e.simHTTP.Serve(ln)
	if e.sap, err = sap.New(sap.Config{BaseURL: e.simURL, User: simUser, Password: password, Timeout: sapTimeout, Logger: log}); err != nil {
		e.close()
		return nil, err
	}
	if e.dest, err = sap.SingleDestination(tasks.DefaultDestination, e.sap); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// sapTimeout and settle are the workers' SAP timeout and reconcile wait: the
// simulator answers at once unless a scenario makes it slow.
const sapTimeout, settle = 5 * time.Second, 8 * time.Second

func (e *env) close() {
	if e.simHTTP != nil {
		e.simHTTP.Close()
	}
	if e.rdb != nil {
		e.rdb.Close()
	}
	if e.redisSrv != nil {
		e.redisSrv.Stop()
	}
}

// reset empties Redis and its statistics between runs and starts a fresh
// simulator with the latency given. A fresh simulator keeps a run from
// paying for the ones before it: the documents they posted (40,000 after
// the throughput runs) stay in this process's heap, and the collector
// marks them during every later run, the latency scenario's server too.
func (e *env) reset(ctx context.Context, latency time.Duration) error {
	e.sim.Store(e.newSim(latency))
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return err
	}
	e.acct.reset()
	e.peak.Store(0)
	return nil
}

// newLedger is a ledger on the freshly reset Redis, trusted as new
// (ledger.TrustNewRedis): an emptied database otherwise reads as a Redis
// that lost writes, and the first postings would sit out the settle time,
// which no real deployment pays after its first minute. The trust's own
// commands are left out of the statistics.
func (e *env) newLedger(ctx context.Context) (*ledger.Ledger, error) {
	l, err := ledger.New(ledger.Options{Redis: e.rdb, Settle: settle, Logger: e.log})
	if err != nil {
		return nil, err
	}
	if err := l.TrustNewRedis(ctx); err != nil {
		l.Close()
		return nil, err
	}
	if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
		l.Close()
		return nil, err
	}
	e.acct.reset()
	return l, nil
}

// commandStats is INFO commandstats: calls per command.
func (e *env) commandStats(ctx context.Context) (map[string]int64, error) {
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out, nil
}

// scriptCommands are the commands that run a Lua script.
var scriptCommands = []string{"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}

// totals sums commandstats into commands and scripts, leaving out the
// INFO and CONFIG calls of the harness itself.
func totals(stats map[string]int64) (commands, scripts int64) {
	for name, n := range stats {
		if strings.HasPrefix(name, "info") || strings.HasPrefix(name, "config") || strings.HasPrefix(name, "slowlog") {
			continue
		}
		commands += n
		for _, s := range scriptCommands {
			if name == s {
				scripts += n
			}
		}
	}
	return commands, scripts
}

// awaitCount waits until count() reaches n, or the deadline.
func awaitCount(ctx context.Context, n int64, limit time.Duration, count func() int64) error {
	deadline := time.Now().Add(limit)
	for count() < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d of %d done after %s", count(), n, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}
