package redistest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The tests share one cluster with replicas; SharedCluster hands it to one
// at a time.
var clusterOpts = ClusterOptions{Replicas: 1}

func TestClusterSpreadsKeysOverMasters(t *testing.T) {
	t.Parallel()
	c := SharedCluster(t, clusterOpts)
	cc := c.Client()
	ctx := context.Background()
	setKeys(t, cc, "key", 200)
	if n := count(present(t, cc, "key", 200)); n != 200 {
		t.Fatalf("read back %d of 200 keys", n)
	}
	masters := c.Masters()
	if len(masters) != 3 || len(c.Addrs()) != 6 {
		t.Fatalf("masters %v of nodes %v, want 3 of 6", masters, c.Addrs())
	}
	for _, m := range masters {
		n, err := nodeClient(t, m).DBSize(ctx).Result()
		if err != nil || n == 0 {
			t.Errorf("master %s holds %d keys (%v)", m, n, err)
		}
	}

	c.FlushAll()
	for _, addr := range c.Addrs() {
		// Replicas too: FlushAll waits for them.
		n, err := nodeClient(t, addr).DBSize(ctx).Result()
		if err != nil || n != 0 {
			t.Errorf("node %s holds %d keys after FlushAll (%v)", addr, n, err)
		}
	}
}

// nodeClient is a client of one node, closed when the test ends.
func nodeClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

var copyBoth = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('MGET', KEYS[1], KEYS[2])`)

func TestClusterScriptsNeedOneSlot(t *testing.T) {
	t.Parallel()
	c := SharedCluster(t, clusterOpts)
	cc := c.Client()
	ctx := context.Background()

	same := []string{"{job:1}:record", "{job:1}:lease"}
	got, err := copyBoth.Run(ctx, cc, same, "v").StringSlice()
	if err != nil || !slices.Equal(got, []string{"v", "v"}) {
		t.Fatalf("script on %v = %v, %v", same, got, err)
	}

	cross := []string{"job:1:record", "job:2:record"}
	s1, _ := cc.ClusterKeySlot(ctx, cross[0]).Result()
	s2, _ := cc.ClusterKeySlot(ctx, cross[1]).Result()
	if s1 == s2 {
		t.Fatalf("test keys %v share slot %d", cross, s1)
	}
	_, err = copyBoth.Run(ctx, cc, cross, "v").Result()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("script on slots %d and %d: %v, want CROSSSLOT", s1, s2, err)
	}
}

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := SharedCluster(t, clusterOpts)
	cc := c.Client()
	ctx := context.Background()
	setKeys(t, cc, "key", 200)

	masters := c.Masters()
	old := masters[0]
	promoted := c.Failover(old)
	now := c.Masters()
	if !slices.Contains(now, promoted) || slices.Contains(now, old) {
		t.Fatalf("masters after failing %s over to %s: %v", old, promoted, now)
	}
	info, err := nodeClient(t, old).Info(ctx, "replication").Result()
	if err != nil || infoField(info, "role") != "slave" {
		t.Fatalf("old master %s: role %q (%v)", old, infoField(info, "role"), err)
	}

	// CLUSTER FAILOVER loses nothing, and the client follows the new
	// master of slot 0 (MOVED) for reads and writes.
	if n := count(present(t, cc, "key", 200)); n != 200 {
		t.Fatalf("read back %d of 200 keys after the failover", n)
	}
	setKeys(t, cc, "later", 200)
	if n := count(present(t, cc, "later", 200)); n != 200 {
		t.Fatalf("read back %d of 200 keys written after the failover", n)
	}
}
