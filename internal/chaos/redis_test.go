package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTestRedis starts the harness's redis-server in a test directory.
func startTestRedis(t *testing.T) (*redisServer, *redis.Client) {
	t.Helper()
	dir := t.TempDir()
	rd, err := startRedis(filepath.Join(dir, "data"), filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !rd.proc.Exited() {
			rd.kill()
		}
	})
	c := redis.NewClient(&redis.Options{Addr: rd.addr()})
	t.Cleanup(func() { c.Close() })
	return rd, c
}

func setKeys(t *testing.T, c *redis.Client, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := c.Set(context.Background(), fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func countKeys(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	n, err := c.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// awaitFsync waits until Redis has no AOF write or fsync outstanding. With
// appendfsync everysec Redis answers a write it postponed because an fsync
// is running (up to 2s): even a killed process, not only a crashed machine,
// loses the last second. Tests that expect every write in the files wait.
func awaitFsync(t *testing.T, c *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.InfoMap(context.Background(), "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		p := info["Persistence"]
		if p["aof_enabled"] != "1" {
			t.Fatalf("AOF is off: %v", p)
		}
		if p["aof_buffer_length"] == "0" && p["aof_pending_bio_fsync"] == "0" && p["aof_last_write_status"] == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("AOF not fsynced: %v", p)
		}
		time.Sleep(50 * time.Millisecond) // polling Redis's own status
	}
}

func TestRedisSettings(t *testing.T) {
	_, c := startTestRedis(t)
	ctx := context.Background()
	for name, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"} {
		got, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
}

func TestRedisRestartsKeepWrites(t *testing.T) {
	for _, fault := range []RedisFault{RedisShutdown, RedisKill} {
		t.Run(string(fault), func(t *testing.T) {
			rd, c := startTestRedis(t)
			setKeys(t, c, 0, 100)
			awaitFsync(t, c)
			port := rd.port
			if fault == RedisShutdown {
				if err := rd.shutdown(); err != nil {
					t.Fatal(err)
				}
			} else {
				rd.kill()
			}
			if err := rd.start(); err != nil {
				t.Fatal(err)
			}
			if rd.port != port {
				t.Errorf("restarted on port %d, want %d", rd.port, port)
			}
			if n := countKeys(t, c); n != 100 {
				t.Errorf("%d keys after the restart, want 100", n)
			}
		})
	}
}

func TestRedisRollbackLosesLaterWrites(t *testing.T) {
	rd, c := startTestRedis(t)
	setKeys(t, c, 0, 100)
	awaitFsync(t, c)
	snap := filepath.Join(t.TempDir(), "snap")
	if err := rd.snapshot(snap); err != nil {
		t.Fatal(err)
	}
	setKeys(t, c, 100, 150)
	rd.kill()
	if err := rd.restore(snap); err != nil {
		t.Fatal(err)
	}
	if err := rd.start(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, c); n != 100 {
		t.Errorf("%d keys after the rollback, want the 100 written before the snapshot", n)
	}
	if err := c.Get(context.Background(), "k120").Err(); err != redis.Nil {
		t.Errorf("k120, written after the snapshot: %v, want it gone", err)
	}
	// The rolled-back Redis goes on taking writes, and keeps them.
	setKeys(t, c, 200, 210)
	awaitFsync(t, c)
	rd.kill()
	if err := rd.start(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, c); n != 110 {
		t.Errorf("%d keys after a restart of the rolled-back Redis, want 110", n)
	}
}
