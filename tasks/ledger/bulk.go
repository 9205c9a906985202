package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
)

// Operators' selections and bulk actions. They work from the ledger's own
// records, not from asynq's archive (which asynq trims on its own), and act
// on one job per script: a bulk action over thousands of postings is
// thousands of small atomic steps, never one script that blocks Redis, and
// every step is the same exactly-once transition a single reprocess is.

// Filter selects jobs. Every set field must match.
type Filter struct {
	Status tasks.Status
	Kind   tasks.Kind
	// Code is the last error's code, such as F5/201.
	Code        string
	CompanyCode string
	Caller      string
	Destination string
	// From and To bound when the job was submitted: From <= created < To.
	From, To time.Time
	// FailedBefore, with Status failed, takes only jobs whose failure was
	// recorded before it: a bulk reprocess that is run again after an
	// interruption does not pick up the jobs that failed again meanwhile.
	FailedBefore time.Time
	// IDs, when set, are the only candidates.
	IDs []string
}

// Matches reports whether a job matches the filter.
func (f Filter) Matches(j tasks.Job) bool {
	switch {
	case j.ID == "":
		return false
	case f.Status != "" && j.Status != f.Status,
		f.Kind != "" && j.Kind != f.Kind,
		f.Caller != "" && j.Caller != f.Caller,
		f.Destination != "" && j.Destination != f.Destination,
		f.Code != "" && (j.Error == nil || j.Error.Code != f.Code),
		!f.From.IsZero() && j.CreatedAt.Before(f.From),
		!f.To.IsZero() && !j.CreatedAt.Before(f.To),
		!f.FailedBefore.IsZero() && !j.UpdatedAt.Before(f.FailedBefore):
		return false
	case f.CompanyCode != "" && CompanyCodeOf(j) != f.CompanyCode:
		return false
	}
	return true
}

// CompanyCodeOf is the company code a job posts in, from its payload; ""
// for postings that are made in another organisational unit.
func CompanyCodeOf(j tasks.Job) string {
	p, err := j.Posting()
	if err != nil {
		return ""
	}
	return p.Facts().CompanyCode()
}

// eachChunk is how many index entries Each reads at once.
const eachChunk = 500

// Each calls fn with every job that matches f, shard by shard, reading the
// narrowest index that holds them all: the failed jobs' index for failed
// jobs, a caller's own, or every job's. fn's error stops the walk and is
// returned. A failed job is one the ledger recorded as failed; a live job
// whose task the queue gave up on shows as failed in Get and List, and is
// found by a filter without a status.
func (l *Ledger) Each(ctx context.Context, f Filter, fn func(tasks.Job) error) error {
	if len(f.IDs) > 0 {
		for _, chunk := range chunked(f.IDs, eachChunk) {
			jobs, err := l.loadMany(ctx, validIDs(chunk))
			if err != nil {
				return err
			}
			for _, j := range jobs {
				if f.Matches(j) {
					if err := fn(j); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	for _, s := range allShards() {
		if err := l.eachInShard(ctx, s, f, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ledger) eachInShard(ctx context.Context, s shard, f Filter, fn func(tasks.Job) error) error {
	index, byScore := s.jobsKey(), false
	switch {
	case f.Status == tasks.StatusFailed:
		index, byScore = s.failedKey(), true
	case f.Caller != "":
		index = s.callerKey(callerHash(f.Caller))
	}
	if byScore {
		max := "+inf"
		if !f.FailedBefore.IsZero() {
			max = fmt.Sprintf("(%d", ms(f.FailedBefore))
		}
		for offset := int64(0); ; offset += eachChunk {
			ids, err := l.rdb.ZRangeByScore(ctx, index, &redis.ZRangeBy{Min: "-inf", Max: max, Offset: offset, Count: eachChunk}).Result()
			if err != nil {
				return l.ctxErr(ctx, err)
			}
			if err := l.visit(ctx, ids, f, fn); err != nil || len(ids) < eachChunk {
				return err
			}
		}
	}
	cursor := "+"
	for {
		ids, err := l.rdb.ZRevRangeByLex(ctx, index, &redis.ZRangeBy{Max: cursor, Min: "-", Count: eachChunk}).Result()
		if err != nil {
			return l.ctxErr(ctx, err)
		}
		if err := l.visit(ctx, ids, f, fn); err != nil || len(ids) < eachChunk {
			return err
		}
		cursor = "(" + ids[len(ids)-1]
	}
}

func (l *Ledger) visit(ctx context.Context, ids []string, f Filter, fn func(tasks.Job) error) error {
	if len(ids) == 0 {
		return nil
	}
	jobs, err := l.loadMany(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.ID == "" {
			continue // expired; the sweeper trims the index
		}
		if f.Status != tasks.StatusFailed && j.Status.InQueue() {
			j = l.overlayQueueState(ctx, j)
		}
		if f.Matches(j) {
			if err := fn(j); err != nil {
				return err
			}
		}
	}
	return nil
}

func chunked[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// validIDs drops what is not a job ID, so that a typo reads as not found.
func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := keysOf(id); ok {
			out = append(out, id)
		}
	}
	return out
}

// FailureGroup is the failed jobs that share one SAP message: what an
// operator fixes once (open the period, create the account) and then
// reprocesses together.
type FailureGroup struct {
	Code     string              // SAP's message class/number or a sapq code
	Message  string              // the message text
	Category tasks.ErrorCategory // the category of the sample
	Count    int
	// CompanyCodes and Kinds are the distinct ones among the group's jobs.
	CompanyCodes []string
	Kinds        []tasks.Kind
	// Oldest is when the group's oldest failure was recorded.
	Oldest time.Time
	// Sample is the group's oldest job.
	Sample tasks.Job
}

// FailureGroups groups the failed jobs that match f (its Status is taken
// to be failed) by their last error's code and text, largest group first.
func (l *Ledger) FailureGroups(ctx context.Context, f Filter) ([]FailureGroup, error) {
	f.Status = tasks.StatusFailed
	type key struct{ code, msg string }
	groups := map[key]*FailureGroup{}
	companies := map[key]map[string]bool{}
	kinds := map[key]map[tasks.Kind]bool{}
	err := l.Each(ctx, f, func(j tasks.Job) error {
		k := key{}
		if j.Error != nil {
			k = key{j.Error.Code, j.Error.Message}
		}
		g, ok := groups[k]
		if !ok {
			g = &FailureGroup{Code: k.code, Message: k.msg, Sample: j}
			if j.Error != nil {
				g.Category = j.Error.Category
			}
			groups[k], companies[k], kinds[k] = g, map[string]bool{}, map[tasks.Kind]bool{}
		}
		g.Count++
		// Failures recorded in the same instant (the record keeps
		// milliseconds) are told apart by their time-ordered IDs, so that
		// the sample does not depend on the order Each visits them in.
		if g.Oldest.IsZero() || j.UpdatedAt.Before(g.Oldest) || j.UpdatedAt.Equal(g.Oldest) && j.ID < g.Sample.ID {
			g.Oldest, g.Sample = j.UpdatedAt, j
		}
		if cc := CompanyCodeOf(j); cc != "" {
			companies[k][cc] = true
		}
		kinds[k][j.Kind] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]FailureGroup, 0, len(groups))
	for k, g := range groups {
		for cc := range companies[k] {
			g.CompanyCodes = append(g.CompanyCodes, cc)
		}
		for kind := range kinds[k] {
			g.Kinds = append(g.Kinds, kind)
		}
		slices.Sort(g.CompanyCodes)
		slices.Sort(g.Kinds)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b FailureGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), a.Oldest.Compare(b.Oldest), strings.Compare(a.Code, b.Code))
	})
	return out, nil
}

// BulkAction is what a bulk operation does to each selected job.
type BulkAction string

const (
	// BulkReprocess queues failed jobs again with a fresh retry budget.
	BulkReprocess BulkAction = "reprocess"
	// BulkDiscard cancels failed jobs for which SAP holds no document: they
	// will never be posted or reprocessed.
	BulkDiscard BulkAction = "discard"
)

// BulkOptions configures a bulk operation.
type BulkOptions struct {
	// Chunk is how many jobs are handled between two progress reports
	// (default 100).
	Chunk int
	// Progress, when set, is called after every chunk.
	Progress func(BulkProgress)
	// SAP, when set, lets a discard look up jobs that were never sent
	// (see Cancel); without it they are skipped.
	SAP SAPLookup
}

// BulkProgress says how far a bulk operation has come.
type BulkProgress struct {
	Selected, Done, Skipped int
}

// BulkSkip is a selected job the operation left as it was, and why.
type BulkSkip struct {
	ID     string
	Reason string
}

// BulkResult is what a bulk operation did.
type BulkResult struct {
	Action BulkAction
	// Selected is how many jobs matched when the operation began.
	Selected int
	Done     int
	Skipped  []BulkSkip
	// Started is when the selection was taken: run the same filter with
	// FailedBefore = Started to resume after an interruption without
	// picking up jobs that failed again meanwhile.
	Started time.Time
	// Interrupted is true when ctx ended before every job was handled.
	Interrupted bool
}

// Bulk applies action to every job that matches f. It selects first (f's
// Status is taken to be failed, the only status either action applies to),
// then acts on one job at a time, so it may be interrupted (ctx) at any
// point and run again: what it did stays done, and a job it did not reach
// still matches.
func (l *Ledger) Bulk(ctx context.Context, action BulkAction, f Filter, opts BulkOptions) (BulkResult, error) {
	if action != BulkReprocess && action != BulkDiscard {
		return BulkResult{}, fmt.Errorf("ledger: unknown bulk action %q", action)
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 100
	}
	// The ledger stores times in milliseconds: everything failed up to
	// and including this millisecond is selected.
	res := BulkResult{Action: action, Started: l.opts.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)}
	f.Status = tasks.StatusFailed
	if f.FailedBefore.IsZero() || f.FailedBefore.After(res.Started) {
		f.FailedBefore = res.Started
	}
	var ids []string
	if err := l.Each(ctx, f, func(j tasks.Job) error { ids = append(ids, j.ID); return nil }); err != nil {
		return res, err
	}
	res.Selected = len(ids)
	report := func() {
		if opts.Progress != nil {
			opts.Progress(BulkProgress{Selected: res.Selected, Done: res.Done, Skipped: len(res.Skipped)})
		}
	}
	for _, chunk := range chunked(ids, opts.Chunk) {
		for _, id := range chunk {
			if ctx.Err() != nil {
				res.Interrupted = true
				report()
				return res, nil
			}
			var err error
			switch action {
			case BulkReprocess:
				_, err = l.Reprocess(ctx, id)
			case BulkDiscard:
				_, err = l.Cancel(ctx, "", id, opts.SAP)
			}
			switch {
			case err == nil:
				res.Done++
			case ctx.Err() != nil:
				res.Interrupted = true
				report()
				return res, nil
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotFailed), errors.Is(err, ErrNotCancellable), errors.Is(err, ErrStillFinishing):
				res.Skipped = append(res.Skipped, BulkSkip{ID: id, Reason: err.Error()})
			default:
				return res, fmt.Errorf("ledger: %s %s: %w", action, id, err)
			}
		}
		report()
	}
	return res, nil
}
