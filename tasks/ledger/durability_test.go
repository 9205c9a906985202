package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/tasks/ledger"
)

// Every process checks at start that Redis keeps what the ledger writes.
func TestCheckRedis(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, args []string, unsafe bool) (error, string) {
		t.Helper()
		srv := redistest.StartPersistent(t, redistest.PersistentOptions{Args: args})
		var log bytes.Buffer
		err := ledger.CheckRedis(ctx, srv.Client(), unsafe, slog.New(slog.NewTextHandler(&log, nil)))
		return err, log.String()
	}
	t.Run("durable", func(t *testing.T) {
		if err, log := check(t, nil, false); err != nil || log != "" {
			t.Fatalf("a noeviction, AOF everysec Redis: %v, logged %q", err, log)
		}
	})
	t.Run("evicting", func(t *testing.T) {
		err, _ := check(t, []string{"--maxmemory-policy", "allkeys-lru"}, false)
		if !errors.Is(err, ledger.ErrUnsafeRedis) || !strings.Contains(err.Error(), "maxmemory-policy allkeys-lru") {
			t.Fatalf("an evicting Redis: %v, want ErrUnsafeRedis naming the policy", err)
		}
		if err, log := check(t, []string{"--maxmemory-policy", "allkeys-lru"}, true); err != nil || !strings.Contains(log, "allowed by --redis-unsafe") {
			t.Fatalf("an evicting Redis allowed by unsafe: %v, logged %q", err, log)
		}
	})
	t.Run("no persistence", func(t *testing.T) {
		if err, log := check(t, []string{"--appendonly", "no"}, false); err != nil || !strings.Contains(log, "level=WARN") || !strings.Contains(log, "PERSISTENCE IS OFF") {
			t.Fatalf("AOF off: %v, logged %q; want a loud warning and a start", err, log)
		}
		if err, log := check(t, []string{"--appendfsync", "no"}, false); err != nil || !strings.Contains(log, "appendfsync is no") {
			t.Fatalf("appendfsync no: %v, logged %q", err, log)
		}
	})
	t.Run("CONFIG disabled", func(t *testing.T) {
		if err, log := check(t, []string{"--rename-command", "CONFIG", ""}, false); err != nil || !strings.Contains(log, "cannot read the Redis configuration") {
			t.Fatalf("CONFIG disabled: %v, logged %q; want a start that says so", err, log)
		}
	})
}
