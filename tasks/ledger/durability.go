package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrUnsafeRedis is the class of the error CheckRedis returns for a Redis
// that would silently drop postings.
var ErrUnsafeRedis = errors.New("redis is configured to lose data silently")

// CheckRedis checks, on every master, the settings the ledger's promise
// rests on, and is called by every process at start:
//
//   - maxmemory-policy must be noeviction. An evicting Redis deletes jobs,
//     idempotency keys and asynq's lease entries without a trace (a task
//     whose lease entry is evicted is never recovered). This is an error
//     unless unsafe is set.
//   - persistence: AOF off, or appendfsync other than always or everysec,
//     loses more than the last second on a crash. The loss window (see
//     loss.go) keeps that safe, but every restart then forgets postings:
//     it is warned about loudly.
//   - loss detection needs INFO inside scripts; where it is refused, Redis
//     losses go unnoticed and the look-up before each call is the only guard.
//
// Where CONFIG is disabled (managed Redis), the settings cannot be read: it
// says so and goes on.
func CheckRedis(ctx context.Context, rdb redis.UniversalClient, unsafe bool, log *slog.Logger) error {
	var mu sync.Mutex
	var problems []string
	check := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		warn := func(msg string, args ...any) {
			level := slog.LevelWarn
			if unsafe {
				level = slog.LevelInfo
			}
			log.Log(ctx, level, msg, append([]any{"redis", addr}, args...)...)
		}
		cfg, err := c.ConfigGet(ctx, "*").Result()
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err != nil:
			log.Warn("cannot read the Redis configuration (CONFIG is disabled, as on many managed services): make sure maxmemory-policy is noeviction and AOF persistence is on",
				"redis", addr, "err", err)
		default:
			if p := cfg["maxmemory-policy"]; p != "noeviction" {
				if !unsafe {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s has maxmemory-policy %s: an evicting Redis deletes postings without a trace; set maxmemory-policy noeviction (or pass --redis-unsafe for a throwaway setup)", addr, p))
					mu.Unlock()
				} else {
					warn("maxmemory-policy is not noeviction; allowed by --redis-unsafe", "maxmemory-policy", p)
				}
			}
			switch aof, fsync := cfg["appendonly"], cfg["appendfsync"]; {
			case aof != "yes":
				warn("REDIS PERSISTENCE IS OFF (appendonly no): a Redis restart forgets every posting in flight and every idempotency key; set appendonly yes with appendfsync everysec or always")
			case fsync != "always" && fsync != "everysec":
				warn("Redis appendfsync is "+fsync+": a crash may lose many seconds of postings; use everysec or always", "appendfsync", fsync)
			}
		}
		if repl, err := c.Info(ctx, "replication").Result(); err == nil && infoField(repl, "connected_slaves") != "" && infoField(repl, "connected_slaves") != "0" {
			if cfg != nil && (cfg["min-replicas-to-write"] == "" || cfg["min-replicas-to-write"] == "0") {
				warn("this master has replicas but min-replicas-to-write is 0: a master cut off from its replicas keeps accepting writes after they promoted another, and sapq workers still connected to it may send while the new master's loss window runs; set min-replicas-to-write 1 and min-replicas-max-lag 10")
			}
		}
		info, err := c.Eval(ctx, "return redis.pcall('INFO', 'server')", nil).Text()
		if err != nil || !strings.Contains(info, "run_id:") {
			warn("scripts cannot read the Redis run_id (INFO): a restart or failover that loses writes will not be noticed by the ledger; the look-up in SAP before every call remains")
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		err = check(ctx, c)
	default:
		return fmt.Errorf("ledger: cannot check Redis client of type %T", rdb)
	}
	if err != nil {
		return fmt.Errorf("ledger: check redis: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrUnsafeRedis, strings.Join(problems, "; "))
	}
	return nil
}

// infoField returns a field of an INFO section ("name:value" lines).
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
