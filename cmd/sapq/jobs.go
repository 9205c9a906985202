package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// `sapq jobs` is the operators' command line over the ledger: it reads and
// changes sapq's own records (tasks/ledger), so it works after asynq has
// trimmed its archive. Bulk actions go through ledger.Bulk: one job per
// Redis script, in chunks, interruptible, and every step is the same
// exactly-once transition a single reprocess is.

// jobsSub is one subcommand of `sapq jobs`.
type jobsSub struct {
	name    string
	args    string // the positional arguments, for the usage line
	summary string
	// minArgs and maxArgs bound the positional arguments (maxArgs -1: any).
	minArgs, maxArgs int
	// setup registers the subcommand's own flags and returns what runs it
	// once they are parsed.
	setup func(fs *flag.FlagSet) jobsRunner
}

type jobsRunner func(ctx context.Context, j *jobsEnv, args []string) error

// jobsEnv is what a subcommand runs with.
type jobsEnv struct {
	ledger         *ledger.Ledger
	log            *slog.Logger
	stdout, stderr io.Writer
	// interactive is set when stderr is a terminal: progress is drawn as a
	// bar rather than printed line by line.
	interactive bool
}

var jobsSubs = []jobsSub{
	{"list", "", "list postings, newest first", 0, 0, setupList},
	{"show", "ID...", "print postings as JSON", 1, -1, setupShow},
	{"failures", "", "failed postings grouped by SAP's code and message", 0, 0, setupFailures},
	{"reprocess", "[ID...]", "queue failed postings again with a fresh retry budget, once their cause is fixed", 0, -1, setupBulk(ledger.BulkReprocess)},
	{"discard", "[ID...]", "end failed postings for good: never posted, never reprocessed", 0, -1, setupBulk(ledger.BulkDiscard)},
	{"approvals", "", "postings awaiting an operator's approval, soonest to expire first", 0, 0, setupApprovals},
	{"approve", "ID", "approve a posting another caller submitted (four eyes), bound to its payload hash", 1, 1, setupDecision(tasks.DecisionApproved)},
	{"reject", "ID", "reject a posting another caller submitted: it is never sent", 1, 1, setupDecision(tasks.DecisionRejected)},
}

func jobsUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: sapq jobs <command> [arguments] [flags]\n\ncommands:")
	for _, s := range jobsSubs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
	fmt.Fprintln(w, "\nRun 'sapq jobs <command> --help' for a command's flags.")
}

func runJobs(ctx context.Context, args []string, stdout io.Writer) error {
	interactive := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		interactive = true
	}
	return runJobsWith(ctx, args, stdout, os.Stderr, interactive)
}

func runJobsWith(ctx context.Context, args []string, stdout, stderr io.Writer, interactive bool) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		jobsUsage(stdout)
		return flag.ErrHelp
	}
	i := slices.IndexFunc(jobsSubs, func(s jobsSub) bool { return s.name == args[0] })
	if i < 0 {
		jobsUsage(stderr)
		return fmt.Errorf("unknown jobs command %q", args[0])
	}
	sub := jobsSubs[i]
	fs := flag.NewFlagSet("sapq jobs "+sub.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // --help prints to stdout, errors are returned
	var e envDefaults
	var lf ledgerFlags
	lf.register(fs, &e)
	run := sub.setup(fs)
	positional, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: sapq jobs %s %s[flags]\n\n%s\n\nflags:\n", sub.name, cmp.Or(sub.args+" ", ""), sub.summary)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("sapq jobs %s: %w (see 'sapq jobs %s --help')", sub.name, err, sub.name)
	}
	if err := e.parse(fs, nil, lf.checks()...); err != nil {
		return err
	}
	if len(positional) < sub.minArgs || (sub.maxArgs >= 0 && len(positional) > sub.maxArgs) {
		return fmt.Errorf("usage: sapq jobs %s %s[flags]", sub.name, cmp.Or(sub.args+" ", ""))
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	// The operator sees which Redis the answers come from: a wrong
	// SAPQ_REDIS_URL would otherwise read as "nothing failed".
	fmt.Fprintf(stderr, "sapq jobs: Redis %s (%s), queue %s\n", redactURL(lf.redis.url), lf.redis.target, lf.queue)
	rdb, l, err := lf.open(ctx, log, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return run(ctx, &jobsEnv{ledger: l, log: log, stdout: stdout, stderr: stderr, interactive: interactive}, positional)
}

// parseInterspersed parses flags wherever they are among the positional
// arguments (`show ID --json` as well as `show --json ID`); after "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// filterFlags are the flags that select postings.
type filterFlags struct {
	status, kind, code, companyCode, caller, destination string
	after, before                                        timeFlag
	ids                                                  []string // the positional IDs, if any
}

func (f *filterFlags) register(fs *flag.FlagSet, withStatus bool) {
	if withStatus {
		fs.StringVar(&f.status, "status", "", "only postings in this status ("+joinStatuses()+")")
	}
	fs.StringVar(&f.kind, "kind", "", "only postings of this kind ("+joinKinds()+")")
	fs.StringVar(&f.code, "sap-code", "", "only postings whose last error has this code, e.g. F5/201 (SAP's message class/number)")
	fs.StringVar(&f.companyCode, "company-code", "", "only postings in this company code")
	fs.StringVar(&f.caller, "caller", "", "only this caller's postings")
	fs.StringVar(&f.destination, "destination", "", "only postings routed to this SAP destination")
	fs.Var(&f.after, "submitted-after", "only postings submitted at or after this time (RFC 3339, e.g. 2026-11-30T08:00:00Z)")
	fs.Var(&f.before, "submitted-before", "only postings submitted before this time (RFC 3339)")
}

// filter checks the flags and returns the ledger's filter.
func (f *filterFlags) filter() (ledger.Filter, error) {
	var problems []error
	if f.status != "" && !slices.Contains(tasks.Statuses, tasks.Status(f.status)) {
		problems = append(problems, fmt.Errorf("--status %q: one of %s", f.status, joinStatuses()))
	}
	if f.kind != "" && !slices.Contains(tasks.Kinds, tasks.Kind(f.kind)) {
		problems = append(problems, fmt.Errorf("--kind %q: one of %s", f.kind, joinKinds()))
	}
	if !f.after.IsZero() && !f.before.IsZero() && !f.after.Before(f.before.Time) {
		problems = append(problems, fmt.Errorf("--submitted-after %s is not before --submitted-before %s", f.after, f.before))
	}
	return ledger.Filter{
		Status: tasks.Status(f.status), Kind: tasks.Kind(f.kind), Code: f.code, CompanyCode: f.companyCode,
		Caller: f.caller, Destination: f.destination, From: f.after.Time, To: f.before.Time, IDs: f.ids,
	}, errors.Join(problems...)
}

// criteria are the filter's conditions one by one, each as the flag that
// set it and a filter of only that condition: to say which of them
// matched nothing.
func (f *filterFlags) criteria() []criterion {
	var out []criterion
	add := func(set bool, name string, only ledger.Filter) {
		if set {
			out = append(out, criterion{name, only})
		}
	}
	add(f.kind != "", "--kind "+f.kind, ledger.Filter{Kind: tasks.Kind(f.kind)})
	add(f.code != "", "--sap-code "+f.code, ledger.Filter{Code: f.code})
	add(f.companyCode != "", "--company-code "+f.companyCode, ledger.Filter{CompanyCode: f.companyCode})
	add(f.caller != "", "--caller "+f.caller, ledger.Filter{Caller: f.caller})
	add(f.destination != "", "--destination "+f.destination, ledger.Filter{Destination: f.destination})
	add(!f.after.IsZero(), "--submitted-after "+f.after.String(), ledger.Filter{From: f.after.Time})
	add(!f.before.IsZero(), "--submitted-before "+f.before.String(), ledger.Filter{To: f.before.Time})
	return out
}

type criterion struct {
	flag string
	only ledger.Filter
}

// timeFlag is a flag holding an RFC 3339 time.
type timeFlag struct{ time.Time }

func (t *timeFlag) String() string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func (t *timeFlag) Set(v string) error {
	parsed, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("not an RFC 3339 time such as 2026-11-30T08:00:00Z")
	}
	t.Time = parsed
	return nil
}

// whyNothing explains an empty selection: whether there is any posting in
// the base selection (a status), and which of the filter's conditions
// matches none of them, in one pass over the base selection.
func whyNothing(ctx context.Context, l *ledger.Ledger, base ledger.Filter, ff *filterFlags) (string, error) {
	what := "posting"
	if base.Status != "" {
		what = string(base.Status) + " posting"
	}
	if len(ff.ids) > 0 {
		var reasons []string
		for _, id := range ff.ids {
			j, err := l.Get(ctx, "", id)
			switch {
			case errors.Is(err, ledger.ErrNotFound):
				reasons = append(reasons, id+": no such posting (or it expired)")
			case err != nil:
				return "", err
			case base.Status != "" && j.Status != base.Status:
				reasons = append(reasons, fmt.Sprintf("%s: is %s, not %s", id, j.Status, base.Status))
			default:
				for _, c := range ff.criteria() {
					if !c.only.Matches(j) {
						reasons = append(reasons, fmt.Sprintf("%s: does not match %s", id, c.flag))
					}
				}
			}
		}
		if len(reasons) == 0 {
			reasons = append(reasons, "they no longer match (changed meanwhile)")
		}
		return "none of the given IDs is selected: " + strings.Join(reasons, "; "), nil
	}
	criteria := ff.criteria()
	total := 0
	matching := make([]int, len(criteria))
	err := l.Each(ctx, ledger.Filter{Status: base.Status, FailedBefore: base.FailedBefore}, func(j tasks.Job) error {
		total++
		for i, c := range criteria {
			if c.only.Matches(j) {
				matching[i]++
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if total == 0 {
		if !base.FailedBefore.IsZero() {
			return fmt.Sprintf("no %s failed before --failed-before %s", what, base.FailedBefore.Format(time.RFC3339Nano)), nil
		}
		return fmt.Sprintf("there is no %s in this ledger at all (is it the right Redis and queue?)", what), nil
	}
	var none []string
	for i, c := range criteria {
		if matching[i] == 0 {
			none = append(none, c.flag)
		}
	}
	if len(none) > 0 {
		return fmt.Sprintf("%s matches none of the %d %ss", strings.Join(none, " and "), total, what), nil
	}
	return fmt.Sprintf("each condition matches some of the %d %ss, but no %s matches them all", total, what, what), nil
}

func setupList(fs *flag.FlagSet) jobsRunner {
	var ff filterFlags
	ff.register(fs, true)
	limit := fs.Int("limit", 50, "show at most this many postings (the newest)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	return func(ctx context.Context, j *jobsEnv, _ []string) error {
		f, err := ff.filter()
		if err == nil && *limit <= 0 {
			err = fmt.Errorf("--limit must be greater than zero, got %d", *limit)
		}
		if err != nil {
			return err
		}
		// Every match is read and counted; the newest are kept.
		var jobs []tasks.Job
		total := 0
		err = j.ledger.Each(ctx, f, func(job tasks.Job) error {
			total++
			i, _ := slices.BinarySearchFunc(jobs, job, newestFirst)
			if i < *limit {
				jobs = slices.Insert(jobs, i, job)
				jobs = jobs[:min(len(jobs), *limit)]
			}
			return nil
		})
		if err != nil {
			return err
		}
		if total == 0 {
			why, err := whyNothing(ctx, j.ledger, f, &ff)
			if err != nil {
				return err
			}
			fmt.Fprintln(j.stderr, "no posting matches: "+why)
			return nil
		}
		if err := printJobs(j.stdout, jobs, *asJSON); err != nil {
			return err
		}
		fmt.Fprintf(j.stderr, "%d of %d matching posting(s) shown\n", len(jobs), total)
		return nil
	}
}

func newestFirst(a, b tasks.Job) int {
	return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.ID, b.ID))
}

func setupShow(fs *flag.FlagSet) jobsRunner {
	return func(ctx context.Context, j *jobsEnv, ids []string) error {
		enc := json.NewEncoder(j.stdout)
		enc.SetIndent("", "  ")
		var missing []string
		for _, id := range ids {
			job, err := j.ledger.Get(ctx, "", id)
			if errors.Is(err, ledger.ErrNotFound) {
				missing = append(missing, id)
				continue
			}
			if err != nil {
				return err
			}
			if err := enc.Encode(job); err != nil {
				return err
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no such posting (or it expired): %s", strings.Join(missing, ", "))
		}
		return nil
	}
}

func setupFailures(fs *flag.FlagSet) jobsRunner {
	var ff filterFlags
	ff.register(fs, false)
	return func(ctx context.Context, j *jobsEnv, _ []string) error {
		f, err := ff.filter()
		if err != nil {
			return err
		}
		groups, err := j.ledger.FailureGroups(ctx, f)
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			f.Status = tasks.StatusFailed
			why, err := whyNothing(ctx, j.ledger, f, &ff)
			if err != nil {
				return err
			}
			fmt.Fprintln(j.stderr, "no failed posting matches: "+why)
			return nil
		}
		tw := tabwriter.NewWriter(j.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNT\tCODE\tCOMPANY CODES\tKINDS\tOLDEST FAILURE\tSAMPLE\tMESSAGE")
		for _, g := range groups {
			kinds := make([]string, len(g.Kinds))
			for i, k := range g.Kinds {
				kinds[i] = string(k)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Count, cmp.Or(g.Code, "-"), strings.Join(g.CompanyCodes, ","),
				strings.Join(kinds, ","), g.Oldest.Local().Format(time.DateTime), g.Sample.ID, g.Message)
		}
		return tw.Flush()
	}
}

// dryRunSample is how many of the selected postings a dry run shows.
const dryRunSample = 5

func setupBulk(action ledger.BulkAction) func(fs *flag.FlagSet) jobsRunner {
	return func(fs *flag.FlagSet) jobsRunner {
		var ff filterFlags
		ff.register(fs, false)
		all := fs.Bool("all", false, "select every failed posting (a selection is needed otherwise: there is no 'everything' by accident)")
		var failedBefore timeFlag
		fs.Var(&failedBefore, "failed-before", "only postings whose failure was recorded before this time (RFC 3339); an interrupted run prints the one to resume with")
		dryRun := fs.Bool("dry-run", false, "print how many postings would be "+pastTense(action)+" and a sample, change nothing")
		chunk := fs.Int("chunk", 100, "postings handled between two progress reports; an interrupt (Ctrl-C) takes effect at the end of a chunk")
		return func(ctx context.Context, j *jobsEnv, ids []string) error {
			ff.ids = ids
			f, err := ff.filter()
			switch {
			case err != nil:
				return err
			case *chunk <= 0:
				return fmt.Errorf("--chunk must be greater than zero, got %d", *chunk)
			case len(ids) == 0 && len(ff.criteria()) == 0 && !*all:
				return fmt.Errorf("%s: select postings by ID or with --kind, --sap-code, --company-code, --caller, --destination, --submitted-after/--submitted-before, or --all for every failed posting", action)
			}
			f.Status, f.FailedBefore = tasks.StatusFailed, failedBefore.Time
			if *dryRun {
				return bulkDryRun(ctx, j, action, f, &ff)
			}
			return bulkRun(ctx, j, action, f, &ff, *chunk)
		}
	}
}

func pastTense(a ledger.BulkAction) string {
	if a == ledger.BulkReprocess {
		return "reprocessed"
	}
	return "discarded"
}

func bulkDryRun(ctx context.Context, j *jobsEnv, action ledger.BulkAction, f ledger.Filter, ff *filterFlags) error {
	var sample []tasks.Job
	n := 0
	err := j.ledger.Each(ctx, f, func(job tasks.Job) error {
		n++
		if len(sample) < dryRunSample {
			sample = append(sample, job)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		why, err := whyNothing(ctx, j.ledger, f, ff)
		if err != nil {
			return err
		}
		fmt.Fprintf(j.stdout, "would %s nothing: %s\n", action, why)
		return nil
	}
	fmt.Fprintf(j.stdout, "would %s %d failed posting(s); the first %d:\n", action, n, len(sample))
	if err := printJobs(j.stdout, sample, false); err != nil {
		return err
	}
	if action == ledger.BulkReprocess {
		fmt.Fprintln(j.stdout, "each gets a fresh retry budget; one whose last outcome was unknown is looked up in SAP before anything is sent")
	}
	return nil
}

func bulkRun(ctx context.Context, j *jobsEnv, action ledger.BulkAction, f ledger.Filter, ff *filterFlags, chunk int) error {
	// An interrupt ends the run at the end of a chunk, not in the middle of
	// a job's steps: the bulk works on a context that only the progress
	// report cancels, once the command's own has ended.
	bulkCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	progress := newProgress(j.stderr, j.interactive, string(action))
	res, err := j.ledger.Bulk(bulkCtx, action, f, ledger.BulkOptions{Chunk: chunk, Progress: func(p ledger.BulkProgress) {
		progress.show(p)
		if ctx.Err() != nil {
			stop()
		}
	}})
	progress.end()
	if err != nil {
		return err
	}
	if res.Selected == 0 {
		why, err := whyNothing(ctx, j.ledger, f, ff)
		if err != nil {
			return err
		}
		fmt.Fprintf(j.stdout, "%s: nothing selected: %s\n", action, why)
		return nil
	}
	fmt.Fprintf(j.stdout, "%s %d of %d selected posting(s)", pastTense(action), res.Done, res.Selected)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(j.stdout, ", skipped %d:\n", len(res.Skipped))
		for _, s := range res.Skipped {
			fmt.Fprintf(j.stdout, "  %s: %s\n", s.ID, s.Reason)
		}
	} else {
		fmt.Fprintln(j.stdout)
	}
	if res.Interrupted {
		left := res.Selected - res.Done - len(res.Skipped)
		fmt.Fprintf(j.stdout, "interrupted with %d posting(s) not reached. To go on with them, run the same command again with\n  --failed-before %s\n"+
			"(what was %s is no longer failed and is not selected again; the cutoff leaves out postings that failed since this run began)\n",
			left, res.Started.Format(time.RFC3339Nano), pastTense(action))
		return errInterrupted
	}
	return nil
}

var errInterrupted = errors.New("interrupted")

// progress reports a bulk action's progress on stderr: a bar redrawn in
// place on a terminal, a line per chunk otherwise (a log file, CI).
type progress struct {
	w           io.Writer
	interactive bool
	action      string
	drawn       bool
}

func newProgress(w io.Writer, interactive bool, action string) *progress {
	return &progress{w: w, interactive: interactive, action: action}
}

const progressWidth = 30

func (p *progress) show(b ledger.BulkProgress) {
	handled := b.Done + b.Skipped
	if !p.interactive {
		fmt.Fprintf(p.w, "%s: %d/%d (%d skipped)\n", p.action, handled, b.Selected, b.Skipped)
		return
	}
	filled := 0
	if b.Selected > 0 {
		filled = handled * progressWidth / b.Selected
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d (%d skipped)", p.action, strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), handled, b.Selected, b.Skipped)
	p.drawn = true
}

func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

func setupApprovals(fs *flag.FlagSet) jobsRunner {
	limit := fs.Int("limit", 50, "show at most this many (1 to 100)")
	return func(ctx context.Context, j *jobsEnv, _ []string) error {
		if *limit < 1 || *limit > 100 {
			return fmt.Errorf("--limit must be between 1 and 100, got %d", *limit)
		}
		jobs, waiting, err := j.ledger.Approvals(ctx, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(j.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tSUBMITTED BY\tCOMPANY CODE\tEXPIRES\tPAYLOAD HASH\tREASON")
		for _, job := range jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", job.ID, job.Kind, job.Caller, ledger.CompanyCodeOf(job),
				job.Approval.ExpiresAt.Local().Format(time.DateTime), job.Approval.PayloadHash, job.Approval.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(j.stderr, "%d of %d waiting shown; read a document with 'sapq jobs show ID' before approving it\n", len(jobs), waiting)
		return nil
	}
}

func setupDecision(d tasks.Decision) func(fs *flag.FlagSet) jobsRunner {
	return func(fs *flag.FlagSet) jobsRunner {
		operator := fs.String("as", env("OPERATOR", ""), "your operator name, recorded with the decision; not the posting's submitter (env SAPQ_OPERATOR)")
		reason := fs.String("reason", "", "why; the submitter reads it")
		var payloadHash *string
		if d == tasks.DecisionApproved {
			payloadHash = fs.String("payload-hash", "", "approval.payload_hash of the posting as 'sapq jobs show ID' or 'sapq jobs approvals' showed it: the approval is bound to exactly that payload")
		}
		return func(ctx context.Context, j *jobsEnv, args []string) error {
			id := args[0]
			var problems []error
			if *operator == "" {
				problems = append(problems, errors.New("--as (SAPQ_OPERATOR): your operator name is required; four eyes need names"))
			}
			if d == tasks.DecisionApproved && *payloadHash == "" {
				problems = append(problems, errors.New("--payload-hash is required: approval.payload_hash of the document you read with 'sapq jobs show "+id+"'"))
			}
			if d == tasks.DecisionRejected && *reason == "" {
				problems = append(problems, errors.New("--reason is required: say why, the submitter reads it"))
			}
			if err := errors.Join(problems...); err != nil {
				return err
			}
			var job tasks.Job
			var err error
			if d == tasks.DecisionApproved {
				job, err = j.ledger.Approve(ctx, id, *operator, *payloadHash, *reason)
			} else {
				job, err = j.ledger.Reject(ctx, id, *operator, *reason)
			}
			if err != nil {
				return fmt.Errorf("%s: nothing changed: %w", id, err)
			}
			j.log.Info("posting "+string(d), "audit", true, "operator", *operator, "job_id", id, "submitter", job.Caller)
			fmt.Fprintf(j.stdout, "%s %s by %s: %s\n", id, d, *operator, job.Status)
			return nil
		}
	}
}

func printJobs(w io.Writer, jobs []tasks.Job, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, j := range jobs {
			if err := enc.Encode(j); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tCALLER\tCOMPANY CODE\tSTATUS\tATTEMPTS\tCREATED\tDOCUMENT / ERROR")
	for _, j := range jobs {
		outcome := errorSummary(j)
		if j.Result != nil {
			outcome = j.Result.CompanyCode + "/" + j.Result.Document + "/" + j.Result.FiscalYear
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Kind, j.Caller, ledger.CompanyCodeOf(j), j.Status, j.Attempts, j.CreatedAt.Local().Format(time.DateTime), outcome)
	}
	return tw.Flush()
}

func errorSummary(j tasks.Job) string {
	if j.Error == nil {
		return ""
	}
	return strings.TrimSpace(j.Error.Code + " " + j.Error.Message)
}

func joinStatuses() string {
	s := make([]string, len(tasks.Statuses))
	for i, st := range tasks.Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func joinKinds() string {
	names := make([]string, len(tasks.Kinds))
	for i, k := range tasks.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
