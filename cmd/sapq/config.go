package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks/ledger"
)

// env returns SAPQ_<name> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("SAPQ_" + name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
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

func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	if env("LOG_FORMAT", "text") == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

// redisFlags are the flags every Redis-backed command shares.
type redisFlags struct{ url string }

func (r *redisFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "redis-url", env("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (env SAPQ_REDIS_URL); a password in it is better given through SAPQ_REDIS_PASSWORD")
}

// options parses the URL and adds the password from the environment.
func (r *redisFlags) options() (*redis.Options, error) {
	opt, err := redis.ParseURL(r.url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	pw, err := secret("REDIS_PASSWORD")
	if err != nil {
		return nil, err
	}
	if pw != "" {
		opt.Password = pw
	}
	return opt, nil
}

func (r *redisFlags) client() (redis.UniversalClient, error) {
	opt, err := r.options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

// ledgerFlags are the flags of every command that works on postings: where
// the ledger and the queue live and how long finished postings are kept.
type ledgerFlags struct {
	redis                      redisFlags
	queue                      string
	retention, failedRetention time.Duration
}

func (l *ledgerFlags) register(fs *flag.FlagSet) {
	l.redis.register(fs)
	fs.StringVar(&l.queue, "queue", env("QUEUE", ledger.DefaultQueue), "asynq queue for postings (env SAPQ_QUEUE)")
	fs.DurationVar(&l.retention, "retention", envDuration("RETENTION", ledger.DefaultRetention), "how long idempotency keys and results of finished postings are kept (env SAPQ_RETENTION); set it alike everywhere")
	fs.DurationVar(&l.failedRetention, "failed-retention", envDuration("FAILED_RETENTION", ledger.DefaultFailedRetention), "how long failed postings stay reprocessable (env SAPQ_FAILED_RETENTION)")
}

// open connects to Redis and returns the ledger on it; the caller closes
// the Redis client.
func (l *ledgerFlags) open(log *slog.Logger) (redis.UniversalClient, *ledger.Ledger, error) {
	rdb, err := l.redis.client()
	if err != nil {
		return nil, nil, err
	}
	led, err := ledger.New(ledger.Options{Redis: rdb, Queue: l.queue, Retention: l.retention, FailedRetention: l.failedRetention, Logger: log})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, led, nil
}

// sapFlags configure the SAP client.
type sapFlags struct {
	url, client, user string
	timeout           time.Duration
}

func (s *sapFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "sap-url", env("SAP_URL", "http://127.0.0.1:8081"), "SAP base URL (env SAPQ_SAP_URL)")
	fs.StringVar(&s.client, "sap-client", env("SAP_CLIENT", "100"), "SAP client, sent as sap-client (env SAPQ_SAP_CLIENT)")
	fs.StringVar(&s.user, "sap-user", env("SAP_USER", "SAPQ_COMM"), "SAP communication user (env SAPQ_SAP_USER); the password comes from SAPQ_SAP_PASSWORD or SAPQ_SAP_PASSWORD_FILE")
	fs.DurationVar(&s.timeout, "sap-timeout", envDuration("SAP_TIMEOUT", 30*time.Second), "timeout of each SAP call (env SAPQ_SAP_TIMEOUT)")
}

func (s *sapFlags) newClient(log *slog.Logger) (*sap.Client, error) {
	pw, err := secret("SAP_PASSWORD")
	if err != nil {
		return nil, err
	}
	return sap.New(sap.Config{BaseURL: s.url, Client: s.client, User: s.user, Password: pw, Timeout: s.timeout, Logger: log})
}
