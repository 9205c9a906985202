package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what a run found.
type Report struct {
	Seed                  uint64
	Dir                   string // the run's directory: logs/ and Redis's data
	Postings, Submissions int
	Documents             int
	Succeeded, Failed     int
	Duplicates, Lost      int
	Faults                map[string]int // injected by the simulator, by type
	Kills, WorkerExits    int
	RedisFault            string
	Wall                  time.Duration
	Breaches              []string       // each in detail
	BreachKinds           map[string]int // how many of each kind
	Notes                 []string
}

// OK reports whether the run found no breach.
func (r *Report) OK() bool { return len(r.Breaches) == 0 }

// Kinds lists the breaches by kind, as "duplicate:3,lost:1".
func (r *Report) Kinds() string { return counts(r.BreachKinds) }

func counts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = fmt.Sprintf("%s:%d", name, m[name])
	}
	return strings.Join(out, ",")
}

// Summary is the one line a run ends with.
func (r *Report) Summary() string {
	verdict, breaches := "PASS", "0"
	if !r.OK() {
		verdict, breaches = "FAIL", fmt.Sprintf("%d[%s]", len(r.Breaches), r.Kinds())
	}
	return fmt.Sprintf("chaos %s: breaches=%s postings=%d submissions=%d documents=%d duplicates=%d lost=%d failed=%d faults=%s kills=%d redis=%s wall=%s seed=%d",
		verdict, breaches, r.Postings, r.Submissions, r.Documents, r.Duplicates, r.Lost, r.Failed, counts(r.Faults),
		r.Kills, r.RedisFault, r.Wall.Round(100*time.Millisecond), r.Seed)
}

// report holds the outcomes against the simulator's ledger.
func (r *run) report(ctx context.Context, agents []*agent, keys []*keyRun, notes []string) (*Report, error) {
	docs, stats, err := r.readSimulator(ctx)
	if err != nil {
		return nil, err
	}
	outcomes := make([]*outcome, len(keys))
	submissions := 0
	for i, k := range keys {
		k.mu.Lock()
		o := k.out
		k.mu.Unlock()
		outcomes[i] = &o
		submissions += o.submissions
	}
	v := check(outcomes, docs)
	kills, exits := r.workers.counts()
	redisNote := r.redisNote
	if redisNote == "" {
		redisNote = "none(the run ended first)"
	}
	rep := &Report{
		Seed: r.opts.Seed, Postings: v.postings, Submissions: submissions, Documents: v.documents,
		Succeeded: v.succeeded, Failed: v.failed, Duplicates: v.duplicates, Lost: v.lost,
		Faults: map[string]int{}, Kills: kills, WorkerExits: exits, RedisFault: redisNote,
		Wall: time.Since(r.began), Notes: notes, BreachKinds: map[string]int{},
	}
	for kind, n := range stats.Faults {
		rep.Faults[string(kind)] = n
	}
	for _, b := range v.breaches {
		rep.Breaches = append(rep.Breaches, b.String())
		rep.BreachKinds[b.kind]++
	}
	if v.skipped > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d reversals were not submitted: their originals did not succeed", v.skipped))
	}
	renewals, errs := 0, 0
	for _, a := range agents {
		n, e := a.counts()
		renewals, errs = renewals+n, errs+e
	}
	if errs > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d MCP calls failed (retried); the agents opened %d new sessions (see harness.log)", errs, renewals))
	}
	if exits > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("workers exited on their own %d times and were restarted (see the worker logs)", exits))
	}
	return rep, nil
}
