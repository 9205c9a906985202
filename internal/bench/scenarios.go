package bench

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Options selects what Run measures.
type Options struct {
	// Scenarios to run, by name (Scenarios lists them); empty: all.
	Scenarios []string
	N         int           // postings per run
	Rates     []float64     // submission rates of the latency scenario, per second
	Duration  time.Duration // how long each rate is held
	Out       string        // directory for results.md and the SVG plots; empty: none
	Logger    *slog.Logger

	// Binary is the sapq executable the scenarios that need processes of
	// their own (inflight, recovery) start [os.Executable()].
	Binary string
	// InFlight is the many-in-flight scenario's concurrency, InFlightN the
	// postings it runs through each worker process.
	InFlight, InFlightN int
	// RecoveryN is how many postings the killed worker holds in the
	// recovery scenario; RecoverAfter is the workers' --recover-after;
	// RecoveryBaseline adds the asynq baseline (a minute or two of waiting);
	// RecoveryTimeout bounds the wait for the postings to run again.
	RecoveryN        int
	RecoverAfter     time.Duration
	RecoveryBaseline bool
	RecoveryTimeout  time.Duration
	// BulkN is how many failed postings the bulk scenario re-queues.
	BulkN int

	logDir string // the child processes' logs
}

// Scenarios are the scenarios Run knows, in order.
var Scenarios = []string{"throughput", "redis", "latency", "inflight", "bulk", "recovery"}

// Run runs the chosen scenarios and returns their tables.
func Run(ctx context.Context, o Options) ([]Table, error) {
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	for _, s := range o.Scenarios {
		if !contains(Scenarios, s) {
			return nil, fmt.Errorf("bench: unknown scenario %q (one of %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Binary == "" {
		var err error
		if o.Binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	o.InFlight, o.InFlightN = cmp.Or(o.InFlight, 1000), cmp.Or(o.InFlightN, 5000)
	o.BulkN = cmp.Or(o.BulkN, 100_000)
	o.RecoveryN, o.RecoverAfter, o.RecoveryTimeout = cmp.Or(o.RecoveryN, 10), cmp.Or(o.RecoverAfter, 15*time.Second), cmp.Or(o.RecoveryTimeout, 5*time.Minute)
	logDir, err := os.MkdirTemp("", "sapq-bench-")
	if err != nil {
		return nil, err
	}
	o.logDir = logDir
	// The children's logs are kept only when a run fails: its error names them.
	ok := false
	defer func() {
		if ok {
			os.RemoveAll(logDir)
		}
	}()
	e, err := newEnv(o.Logger)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var out []Table
	var costs runCosts
	needCosts := contains(o.Scenarios, "throughput") || contains(o.Scenarios, "redis")
	costsLoad := loadavg()
	if needCosts {
		// The round-trip hook walks the stack of every Redis call, a cost
		// of the harness that falls on sapq's seven round trips more than
		// on asynq's three: the timed runs go without it, and a shorter run
		// of each, with it, counts the steps.
		stepsN := min(o.N, 2000)
		for _, r := range []struct {
			cost *runCost
			run  func(n int) (runCost, error)
		}{
			{&costs.sapq, func(n int) (runCost, error) { return e.runSapq(ctx, n, 0, concurrency) }},
			{&costs.post, func(n int) (runCost, error) { return e.runAsynq(ctx, n, 0, concurrency, post) }},
			{&costs.noop, func(n int) (runCost, error) { return e.runAsynq(ctx, n, 0, concurrency, noop) }},
			{&costs.lookUpPost, func(n int) (runCost, error) { return e.runAsynq(ctx, n, 0, concurrency, lookUpPost) }},
		} {
			c, err := r.run(o.N)
			if err != nil {
				return out, err
			}
			if contains(o.Scenarios, "redis") {
				e.acct.on.Store(true)
				s, err := r.run(stepsN)
				e.acct.on.Store(false)
				if err != nil {
					return out, err
				}
				c.submitSteps, c.workSteps, c.stepsN = s.submitSteps, s.workSteps, stepsN
			}
			*r.cost = c
		}
	}
	if contains(o.Scenarios, "throughput") {
		out = append(out, withLoad(throughputTable(o.N, costs), costsLoad))
	}
	if contains(o.Scenarios, "redis") {
		out = append(out, withLoad(redisTable(o.N, costs), costsLoad), stepsTable(costs))
	}
	if contains(o.Scenarios, "latency") {
		before := loadavg()
		t, err := e.latency(ctx, o)
		if err != nil {
			return out, err
		}
		out = append(out, withLoad(t, before))
	}
	if contains(o.Scenarios, "inflight") {
		before := loadavg()
		t, err := e.inflight(ctx, o)
		if err != nil {
			return out, err
		}
		out = append(out, withLoad(t, before))
	}
	if contains(o.Scenarios, "bulk") {
		before := loadavg()
		t, err := e.bulk(ctx, o.BulkN)
		if err != nil {
			return out, err
		}
		out = append(out, withLoad(t, before))
	}
	if contains(o.Scenarios, "recovery") {
		before := loadavg()
		t, err := e.recovery(ctx, o)
		if err != nil {
			return out, err
		}
		out = append(out, withLoad(t, before))
	}
	ok = true
	return out, write(o.Out, out)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runCosts are the throughput runs: sapq's and its three asynq baselines'.
type runCosts struct {
	sapq, post, noop, lookUpPost runCost
}

// all lists the runs in the tables' order.
func (c runCosts) all() []runCost { return []runCost{c.sapq, c.post, c.noop, c.lookUpPost} }

func throughputTable(n int, costs runCosts) Table {
	t := Table{Title: fmt.Sprintf("Cost of the guarantees: %d journal entries, submission to document, concurrency %d", n, concurrency),
		Columns: []string{"run", "wall", "of it submit", "postings/s", "vs asynq + same SAP call", "vs asynq + same look-up and call", "vs asynq no-op",
			"CPU per posting: submit (process + Redis)", "execute+complete (process + Redis)"}, BarsUnit: "postings/s"}
	ref, noop, lookUp := costs.post.perSecond(n), costs.noop.perSecond(n), costs.lookUpPost.perSecond(n)
	perPosting := func(c cpuTime) string {
		return fmt.Sprintf("%.0f + %.0f us", microsPer(c.process, n), microsPer(c.redis, n))
	}
	for _, c := range costs.all() {
		ps := c.perSecond(n)
		t.Rows = append(t.Rows, []string{c.name, c.wall.Round(time.Millisecond).String(), c.submitWall.Round(time.Millisecond).String(), num(ps), ratio(ps, ref), ratio(ps, lookUp), ratio(ps, noop),
			perPosting(c.submitCPU), perPosting(c.workCPU)})
		t.Bars = append(t.Bars, Bar{c.name, ps})
	}
	t.Notes = append(t.Notes, "The look-up baseline's handler looks the document up in SAP by its reference before the same call, as sapq's worker does before every send: "+
		"the SAP side of sapq's protocol without its ledger. CPU from getrusage of the bench process (the submitters, the worker or asynq server, and the SAP simulator) and INFO cpu of the redis-server, per posting.")
	t.Notes = append(t.Notes, fmt.Sprintf("Target: sapq at least 0.8 of asynq with the same SAP call: %s.", verdict(costs.sapq.perSecond(n)/ref >= 0.8)))
	// Where sapq's CPU per posting goes, from the differences between runs:
	// the look-up is what the look-up baseline adds to the plain call, the
	// ledger what sapq adds to the look-up baseline.
	total := func(c runCost) float64 {
		return microsPer(c.submitCPU.process+c.submitCPU.redis+c.workCPU.process+c.workCPU.redis, n)
	}
	sapqCPU, callCPU, lookUpCPU := total(costs.sapq), total(costs.post), total(costs.lookUpPost)
	t.Notes = append(t.Notes, fmt.Sprintf("CPU per posting, all processes: sapq %.0f us, asynq with the same call %.0f us: the look-up in SAP adds %.0f us, the ledger (its submit record and three gating scripts, their Redis work, the task payload) %.0f us. "+
		"With every core busy (postings/s x CPU per posting = %.2f and %.2f cores of %d), 0.8x would need sapq at %.0f us per posting.",
		sapqCPU, callCPU, lookUpCPU-callCPU, sapqCPU-lookUpCPU, costs.sapq.perSecond(n)*sapqCPU/1e6, ref*callCPU/1e6, runtime.NumCPU(), callCPU/0.8))
	return t
}

func redisTable(n int, costs runCosts) Table {
	t := Table{Title: fmt.Sprintf("Redis cost per posting (INFO commandstats, %d postings)", n),
		Columns: []string{"run", "submit cmds", "submit scripts", "execute+complete cmds", "execute+complete scripts", "total cmds", "vs asynq + same SAP call"}, BarsUnit: "commands per posting"}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	ref := per(costs.post.submitCmds + costs.post.workCmds)
	for _, c := range costs.all() {
		total := per(c.submitCmds + c.workCmds)
		t.Rows = append(t.Rows, []string{c.name, num(per(c.submitCmds)), num(per(c.submitScripts)), num(per(c.workCmds)), num(per(c.workScripts)), num(total), ratio(total, ref)})
		t.Bars = append(t.Bars, Bar{c.name, total})
	}
	t.Notes = append(t.Notes, fmt.Sprintf("Target: at most 2x asynq per task: %s. The execute+complete phase includes asynq's own time-driven traffic (heartbeats, forwarder, recoverer polls) over the run's wall time.",
		verdict(per(costs.sapq.submitCmds+costs.sapq.workCmds) <= 2*ref)))
	return t
}

// stepsTable is the round trips per posting by the step that sent them
// (the go-redis hook's stack names), the defence of the count.
func stepsTable(costs runCosts) Table {
	t := Table{Title: fmt.Sprintf("Round trips per posting, step by step (go-redis hook, a run of %d postings of its own)", costs.sapq.stepsN),
		Columns: []string{"run", "phase", "step", "round trips", "commands"}}
	for _, c := range costs.all() {
		n := c.stepsN
		var trips int64
		for _, ph := range []struct {
			name  string
			steps map[string]stepCount
		}{{"submit", c.submitSteps}, {"execute+complete", c.workSteps}} {
			for _, s := range sortedSteps(ph.steps) {
				v := ph.steps[s]
				trips += v.roundTrips
				if float64(v.roundTrips)/float64(n) < 0.01 {
					continue
				}
				t.Rows = append(t.Rows, []string{c.name, ph.name, s, num(float64(v.roundTrips) / float64(n)), num(float64(v.commands) / float64(n))})
			}
		}
		t.Rows = append(t.Rows, []string{c.name, "all", "**total**", num(float64(trips) / float64(n)), ""})
	}
	return t
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// write puts results.md and one SVG per plotted table in dir.
func write(dir string, tables []Table) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Machine: %d CPUs (%s, %s), %s, %s\n\n", runtime.NumCPU(), cpuModel(), runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	for i, t := range tables {
		t.Markdown(&md)
		if len(t.Bars) == 0 {
			continue
		}
		var svg strings.Builder
		t.SVG(&svg)
		name := fmt.Sprintf("bench-%d.svg", i+1)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(svg.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&md, "![%s](%s)\n\n", t.Title, name)
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644)
}

// loadavg is the machine's load average over 1, 5 and 15 minutes: other
// work on the machine shows in every figure, so each table records it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func withLoad(t Table, before string) Table {
	t.Notes = append(t.Notes, fmt.Sprintf("Load average (1, 5, 15 min) before: %s; after: %s (%d CPUs).", before, loadavg(), runtime.NumCPU()))
	return t
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
