package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/sapq/sapq/sap/sim"
)

// maxOpenSalesOrders bounds the orders seeded at start: each is kept in
// memory with its item.
const maxOpenSalesOrders = 1_000_000

func runSAPSim(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sapsim", flag.ContinueOnError)
	addr := fs.String("addr", env("SAPSIM_ADDR", "127.0.0.1:8081"), "listen address (env SAPQ_SAPSIM_ADDR)")
	user := fs.String("user", env("SAP_USER", "SAPQ_COMM"), "communication user it accepts (env SAPQ_SAP_USER); the password comes from SAPQ_SAP_PASSWORD")
	client := fs.String("client", env("SAP_CLIENT", "100"), "SAP client it serves (env SAPQ_SAP_CLIENT)")
	faults := fs.String("faults", env("SAPSIM_FAULTS", ""), `initial faults as JSON, e.g. {"fail_rate":0.1,"ambiguous_rate":0.05,"latency":"200ms"} (env SAPQ_SAPSIM_FAULTS); change them at run time with POST /sim/faults`)
	var defaults envDefaults
	openOrders := fs.Int("open-sales-orders", defaults.int("SAPSIM_OPEN_SALES_ORDERS", 0),
		fmt.Sprintf("open standard orders the simulator holds from the start, numbered 1 to N, waiting to be billed (0-%d; env SAPQ_SAPSIM_OPEN_SALES_ORDERS)", maxOpenSalesOrders))
	if err := defaults.parse(fs, args, func() error {
		if *openOrders < 0 || *openOrders > maxOpenSalesOrders {
			return fmt.Errorf("--open-sales-orders (SAPQ_SAPSIM_OPEN_SALES_ORDERS) must be between 0 and %d, got %d", maxOpenSalesOrders, *openOrders)
		}
		return nil
	}); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	pw, err := secret("SAP_PASSWORD")
	if err != nil {
		return err
	}
	opts := sim.Options{User: *user, Password: pw, Client: *client, OpenSalesOrders: *openOrders, Logger: log}
	if *faults != "" {
		if err := json.Unmarshal([]byte(*faults), &opts.Faults); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
		if err := opts.Faults.Validate(); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
	}
	s := sim.New(opts)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("SAP simulator listening", "url", "http://"+ln.Addr().String(), "user", *user, "client", *client)
	if !isLoopback(ln.Addr()) {
		log.Warn("the simulator's /sim/ endpoints (faults, ledger) need no credentials; anyone who can reach this address can change its faults")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/", s)
	return serve(ctx, ln, mux)
}
