// Command sapq posts business documents from AI agents into SAP exactly once.
//
//	sapq dev      everything in one process: embedded Redis, SAP simulator, worker, MCP, UI
//	sapq worker   the posting workers
//	sapq mcp      the MCP server (--transport http|stdio)
//	sapq ui       the Asynq web UI for operators, behind a token
//	sapq jobs     inspect, reprocess, discard, approve and reject postings
//	sapq sapsim   the SAP simulator on its own
//	sapq bench    measure sapq against asynq baselines (BENCHMARKS.md)
//	sapq chaos    prove the exactly-once promise under faults, as separate processes
//	sapq probe    GET a health endpoint: the healthcheck of a container without curl
//
// Configuration comes from flags and SAPQ_* environment variables; secrets
// (SAP password, tokens) only from the environment or files, never flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"dev", "run everything in one process on an embedded Redis and the SAP simulator", runDev},
	{"worker", "run posting workers against Redis and SAP", runWorker},
	{"mcp", "serve the MCP tools over Streamable HTTP or stdio", runMCP},
	{"ui", "serve the Asynq web UI behind a token", runUI},
	{"jobs", "inspect, reprocess, discard, approve and reject postings", runJobs},
	{"sapsim", "serve the SAP simulator", runSAPSim},
	{"bench", "measure sapq against asynq baselines and write BENCHMARKS.md tables", runBench},
	{"chaos", "prove exactly-once under worker kills, SAP faults and a Redis failure", runChaos},
	{"probe", "GET a health endpoint and exit 0 on 2xx (container healthchecks)", runProbe},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:], os.Stdout)
		stop()
		if errors.Is(err, errInterrupted) {
			os.Exit(130) // as a shell reports Ctrl-C; the command said how to go on
		}
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			slog.Error("sapq "+name+" failed", "err", err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "sapq: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sapq <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sapq <command> -h' for a command's flags.")
}
