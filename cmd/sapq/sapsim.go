package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

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
	warehouse := fs.String("warehouse-storage-locations", env("SAPSIM_WAREHOUSE_STORAGE_LOCATIONS", ""),
		"storage locations a warehouse manages, as plant/storage location, comma-separated, e.g. 1010/101B: goods movements of them are posted, but answered 201 without a material document number (L9/514 in sap-message) (env SAPQ_SAPSIM_WAREHOUSE_STORAGE_LOCATIONS)")
	md := sim.DefaultMasterData()
	if err := defaults.parse(fs, args, func() error {
		if *openOrders < 0 || *openOrders > maxOpenSalesOrders {
			return fmt.Errorf("--open-sales-orders (SAPQ_SAPSIM_OPEN_SALES_ORDERS) must be between 0 and %d, got %d", maxOpenSalesOrders, *openOrders)
		}
		return warehouseStorageLocations(md, *warehouse)
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
	opts := sim.Options{User: *user, Password: pw, Client: *client, OpenSalesOrders: *openOrders, MasterData: md, Logger: log}
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

// warehouseStorageLocations marks storage locations of the master data as
// managed by a warehouse: "1010/101B,1010/101A".
func warehouseStorageLocations(md *sim.MasterData, list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	for _, item := range strings.Split(list, ",") {
		plant, sloc, ok := strings.Cut(strings.TrimSpace(item), "/")
		p, known := md.Plants[plant]
		if !ok || !known || !slices.Contains(p.StorageLocations, sloc) {
			return fmt.Errorf("--warehouse-storage-locations (SAPQ_SAPSIM_WAREHOUSE_STORAGE_LOCATIONS): %q is not a plant/storage location of the simulator's master data", item)
		}
		if !slices.Contains(p.WarehouseStorageLocations, sloc) {
			p.WarehouseStorageLocations = append(slices.Clone(p.WarehouseStorageLocations), sloc)
		}
		md.Plants[plant] = p
	}
	return nil
}
