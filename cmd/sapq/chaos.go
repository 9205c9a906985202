package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sapq/sapq/internal/chaos"
)

// shownBreaches is how many breaches are printed in detail.
const shownBreaches = 10

func runChaos(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var o chaos.Options
	fs.IntVar(&o.N, "n", 10000, "postings (idempotency keys) to submit")
	fs.IntVar(&o.Workers, "workers", 2, "sapq worker processes")
	fs.IntVar(&o.Agents, "agents", 4, "concurrent agents, each its own caller with its own token")
	fs.Float64Var(&o.Rate, "rate", 50, "new postings submitted per second")
	fs.DurationVar(&o.KillEvery, "kill-every", 5*time.Second, "SIGKILL a worker this often (restarted at once); negative disables")
	fault := fs.String("redis-fault", string(chaos.RedisRollback), "the Redis failure mid-run: shutdown (clean restart), kill (SIGKILL, restart) or rollback (SIGKILL, restart from an older copy of the AOF)")
	fs.DurationVar(&o.RollbackAge, "rollback-age", 5*time.Second, "rollback: how much older the AOF copy is")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the postings and of the faults' victims; 0 picks one (printed, to repeat a run)")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "deadline for every posting to end; postings not ended by then are breaches")
	fs.BoolVar(&o.Keep, "keep", false, "keep the run's directory (logs, Redis data) even when it passes")
	fs.DurationVar(&o.SAPTimeout, "sap-timeout", 2*time.Second, "the workers' SAP call timeout")
	fs.DurationVar(&o.SlowLatency, "slow-latency", 3*time.Second, "how long a slow commit takes in the simulator; longer than --sap-timeout")
	fs.DurationVar(&o.ReconcileAfter, "reconcile-after", 6*time.Second, "the workers' reconcile wait (SAPQ_RECONCILE_AFTER); longer than --slow-latency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("chaos: unexpected arguments %q", fs.Args())
	}
	var err error
	if o.RedisFault, err = chaos.ParseRedisFault(*fault); err != nil {
		return fmt.Errorf("--redis-fault: %w", err)
	}
	o.Out = stdout
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		return err
	}
	for _, note := range rep.Notes {
		fmt.Fprintln(stdout, "note:", note)
	}
	for i, b := range rep.Breaches {
		if i == shownBreaches {
			fmt.Fprintf(stdout, "... and %d more breaches\n", len(rep.Breaches)-shownBreaches)
			break
		}
		fmt.Fprintln(stdout, "breach:", b)
	}
	fmt.Fprintln(stdout, rep.Summary())
	if !rep.OK() {
		return fmt.Errorf("chaos: %d breaches of the exactly-once promise (logs in %s)", len(rep.Breaches), rep.Dir)
	}
	return nil
}
