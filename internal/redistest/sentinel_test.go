package redistest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeReplicated writes key on one connection and waits until the replica
// has it, so that a failover cannot lose it.
func writeReplicated(t *testing.T, c *redis.Client, key, value string) {
	t.Helper()
	ctx := context.Background()
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, key, value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d replicas (%v)", n, err)
	}
}

// servedBy is the address of the server a client's commands reach.
func servedBy(t *testing.T, c *redis.Client) string {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", infoField(info, "tcp_port"))
}

func TestSentinelFailoverClientFollowsMaster(t *testing.T) {
	t.Parallel()
	s := StartSentinel(t, SentinelOptions{})
	if s.MasterName() != "sapq" || len(s.SentinelAddrs()) != 3 {
		t.Fatalf("master name %q, sentinels %v", s.MasterName(), s.SentinelAddrs())
	}
	c := s.Client()
	ctx := context.Background()
	first := s.Master()
	if got := servedBy(t, c); got != first {
		t.Fatalf("client served by %s, master is %s", got, first)
	}
	writeReplicated(t, c, "before", "1")

	second := s.Failover()
	if second == first || s.Master() != second {
		t.Fatalf("failover from %s: master now %s (sentinel says %s)", first, second, s.Master())
	}
	if v, err := c.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Fatalf("GET before after the failover = %q, %v", v, err)
	}
	writeReplicated(t, c, "between", "2") // a write needs the master
	if got := servedBy(t, c); got != second {
		t.Fatalf("client served by %s after the failover to %s", got, second)
	}

	// And back: the old master, now a replica, can be promoted again.
	if back := s.Failover(); back != first {
		t.Fatalf("second failover went to %s, want %s", back, first)
	}
	for key, want := range map[string]string{"before": "1", "between": "2"} {
		if v, err := c.Get(ctx, key).Result(); err != nil || v != want {
			t.Fatalf("GET %s after the second failover = %q, %v", key, v, err)
		}
	}
	if err := c.Set(ctx, "after", "3", 0).Err(); err != nil {
		t.Fatalf("SET after the second failover: %v", err)
	}
	if got := servedBy(t, c); got != first {
		t.Fatalf("client served by %s after the failover back to %s", got, first)
	}
}
