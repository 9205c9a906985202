package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/sapq/sapq/worker"
)

func runWorker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var lf ledgerFlags
	var sf sapFlags
	lf.register(fs)
	sf.register(fs)
	concurrency := fs.Int("concurrency", envInt("CONCURRENCY", 10), "postings processed at once (env SAPQ_CONCURRENCY)")
	metricsAddr := fs.String("metrics-addr", env("METRICS_ADDR", ":9090"), "address for /metrics and /healthz; empty disables (env SAPQ_METRICS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger()
	rdb, l, err := lf.open(log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	sapClient, err := sf.newClient(log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	w, err := worker.New(worker.Options{
		Redis: rdb, Ledger: l, SAP: sapClient, SAPUser: sf.user,
		Concurrency: *concurrency, SAPTimeout: sf.timeout, Logger: log, Metrics: reg,
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
	log.Info("worker metrics", "addr", ln.Addr().String())
	return serve(ctx, ln, opsMux(reg))
}
