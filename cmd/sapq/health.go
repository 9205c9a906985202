package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
)

// /healthz says the process is up: a liveness probe that fails only when
// the process no longer serves HTTP, so that a Redis or SAP outage does not
// get every pod restarted. /readyz says whether it can do its work now:
// Redis answers and, for the worker, SAP does.

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readiness answers /readyz with the result of each of its checks, one
// line each, and 503 when any fails.
type readiness struct {
	checks []readinessCheck
}

type readinessCheck struct {
	name  string
	check func(context.Context) error
}

// readyTimeout bounds each check: a probe that hangs tells nothing, and
// Kubernetes gives up on it anyway.
const readyTimeout = 2 * time.Second

func (r *readiness) add(name string, check func(context.Context) error) {
	r.checks = append(r.checks, readinessCheck{name, check})
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	errs := make([]error, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(req.Context(), readyTimeout)
			defer cancel()
			errs[i] = c.check(ctx)
		})
	}
	wg.Wait()
	var body strings.Builder
	status := http.StatusOK
	for i, c := range r.checks {
		if errs[i] != nil {
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&body, "%s: %v\n", c.name, errs[i])
		} else {
			fmt.Fprintf(&body, "%s: ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body.String())
}

// pingRedis checks that Redis answers PING: every master of a cluster,
// since each serves a share of the postings.
func pingRedis(rdb redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error {
		if c, ok := rdb.(*redis.ClusterClient); ok {
			return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				if err := m.Ping(ctx).Err(); err != nil {
					return fmt.Errorf("master %s: %w", m.Options().Addr, err)
				}
				return nil
			})
		}
		return rdb.Ping(ctx).Err()
	}
}

// cachedCheck runs a check at most once per ttl and answers with its last
// result in between, so that probes every few seconds from every pod do not
// become load on the system checked (SAP). A probe that arrives while the
// check runs waits for it.
type cachedCheck struct {
	check   func(context.Context) error
	ttl     time.Duration
	timeout time.Duration

	mu  sync.Mutex
	at  time.Time // when the last check ended; zero before the first
	err error
}

func (c *cachedCheck) run(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.err
	}
	// The result serves later probes too: it must not be the error of this
	// probe's request having been cancelled.
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	c.err = c.check(checkCtx)
	c.at = time.Now()
	return c.err
}

// sapReadyTTL is how long a SAP reachability result is reused.
const sapReadyTTL = 10 * time.Second

// sapReady is the worker's SAP readiness check (every destination answers
// its logon: sap.Destinations.Ping), cached for sapReadyTTL.
func sapReady(d *sap.Destinations, timeout time.Duration) func(context.Context) error {
	c := &cachedCheck{check: d.Ping, ttl: sapReadyTTL, timeout: min(timeout, readyTimeout)}
	return c.run
}
