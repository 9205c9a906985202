package bench

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// bulkCode is the SAP message the bulk scenario's postings failed with:
// F5/201, a posting period that is not open, the failure an operator fixes
// once and reprocesses in bulk.
const bulkCode = "F5/201"

// bulkRun is one bulk re-queue: its wall time and what Redis saw.
type bulkRun struct {
	name     string
	n        int // postings re-queued
	wall     time.Duration
	longest  slowEntry // the slowest command (SLOWLOG)
	over1ms  int       // commands that took 1 ms or more
	over10ms int
	p100     map[string]float64 // the slowest call per command, µs (INFO latencystats)
	commands int64
	setup    time.Duration
}

type slowEntry struct {
	micros int64
	args   string
}

// bulk re-queues n failed postings with a filter through the ledger's
// bulk reprocess (what `sapq jobs reprocess --code F5/201 --kind
// journal_entry` runs), and n archived tasks with asynq's
// Inspector.RunAllArchivedTasks, and reads the longest Redis command of
// each from SLOWLOG and INFO latencystats.
func (e *env) bulk(ctx context.Context, n int) (Table, error) {
	t := Table{Title: fmt.Sprintf("Bulk reprocessing: %d failed postings re-queued with a filter", n),
		Columns: []string{"run", "re-queued", "wall", "per second", "Redis commands", "longest command", "what", "commands ≥ 1 ms", "commands ≥ 10 ms"}, BarsUnit: "ms, longest Redis command"}
	var runs []bulkRun
	for _, run := range []func() (bulkRun, error){
		func() (bulkRun, error) { return e.bulkSapq(ctx, n) },
		func() (bulkRun, error) { return e.bulkAsynq(ctx, n) },
	} {
		r, err := run()
		if err != nil {
			return t, err
		}
		runs = append(runs, r)
	}
	for _, r := range runs {
		t.Rows = append(t.Rows, []string{r.name, fmt.Sprint(r.n), r.wall.Round(time.Millisecond).String(), num(float64(r.n) / r.wall.Seconds()), fmt.Sprint(r.commands),
			fmt.Sprintf("%.2f ms", float64(r.longest.micros)/1000), "`" + r.longest.args + "`", fmt.Sprint(r.over1ms), fmt.Sprint(r.over10ms)})
		t.Bars = append(t.Bars, Bar{r.name, float64(r.longest.micros) / 1000})
	}
	s := runs[0]
	t.Notes = append(t.Notes,
		fmt.Sprintf("Target: no Redis stall over 10 ms during sapq's bulk reprocess: %s (longest command %.2f ms).", verdict(s.longest.micros <= 10_000), float64(s.longest.micros)/1000),
		"Longest command from SLOWLOG (slowlog-log-slower-than 1000 µs, so every command of 1 ms or more is kept; a run with none reports the slowest call of INFO latencystats, the percentile 100 of Redis's own histogram, instead). "+
			"Commands counted by INFO commandstats over the re-queue alone. No worker runs: the re-queued tasks wait in the queue.",
		fmt.Sprintf("The failed postings are made through the ledger's own calls, as a worker fails them: Submit, Claim, BeginSend, RecordFailure (%s, permanent), %d at a time; then their asynq tasks are archived as asynq's archive does, keeping the newest 10,000 archived tasks and deleting the others' task hashes (asynq trims its archive to 10,000 per queue; the ledger's failed index keeps every failure). Setup took %s.", bulkCode, submitters, s.setup.Round(time.Second)),
		fmt.Sprintf("asynq's side: %d tasks enqueued, then moved to the archive with the keys asynq's ArchiveAllPendingTasks writes, in chunks and without its 10,000 trim (which would leave at most 10,000 to run), and run with one RunAllArchivedTasks call: one script over the whole set, which takes no filter (setup %s).", n, runs[1].setup.Round(time.Second)))
	for _, r := range runs {
		var slowest []string
		for cmd, v := range r.p100 {
			slowest = append(slowest, fmt.Sprintf("%s %.2f ms", cmd, v/1000))
		}
		sort.Strings(slowest)
		if len(slowest) > 0 {
			t.Notes = append(t.Notes, fmt.Sprintf("%s, slowest call per command (INFO latencystats p100): %s.", r.name, strings.Join(slowest, ", ")))
		}
	}
	return t, nil
}

func (e *env) bulkSapq(ctx context.Context, n int) (bulkRun, error) {
	r := bulkRun{name: "sapq jobs reprocess (ledger.Bulk)"}
	if err := e.reset(ctx, 0); err != nil {
		return r, err
	}
	l, err := e.newLedger(ctx)
	if err != nil {
		return r, err
	}
	defer l.Close()
	began := time.Now()
	if err := e.failedPostings(ctx, l, n); err != nil {
		return r, err
	}
	r.setup = time.Since(began)
	if err := e.watchSlow(ctx); err != nil {
		return r, err
	}
	began = time.Now()
	res, err := l.Bulk(ctx, ledger.BulkReprocess, ledger.Filter{Kind: tasks.KindJournalEntry, Code: bulkCode}, ledger.BulkOptions{Chunk: 1000})
	r.wall = time.Since(began)
	if err != nil {
		return r, err
	}
	if res.Done != n || len(res.Skipped) > 0 {
		return r, fmt.Errorf("bench: bulk reprocess re-queued %d of %d (%d skipped, first: %v)", res.Done, n, len(res.Skipped), res.Skipped[:min(1, len(res.Skipped))])
	}
	r.n = res.Done
	return r, e.readSlow(ctx, &r)
}

// failedPostings makes n failed postings through the ledger's own calls,
// as a worker fails them, and archives their tasks as asynq does.
func (e *env) failedPostings(ctx context.Context, l *ledger.Ledger, n int) error {
	run := fmt.Sprint(time.Now().UnixNano())
	ids := make([]string, n)
	if err := submitAll(ctx, n, func(i int) error {
		job, _, err := l.Submit(ctx, "bench", journalEntry(run, i))
		ids[i] = job.ID
		return err
	}); err != nil {
		return err
	}
	jobErr := tasks.JobError{Code: bulkCode, Message: "Posting period 012 2026 is not open", Category: tasks.CategoryPermanent}
	if err := submitAll(ctx, n, func(i int) error {
		claimed, err := l.Claim(ctx, ids[i], 0)
		if err != nil {
			return err
		}
		job := claimed.Job
		sending, err := l.BeginSend(ctx, job, tasks.DefaultDestination, tasks.IdentityOf(&job, tasks.DefaultDestination).Reference())
		if err != nil {
			return err
		}
		return l.RecordFailure(ctx, sending, tasks.StatusFailed, tasks.PhasePending, jobErr)
	}); err != nil {
		return err
	}
	// The worker's failing attempt returns SkipRetry and asynq archives the
	// task; its archive keeps the newest 10,000 and deletes the rest.
	insp := l.Inspector()
	if _, err := insp.ArchiveAllPendingTasks(l.Queue()); err != nil {
		return err
	}
	q := "asynq:{" + l.Queue() + "}:"
	for _, chunk := range chunked(ids, 1000) {
		pipe := e.rdb.Pipeline()
		scores := make([]*redis.FloatCmd, len(chunk))
		for i, id := range chunk {
			scores[i] = pipe.ZScore(ctx, q+"archived", ledger.TaskID(id))
		}
		pipe.Exec(ctx)
		pipe = e.rdb.Pipeline()
		for i, id := range chunk {
			if scores[i].Err() == redis.Nil {
				pipe.Del(ctx, q+"t:"+ledger.TaskID(id))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}

func chunked(s []string, n int) [][]string {
	var out [][]string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// archiveChunk moves up to ARGV[2] pending tasks to the archive, as asynq's
// archiveAllPendingCmd does, without its trim to 10,000. KEYS: pending,
// archived. ARGV: now (Unix s), chunk, task key prefix. Returns how many.
var archiveChunk = redis.NewScript(`
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], ARGV[1], id)
  redis.call('HSET', ARGV[3] .. id, 'state', 'archived')
end
if #ids > 0 then redis.call('LTRIM', KEYS[1], #ids, -1) end
return #ids`)

const bulkQueue = "bench-bulk"

func (e *env) bulkAsynq(ctx context.Context, n int) (bulkRun, error) {
	r := bulkRun{name: "asynq Inspector.RunAllArchivedTasks"}
	if err := e.reset(ctx, 0); err != nil {
		return r, err
	}
	began := time.Now()
	client := asynq.NewClientFromRedisClient(e.rdb)
	run := fmt.Sprint(time.Now().UnixNano())
	if err := submitAll(ctx, n, func(i int) error {
		_, err := client.EnqueueContext(ctx, asynq.NewTask(baselineType, []byte(run+"-"+strconv.Itoa(i))), asynq.Queue(bulkQueue))
		return err
	}); err != nil {
		return r, err
	}
	q := "asynq:{" + bulkQueue + "}:"
	for {
		moved, err := archiveChunk.Run(ctx, e.rdb, []string{q + "pending", q + "archived"}, time.Now().Unix(), 1000, q+"t:").Int()
		if err != nil {
			return r, err
		}
		if moved == 0 {
			break
		}
	}
	r.setup = time.Since(began)
	if err := e.watchSlow(ctx); err != nil {
		return r, err
	}
	began = time.Now()
	done, err := asynq.NewInspectorFromRedisClient(e.rdb).RunAllArchivedTasks(bulkQueue)
	r.wall = time.Since(began)
	if err != nil {
		return r, err
	}
	r.n = done
	return r, e.readSlow(ctx, &r)
}

// watchSlow clears Redis's statistics and slow log and makes it keep every
// command of 1 ms or more, and the slowest call of each command.
func (e *env) watchSlow(ctx context.Context) error {
	for _, kv := range [][2]string{{"slowlog-log-slower-than", "1000"}, {"slowlog-max-len", "100000"}, {"latency-tracking-info-percentiles", "50 99 100"}} {
		if err := e.rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			return fmt.Errorf("bench: CONFIG SET %s: %w", kv[0], err)
		}
	}
	if err := e.rdb.SlowLogReset(ctx).Err(); err != nil {
		return err
	}
	return e.rdb.ConfigResetStat(ctx).Err()
}

func (e *env) readSlow(ctx context.Context, r *bulkRun) error {
	stats, err := e.commandStats(ctx)
	if err != nil {
		return err
	}
	r.commands, _ = totals(stats)
	log, err := e.rdb.SlowLogGet(ctx, 100000).Result()
	if err != nil {
		return err
	}
	for _, s := range log {
		us := s.Duration.Microseconds()
		if isHarness(s.Args) {
			continue
		}
		if us >= 1000 {
			r.over1ms++
		}
		if us >= 10_000 {
			r.over10ms++
		}
		if us > r.longest.micros {
			r.longest = slowEntry{us, describe(s.Args)}
		}
	}
	r.p100 = map[string]float64{}
	info, err := e.rdb.Info(ctx, "latencystats").Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "latency_percentiles_usec_"), ":")
		if !ok || !strings.HasPrefix(strings.TrimSpace(line), "latency_percentiles_usec_") || strings.HasPrefix(name, "info") || strings.HasPrefix(name, "config") || strings.HasPrefix(name, "slowlog") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "p100="); ok {
				us, _ := strconv.ParseFloat(v, 64)
				r.p100[name] = us
			}
		}
	}
	if r.longest.micros == 0 {
		// Nothing took 1 ms: the slowest call any command made.
		for name, us := range r.p100 {
			if int64(us) > r.longest.micros {
				r.longest = slowEntry{int64(us), name + " (latencystats)"}
			}
		}
	}
	return nil
}

func isHarness(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch strings.ToLower(args[0]) {
	case "info", "config", "slowlog":
		return true
	}
	return false
}

// describe names a slow command: its name, and for a script its first
// key, enough to tell asynq's scripts from the ledger's.
func describe(args []string) string {
	if len(args) >= 4 && (strings.EqualFold(args[0], "evalsha") || strings.EqualFold(args[0], "eval")) {
		return strings.ToLower(args[0]) + " … " + args[3]
	}
	if len(args) >= 2 {
		return strings.ToLower(args[0]) + " " + args[1]
	}
	return strings.ToLower(args[0])
}
