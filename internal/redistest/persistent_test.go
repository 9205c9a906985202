package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func setKeys(t *testing.T, c redis.Cmdable, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := c.Set(context.Background(), fmt.Sprintf("%s%d", prefix, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// present returns which of prefix0..prefix(n-1) exist with their values.
func present(t *testing.T, c redis.Cmdable, prefix string, n int) []bool {
	t.Helper()
	found := make([]bool, n)
	for i := range n {
		v, err := c.Get(context.Background(), fmt.Sprintf("%s%d", prefix, i)).Int()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			t.Fatal(err)
		case v != i:
			t.Fatalf("%s%d = %d", prefix, i, v)
		default:
			found[i] = true
		}
	}
	return found
}

func count(found []bool) int {
	n := 0
	for _, f := range found {
		if f {
			n++
		}
	}
	return n
}

func TestPersistentRestartFromSnapshotLosesLaterWrites(t *testing.T) {
	t.Parallel()
	s := StartPersistent(t, PersistentOptions{AppendFsync: "always"})
	c := s.Client()
	ctx := context.Background()
	cfg, err := c.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction", "save": ""} {
		if cfg[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg[k], want)
		}
	}
	addr, runID := s.Addr(), s.RunID()

	setKeys(t, c, "early", 50)
	snap := s.Snapshot()
	setKeys(t, c, "late", 50)
	s.RestartFrom(snap)

	if s.Addr() != addr {
		t.Fatalf("restarted on %s, was %s", s.Addr(), addr)
	}
	if s.RunID() == runID {
		t.Fatal("run_id unchanged by RestartFrom")
	}
	if n := count(present(t, c, "early", 50)); n != 50 {
		t.Fatalf("%d of 50 keys written before the snapshot survived", n)
	}
	if n := count(present(t, c, "late", 50)); n != 0 {
		t.Fatalf("%d of 50 keys written after the snapshot survived", n)
	}

	// The snapshot can be used again: writes since the last restart go too.
	setKeys(t, c, "again", 10)
	s.RestartFrom(snap)
	if n := count(present(t, c, "again", 10)); n != 0 {
		t.Fatalf("%d of 10 keys written after the first rollback survived the second", n)
	}
	if n := count(present(t, c, "early", 50)); n != 50 {
		t.Fatalf("%d of 50 keys written before the snapshot survived the second rollback", n)
	}
}

func TestPersistentKillKeepsRewrittenAOF(t *testing.T) {
	t.Parallel()
	s := StartPersistent(t, PersistentOptions{}) // everysec
	c := s.Client()
	addr, runID := s.Addr(), s.RunID()

	setKeys(t, c, "rewritten", 100)
	s.RewriteAOF()
	setKeys(t, c, "after", 100)
	s.Kill()
	if s.Running() {
		t.Fatal("running after Kill")
	}
	s.Restart()

	if s.Addr() != addr || s.RunID() == runID {
		t.Fatalf("after restart: %s run_id %s, before: %s run_id %s", s.Addr(), s.RunID(), addr, runID)
	}
	if n := count(present(t, c, "rewritten", 100)); n != 100 {
		t.Fatalf("%d of 100 keys written before BGREWRITEAOF survived the kill", n)
	}
	// With everysec the later keys may or may not have reached the file,
	// but Redis comes back with a prefix of its history: no key is there
	// unless every key written before it is.
	after := present(t, c, "after", 100)
	for i := 1; i < len(after); i++ {
		if after[i] && !after[i-1] {
			t.Fatalf("after%d survived but after%d, written before it, did not", i, i-1)
		}
	}
	t.Logf("%d of 100 keys written after the rewrite survived SIGKILL", count(after))
}

func TestPersistentShutdownKeepsEverything(t *testing.T) {
	t.Parallel()
	s := StartPersistent(t, PersistentOptions{AppendFsync: "no"})
	c := s.Client()
	setKeys(t, c, "k", 100)
	s.Shutdown()
	s.Start()
	if n := count(present(t, c, "k", 100)); n != 100 {
		t.Fatalf("%d of 100 keys survived a clean shutdown", n)
	}
	s.Restart() // clean too, while running
	if n := count(present(t, c, "k", 100)); n != 100 {
		t.Fatalf("%d of 100 keys survived Restart", n)
	}
}

func TestPersistentRestartFailsClearlyWhenPortTaken(t *testing.T) {
	t.Parallel()
	s := StartPersistent(t, PersistentOptions{})
	s.Kill()
	// Another process takes the port while the server is down: here this
	// test, after releasing the server's hold on it.
	if s.hold == nil {
		t.Fatal("the port is not held while the server is down")
	}
	s.hold.Close()
	s.hold = nil
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = s.start()
	if err == nil || !strings.Contains(err.Error(), "another process took the port") {
		t.Fatalf("start on a taken port: %v", err)
	}
	t.Log(err)
	if s.Running() {
		t.Fatal("running after a failed start")
	}
	l.Close()
	s.Start()
	if err := s.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}
