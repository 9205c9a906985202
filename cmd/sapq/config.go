package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks/ledger"
)

// env returns SAPQ_<name> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("SAPQ_" + name); ok {
		return v
	}
	return def
}

// envDefaults reads the SAPQ_* variables that give flags their defaults and
// remembers every one that does not parse: a command refuses to start naming
// them, rather than falling back on a default the operator did not ask for.
type envDefaults struct{ problems []error }

func (e *envDefaults) int(name string, def int) int {
	v, ok := os.LookupEnv("SAPQ_" + name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		e.problems = append(e.problems, fmt.Errorf("SAPQ_%s=%q is not a whole number", name, v))
		return def
	}
	return n
}

func (e *envDefaults) duration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv("SAPQ_" + name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		e.problems = append(e.problems, fmt.Errorf("SAPQ_%s=%q is not a duration such as 30s or 5m (%v)", name, v, err))
		return def
	}
	return d
}

func (e *envDefaults) bool(name string, def bool) bool {
	v, ok := os.LookupEnv("SAPQ_" + name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		e.problems = append(e.problems, fmt.Errorf("SAPQ_%s=%q is not true or false", name, v))
		return def
	}
	return b
}

// parse parses the command line and then reports every variable that did
// not parse, and every check that fails, at once.
func (e *envDefaults) parse(fs *flag.FlagSet, args []string, checks ...func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	problems := e.problems
	for _, check := range checks {
		if err := check(); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("configuration: %w", errors.Join(problems...))
	}
	return nil
}

// positive checks, once the flags are parsed, that a flag's value is above
// zero.
func positive[T int | time.Duration](flagName, envName string, v *T) func() error {
	return func() error {
		if *v <= 0 {
			return fmt.Errorf("--%s (SAPQ_%s) must be greater than zero, got %v", flagName, envName, *v)
		}
		return nil
	}
}

// secret reads SAPQ_<name>, or the file named by SAPQ_<name>_FILE. Secrets
// never come from flags: flags show up in ps and shell history.
func secret(name string) (string, error) {
	if path := env(name+"_FILE", ""); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read SAPQ_%s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return env(name, ""), nil
}

// newLogger builds the process's logger from SAPQ_LOG_LEVEL and
// SAPQ_LOG_FORMAT; a value it does not know is a configuration error.
func newLogger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		return nil, fmt.Errorf("configuration: SAPQ_LOG_LEVEL=%q: one of debug, info, warn, error", env("LOG_LEVEL", ""))
	}
	var h slog.Handler
	switch format := env("LOG_FORMAT", "text"); format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	default:
		return nil, fmt.Errorf("configuration: SAPQ_LOG_FORMAT=%q: text or json", format)
	}
	l := slog.New(traceHandler{h})
	slog.SetDefault(l)
	return l, nil
}

// redisFlags are the flags every Redis-backed command shares.
type redisFlags struct {
	url    string
	unsafe bool
	target redisTarget // set by check
}

func (r *redisFlags) register(fs *flag.FlagSet, e *envDefaults) {
	fs.StringVar(&r.url, "redis-url", env("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis: "+redisURLForms+" (env SAPQ_REDIS_URL); the password is better given through SAPQ_REDIS_PASSWORD(_FILE), the sentinels' own through SAPQ_REDIS_SENTINEL_PASSWORD(_FILE)")
	fs.BoolVar(&r.unsafe, "redis-unsafe", e.bool("REDIS_UNSAFE", false), "allow a Redis that may evict keys or keeps nothing on disk, for throwaway setups (env SAPQ_REDIS_UNSAFE)")
}

// check parses the URL and adds the passwords from the environment; it
// runs with the other checks once the flags are parsed.
func (r *redisFlags) check() error {
	t, err := redisTargetOf(r.url)
	if err != nil {
		return fmt.Errorf("--redis-url (SAPQ_REDIS_URL): %w", err)
	}
	r.target = t
	return nil
}

// redisTargetOf parses a Redis URL and adds the passwords from
// SAPQ_REDIS_PASSWORD and SAPQ_REDIS_SENTINEL_PASSWORD (or their _FILE).
func redisTargetOf(rawURL string) (redisTarget, error) {
	t, err := parseRedisURL(rawURL)
	if err != nil {
		return redisTarget{}, err
	}
	pw, err := secret("REDIS_PASSWORD")
	if err != nil {
		return redisTarget{}, err
	}
	sentinelPW, err := secret("REDIS_SENTINEL_PASSWORD")
	if err != nil {
		return redisTarget{}, err
	}
	t.setPasswords(pw, sentinelPW)
	return t, nil
}

// client connects to Redis and checks that it keeps what the ledger writes
// (see ledger.CheckRedis) on every master.
func (r *redisFlags) client(ctx context.Context, log *slog.Logger) (redis.UniversalClient, error) {
	return connectRedis(ctx, r.target, r.unsafe, log)
}

func connectRedis(ctx context.Context, t redisTarget, unsafe bool, log *slog.Logger) (redis.UniversalClient, error) {
	rdb := t.client()
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ledger.CheckRedis(checkCtx, rdb, unsafe, log); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", t, err)
	}
	log.Info("redis", "redis", t.String())
	return rdb, nil
}

// ledgerFlags are the flags of every command that works on postings: where
// the ledger and the queue live and how long finished postings are kept.
type ledgerFlags struct {
	redis                      redisFlags
	queue                      string
	retention, failedRetention time.Duration
}

func (l *ledgerFlags) register(fs *flag.FlagSet, e *envDefaults) {
	l.redis.register(fs, e)
	fs.StringVar(&l.queue, "queue", env("QUEUE", ledger.DefaultQueue), "asynq queue for postings (env SAPQ_QUEUE)")
	fs.DurationVar(&l.retention, "retention", e.duration("RETENTION", ledger.DefaultRetention), "how long idempotency keys and results of finished postings are kept (env SAPQ_RETENTION); set it alike everywhere")
	fs.DurationVar(&l.failedRetention, "failed-retention", e.duration("FAILED_RETENTION", ledger.DefaultFailedRetention), "how long failed postings stay reprocessable (env SAPQ_FAILED_RETENTION)")
}

func (l *ledgerFlags) checks() []func() error {
	return []func() error{
		l.redis.check,
		positive("retention", "RETENTION", &l.retention),
		positive("failed-retention", "FAILED_RETENTION", &l.failedRetention),
	}
}

// open connects to Redis and returns the ledger on it; the caller closes
// the Redis client. settle is the ledger's settle time (0: the default).
func (l *ledgerFlags) open(ctx context.Context, log *slog.Logger, settle time.Duration) (redis.UniversalClient, *ledger.Ledger, error) {
	rdb, err := l.redis.client(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	led, err := ledger.New(ledger.Options{Redis: rdb, Queue: l.queue, Retention: l.retention, FailedRetention: l.failedRetention, Settle: settle, Logger: log})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, led, nil
}

// limitFlags are the limits toward SAP that every worker on the Redis keeps
// together (worker/locks.go). Jobs that change the same SAP object are
// serialised always; the cap on calls in flight is the operator's, for only
// they know how many work processes the SAP system gives the communication
// user.
type limitFlags struct {
	maxInFlight int
}

func (l *limitFlags) register(fs *flag.FlagSet, e *envDefaults) {
	fs.IntVar(&l.maxInFlight, "sap-max-in-flight", e.int("SAP_MAX_IN_FLIGHT", 0), "most calls in flight to each SAP destination across all workers on the Redis (an attempt's look-up and post hold one); 0 for no cap, when the workers' --concurrency added up is the bound; set it alike on every worker (env SAPQ_SAP_MAX_IN_FLIGHT)")
}

func (l *limitFlags) checks() []func() error {
	return []func() error{func() error {
		if l.maxInFlight < 0 {
			return fmt.Errorf("--sap-max-in-flight (SAPQ_SAP_MAX_IN_FLIGHT) must be 0 (no cap) or more, got %d", l.maxInFlight)
		}
		return nil
	}}
}
