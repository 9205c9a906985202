package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

const jobsUsage = `usage: sapq jobs <list|show|reprocess> [flags]

  list       list postings, newest first (filters: --status --kind --caller --code --limit)
  show ID    print one posting as JSON
  reprocess  queue failed postings again once their cause is fixed
             (select with --id, or with --kind, --caller, --code; --dry-run shows what would run)`

func runJobs(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, jobsUsage)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	var e envDefaults
	var lf ledgerFlags
	lf.register(fs, &e)
	var sel selector
	fs.StringVar(&sel.status, "status", "", "only postings in this status ("+joinStatuses()+")")
	fs.StringVar(&sel.kind, "kind", "", "only postings of this kind ("+joinKinds()+")")
	fs.StringVar(&sel.caller, "caller", "", "only this caller's postings")
	fs.StringVar(&sel.code, "code", "", "only postings whose last error has this SAP code, e.g. F5/201")
	fs.Var(&sel.ids, "id", "a posting ID (repeatable)")
	limit := fs.Int("limit", 50, "at most this many postings")
	dryRun := fs.Bool("dry-run", false, "reprocess: list what would be queued, change nothing")
	asJSON := fs.Bool("json", false, "list: print JSON lines instead of a table")
	if err := e.parse(fs, args, append(lf.checks(), positive("limit", "", limit))...); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	rdb, l, err := lf.open(ctx, log, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	switch sub {
	case "list":
		jobs, err := sel.find(ctx, l, *limit)
		if err != nil {
			return err
		}
		return printJobs(stdout, jobs, *asJSON)
	case "show":
		if fs.NArg() != 1 {
			return errors.New("usage: sapq jobs show ID")
		}
		job, err := l.Get(ctx, "", fs.Arg(0))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(job)
	case "reprocess":
		if sel.status != "" && sel.status != string(tasks.StatusFailed) {
			return errors.New("reprocess: only failed postings can be reprocessed")
		}
		sel.status = string(tasks.StatusFailed)
		if len(sel.ids) == 0 && sel.kind == "" && sel.caller == "" && sel.code == "" {
			return errors.New("reprocess: select postings with --id, --kind, --caller or --code (there is no 'everything' by accident)")
		}
		jobs, err := sel.find(ctx, l, *limit)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if *dryRun {
				fmt.Fprintf(stdout, "would reprocess %s %s %s\n", j.ID, j.Kind, errorSummary(j))
				continue
			}
			if _, err := l.Reprocess(ctx, j.ID); err != nil {
				fmt.Fprintf(stdout, "skipped %s: %v\n", j.ID, err)
				continue
			}
			fmt.Fprintf(stdout, "reprocessing %s %s (was: %s)\n", j.ID, j.Kind, errorSummary(j))
		}
		verb := "queued"
		if *dryRun {
			verb = "would queue"
		}
		fmt.Fprintf(stdout, "%s %d posting(s)\n", verb, len(jobs))
		return nil
	default:
		fmt.Fprintln(stdout, jobsUsage)
		return fmt.Errorf("unknown jobs command %q", sub)
	}
}

// selector picks postings for list and reprocess.
type selector struct {
	status, kind, caller, code string
	ids                        stringList
}

func (s selector) find(ctx context.Context, l *ledger.Ledger, limit int) ([]tasks.Job, error) {
	if len(s.ids) > 0 {
		var out []tasks.Job
		for _, id := range s.ids {
			j, err := l.Get(ctx, "", id)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			if s.matches(j) {
				out = append(out, j)
			}
		}
		return out, nil
	}
	var out []tasks.Job
	cursor := ""
	for len(out) < limit {
		page, err := l.List(ctx, s.caller, ledger.ListFilter{Status: tasks.Status(s.status), Kind: tasks.Kind(s.kind), Limit: 100, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, j := range page.Jobs {
			if s.matches(j) && len(out) < limit {
				out = append(out, j)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return out, nil
}

func (s selector) matches(j tasks.Job) bool {
	switch {
	case s.status != "" && string(j.Status) != s.status:
		return false
	case s.kind != "" && string(j.Kind) != s.kind:
		return false
	case s.caller != "" && j.Caller != s.caller:
		return false
	case s.code != "" && (j.Error == nil || j.Error.Code != s.code):
		return false
	}
	return true
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
	fmt.Fprintln(tw, "ID\tKIND\tCALLER\tSTATUS\tATTEMPTS\tCREATED\tDOCUMENT / ERROR")
	for _, j := range jobs {
		outcome := errorSummary(j)
		if j.Result != nil {
			outcome = j.Result.CompanyCode + "/" + j.Result.Document + "/" + j.Result.FiscalYear
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Kind, j.Caller, j.Status, j.Attempts, j.CreatedAt.Format(time.DateTime), outcome)
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

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func joinKinds() string {
	names := make([]string, len(tasks.Kinds))
	for i, k := range tasks.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
