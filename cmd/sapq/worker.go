package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sapq/sapq/worker"
)

// defaultSAPProcessing is how long SAP may process a request it received,
// by default: the ICM's default processing timeout (PROCTIMEOUT, 60 s).
const defaultSAPProcessing = 60 * time.Second

func runWorker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var e envDefaults
	var lf ledgerFlags
	var sf sapFlags
	var limits limitFlags
	lf.register(fs, &e)
	sf.register(fs, &e)
	limits.register(fs, &e)
	concurrency := fs.Int("concurrency", e.int("CONCURRENCY", 10), "postings processed at once (env SAPQ_CONCURRENCY)")
	settle := fs.Duration("reconcile-after", e.duration("RECONCILE_AFTER", 0), "settle time: how long after a call to SAP began a look-up that finds nothing is trusted, and how long no call goes out after Redis lost writes; the request may reach SAP up to --sap-timeout after the call began, so this must exceed --sap-timeout by the longest time SAP takes to process a request it received (env SAPQ_RECONCILE_AFTER; default --sap-timeout + 60s, the SAP ICM's default processing timeout)")
	recoverAfter := fs.Duration("recover-after", e.duration("RECOVER_AFTER", 15*time.Second), "how long a task's asynq lease may go unrenewed (live workers renew every 5s) before its task is put back in the queue for another worker: a killed worker's postings run again this long after the kill instead of asynq's 60s-2min, each reconciled with SAP before anything is sent; at least 10s, negative leaves recovery to asynq (env SAPQ_RECOVER_AFTER)")
	metricsAddr := fs.String("metrics-addr", env("METRICS_ADDR", "127.0.0.1:9090"), "address for /metrics, /healthz and /readyz, loopback only by default: :9090 for Prometheus and Kubernetes probes from elsewhere; empty disables (env SAPQ_METRICS_ADDR)")
	checks := append(append(lf.checks(), sf.checks()...), limits.checks()...)
	checks = append(checks, positive("concurrency", "CONCURRENCY", concurrency), func() error {
		if *settle == 0 {
			*settle = sf.timeout + defaultSAPProcessing
		}
		if *settle <= sf.timeout {
			return fmt.Errorf("--reconcile-after (SAPQ_RECONCILE_AFTER) %s must be longer than --sap-timeout (SAPQ_SAP_TIMEOUT) %s: a look-up while a call may still be running in SAP can miss its document", *settle, sf.timeout)
		}
		return nil
	})
	if err := e.parse(fs, args, checks...); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	tracer, stopTracing, err := newTracing(ctx, "worker")
	if err != nil {
		return err
	}
	defer stopTracing()
	destinations, err := sf.destinations(log, *concurrency)
	if err != nil {
		return err
	}
	log.Info("SAP destinations", "destinations", destinations.Names())
	rdb, l, err := lf.open(ctx, log, *settle)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := newRegistry()
	w, err := worker.New(worker.Options{
		Redis: rdb, Ledger: l, SAP: destinations, MaxInFlight: limits.maxInFlight,
		Concurrency: *concurrency, SAPTimeout: sf.timeout, RecoverAfter: *recoverAfter, Logger: log, Metrics: reg, Tracer: tracer,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()
	if *metricsAddr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", *metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	var ready readiness
	ready.add("redis", pingRedis(rdb))
	ready.add("sap", sapReady(destinations, sf.timeout))
	log.Info("worker metrics and health", "addr", ln.Addr().String())
	return serve(ctx, ln, opsMux(reg, &ready))
}
