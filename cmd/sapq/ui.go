package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// runUI serves the operators' console at /console/ and the Asynq UI at
// /ui/, both behind the console's login.
func runUI(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	var e envDefaults
	var lf ledgerFlags
	lf.register(fs, &e)
	var sf sapFlags
	sf.register(fs, &e)
	addr := fs.String("addr", env("UI_ADDR", "127.0.0.1:8082"), "listen address (env SAPQ_UI_ADDR)")
	readOnly := fs.Bool("read-only", e.bool("UI_READ_ONLY", false), "view only: no reprocess, discard, approval, and no run, delete or archive in the Asynq UI (env SAPQ_UI_READ_ONLY)")
	callersFile := fs.String("callers-file", env("MCP_CALLERS_FILE", ""), "the MCP callers file: its operators log in with their own tokens and may approve postings (env SAPQ_MCP_CALLERS_FILE)")
	publicURL := fs.String("public-url", env("UI_PUBLIC_URL", ""), "the console's URL as browsers see it when a proxy stands in front, e.g. https://sapq.example.com: state-changing requests must come from its origin, and https makes cookies Secure (env SAPQ_UI_PUBLIC_URL)")
	sessionTTL := fs.Duration("session-ttl", e.duration("UI_SESSION_TTL", 8*time.Hour), "how long a login lasts (env SAPQ_UI_SESSION_TTL)")
	var public *url.URL
	checks := append(lf.checks(), sf.checks()...)
	checks = append(checks, positive("session-ttl", "UI_SESSION_TTL", sessionTTL), func() error {
		if *publicURL == "" {
			return nil
		}
		u, err := url.Parse(*publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--public-url (SAPQ_UI_PUBLIC_URL) %q is not an http(s) URL such as https://sapq.example.com", *publicURL)
		}
		public = u
		return nil
	})
	if err := e.parse(fs, args, checks...); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	token, err := secret("UI_TOKEN")
	if err != nil {
		return err
	}
	auth := operatorAuth{token: token}
	if *callersFile != "" {
		if auth.callers, err = mcpfront.LoadCallersFile(*callersFile); err != nil {
			return err
		}
	}
	rdb, led, err := lf.open(ctx, log, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ui := newUI(lf.redis.target.connOpt(), *readOnly, led, sf.destination)
	defer ui.Close()
	c, err := newConsole(consoleOptions{
		Ledger: led, Redis: rdb, Auth: auth, Queues: ui, ReadOnly: *readOnly,
		PublicURL: public, SessionTTL: *sessionTTL,
		SAP:         sf.addresses(),
		Destination: sf.destination, Log: log, Audit: log.With("audit", true),
	})
	if err != nil {
		return err
	}
	defer c.Shutdown()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var ready readiness
	ready.add("redis", pingRedis(rdb))
	mux := opsMux(newRegistry(), &ready)
	c.register(mux)
	log.Info("console listening", "url", "http://"+ln.Addr().String()+"/console/", "asynq_ui", "http://"+ln.Addr().String()+"/ui/", "read_only", *readOnly)
	return serve(ctx, ln, mux)
}

// newUI mounts asynqmon at /ui. asynqmon opens its own Redis connections,
// from the same target as the rest of the process. Its task lists show each
// posting as summarizePosting describes it.
//
// No ResultFormatter: the worker writes no asynq results (the ledger keeps
// each posting's SAP document), and asynq keeps no completed task of a
// posting, so the summary of every task, whatever its state, comes from the
// ledger.
func newUI(redisOpt asynq.RedisConnOpt, readOnly bool, l *ledger.Ledger, destination string) *asynqmon.HTTPHandler {
	return asynqmon.New(asynqmon.Options{
		RootPath:     "/ui",
		RedisConnOpt: redisOpt,
		ReadOnly:     readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return summarizePosting(ctx, l, destination, taskType, payload)
		}),
	})
}

// summarizePosting describes a posting task for the Asynq UI's narrow
// payload column, a line each: where the posting stands (its SAP document,
// or SAP's code and message); its kind, company code, amount and currency;
// its reference in SAP and caller; the job; the posting as submitted.
// Postings carry no secrets.
func summarizePosting(ctx context.Context, l *ledger.Ledger, destination, taskType string, payload []byte) string {
	p, err := ledger.ParseTaskPayload(payload)
	if err != nil {
		return string(payload)
	}
	job, err := l.Get(ctx, "", p.JobID)
	if err != nil {
		// Expired or unreadable: what the task itself says.
		job = tasks.Job{ID: p.JobID, Caller: p.Caller, Kind: tasks.Kind(strings.TrimPrefix(taskType, "posting:")), Payload: p.Posting, Run: p.Run}
	}
	var b strings.Builder
	switch {
	case err != nil:
		fmt.Fprintf(&b, "not in the ledger (%v)\n", err)
	case job.Result != nil:
		fmt.Fprintf(&b, "%s: SAP document %s %s\n", job.Status, job.Result.Document, job.Result.FiscalYear)
	case job.Error != nil:
		fmt.Fprintf(&b, "%s: %s\n", job.Status, strings.TrimSpace(job.Error.Code+" "+job.Error.Message))
	default:
		fmt.Fprintf(&b, "%s\n", job.Status)
	}
	facts := []string{string(job.Kind)}
	if cc := ledger.CompanyCodeOf(job); cc != "" {
		facts = append(facts, "company "+cc)
	}
	if posting, err := job.Posting(); err == nil {
		if f := posting.Facts(); !f.Amount.IsZero() {
			facts = append(facts, f.Amount.StringFixed(2)+" "+f.Currency)
		}
	}
	b.WriteString(strings.Join(facts, " · ") + "\n")
	ref := job.Reference
	if ref == "" && job.Fingerprint != "" {
		ref = tasks.IdentityOf(&job, destination).Reference()
	}
	if ref != "" {
		b.WriteString("ref " + ref + " · ")
	}
	b.WriteString("caller " + job.Caller + "\njob " + job.ID)
	if p.Run != job.Run {
		fmt.Fprintf(&b, "\nstale task of run %d (the job is at run %d)", p.Run, job.Run)
	}
	// The posting on one line: the list stays one row per task, and the
	// task's page shows it whole.
	b.WriteString("\n" + string(p.Posting))
	return b.String()
}

// embeddedRedisOpt connects the Asynq UI to sapq dev's embedded Redis
// (miniredis), whose INFO answers only the clients and stats sections, in
// lines that end in "\n" where asynqmon splits at "\r\n": the UI's Redis
// page would show "undefined days" and NaN. Its clients complete INFO with
// what an in-process Redis can truthfully say (no colon in a value:
// asynqmon splits each line at every colon).
type embeddedRedisOpt struct {
	opt     asynq.RedisClientOpt
	started time.Time
}

func (o embeddedRedisOpt) MakeRedisClient() any {
	c := o.opt.MakeRedisClient().(*redis.Client)
	c.AddHook(embeddedInfo{started: o.started})
	return c
}

type embeddedInfo struct{ started time.Time }

func (embeddedInfo) DialHook(next redis.DialHook) redis.DialHook { return next }

func (embeddedInfo) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h embeddedInfo) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if sc, ok := cmd.(*redis.StringCmd); ok && err == nil && cmd.Name() == "info" && len(cmd.Args()) == 1 {
			up := time.Since(h.started)
			sc.SetVal(fmt.Sprintf("# Server\r\nredis_version:miniredis, embedded in sapq dev\r\nuptime_in_seconds:%d\r\nuptime_in_days:%d\r\n"+
				"# Memory\r\nused_memory_human:in the sapq dev process\r\nused_memory_peak_human:in the sapq dev process\r\nmem_fragmentation_ratio:none\r\n"+
				"# Replication\r\nconnected_slaves:0\r\n"+
				"# Persistence\r\nrdb_last_save_time:0\r\nrdb_changes_since_last_save:none, nothing is saved (the data ends with the process)\r\n",
				int(up.Seconds()), int(up.Hours()/24)) + strings.ReplaceAll(strings.ReplaceAll(sc.Val(), "\r\n", "\n"), "\n", "\r\n"))
		}
		return err
	}
}
