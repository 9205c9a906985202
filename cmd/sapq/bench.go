package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/sapq/sapq/internal/bench"
)

// runBench measures sapq against asynq baselines in one process, on a
// private redis-server and the SAP simulator, and prints (and with --out
// writes) BENCHMARKS.md-ready tables and SVG plots.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	// The baseline worker process the bench starts for its process
	// scenarios; not meant to be run by hand.
	if len(args) > 0 && args[0] == "asynq-worker" {
		return bench.AsynqWorker(ctx, args[1:], stdout)
	}
	// The latency scenario's load process, likewise.
	if len(args) > 0 && args[0] == "load" {
		return bench.Load(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	scenarios := fs.String("scenario", "", "comma-separated scenarios ("+strings.Join(bench.Scenarios, ", ")+"); empty: all")
	fs.IntVar(&o.N, "n", 10000, "postings per throughput run")
	rates := fs.String("rate", "500,2000", "comma-separated submission rates per second of the latency scenario")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each latency rate is held")
	fs.IntVar(&o.InFlight, "in-flight", 1000, "the many-in-flight scenario's worker concurrency (SAP takes 1s per posting)")
	fs.IntVar(&o.InFlightN, "in-flight-n", 5000, "postings per worker process in the many-in-flight scenario")
	fs.IntVar(&o.BulkN, "bulk-n", 100000, "failed postings the bulk scenario re-queues")
	fs.IntVar(&o.RecoveryN, "recovery-n", 10, "postings in flight in the worker the recovery scenario kills")
	fs.DurationVar(&o.RecoverAfter, "recover-after", 15*time.Second, "the workers' --recover-after in the recovery scenario (negative: asynq's recovery alone)")
	fs.BoolVar(&o.RecoveryBaseline, "recovery-baseline", true, "also kill an asynq baseline worker in the recovery scenario (asynq's defaults take one to three minutes)")
	fs.StringVar(&o.Out, "out", "", "directory to write results.md and the SVG plots to")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the bench process (submitters, worker, simulator) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
	}
	for _, r := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("--rate: %q is not a positive number", r)
		}
		o.Rates = append(o.Rates, v)
	}
	if o.N <= 0 || o.Duration <= 0 || o.InFlight <= 0 || o.InFlightN <= 0 || o.RecoveryN <= 0 || o.BulkN <= 0 || o.RecoverAfter == 0 {
		return fmt.Errorf("bench: --n, --duration, --in-flight, --in-flight-n, --bulk-n and --recovery-n must be positive, --recover-after not zero")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tables, err := bench.Run(ctx, o)
	for _, t := range tables {
		t.Markdown(stdout)
	}
	return err
}
