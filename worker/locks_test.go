package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/worker"
)

// The leases of SAP objects and destination call slots, on one Redis and
// on a Redis Cluster, where each object's key is in a slot of its own.
func TestLeases(t *testing.T) {
	t.Parallel()
	single, _ := redisSrv.NewDB(t)
	cluster := redistest.SharedCluster(t, redistest.ClusterOptions{}).Client()
	for _, c := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"redis", single}, {"cluster", cluster}} {
		t.Run(c.name, func(t *testing.T) { testLeases(t, c.rdb) })
	}
}

func testLeases(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	const supplier, customer = "supplier/1010/17300001", "customer/1010/10100001"
	enter := func(g *worker.Gate, job string, dest string, objects ...string) (*worker.Pass, error) {
		t.Helper()
		p, err := g.Enter(ctx, job, objects, dest)
		if err != nil && !worker.IsWait(err) {
			t.Fatalf("%s: %v", job, err)
		}
		return p, err
	}
	mustEnter := func(g *worker.Gate, job string, dest string, objects ...string) *worker.Pass {
		t.Helper()
		p, err := enter(g, job, dest, objects...)
		if err != nil {
			t.Fatalf("%s: %v; want the leases", job, err)
		}
		return p
	}
	mustWait := func(g *worker.Gate, job string, dest string, objects ...string) {
		t.Helper()
		if p, err := enter(g, job, dest, objects...); err == nil {
			p.Release()
			t.Fatalf("%s took leases that another attempt holds", job)
		}
	}
	holder := func(object string) string {
		v, err := rdb.Get(ctx, worker.LockKey(object)).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		return v
	}
	awaitEnter := func(g *worker.Gate, job string, dest string, objects ...string) *worker.Pass {
		t.Helper()
		deadline := time.Now().Add(settle)
		for {
			if p, err := enter(g, job, dest, objects...); err == nil {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the leases never came free", job)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	awaitGone := func(object string) {
		t.Helper()
		deadline := time.Now().Add(settle)
		for holder(object) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("the lease of %s never ran out", object)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("objects are taken all or none", func(t *testing.T) {
		g := worker.NewGate(rdb, time.Minute, 0)
		a := mustEnter(g, "a", "d", supplier, customer)
		// The same supplier, as SAP's ALPHA conversion writes it.
		mustWait(g, "b", "d", "supplier/1010/0017300001")
		// A busy object gives back the free one taken with it.
		mustWait(g, "c", "d", "supplier/1010/17300002", customer)
		if h := holder("supplier/1010/17300002"); h != "" {
			t.Fatalf("a job that had to wait still holds a free object (%s)", h)
		}
		other := mustEnter(g, "d", "d", "supplier/1010/17300002")
		other.Release()
		a.Release()
		if holder(supplier) != "" || holder(customer) != "" {
			t.Fatal("released leases are still held")
		}
		mustEnter(g, "b", "d", "supplier/1010/0017300001").Release()
	})

	t.Run("an expired lease's owner cannot touch its successor's", func(t *testing.T) {
		g := worker.NewGate(rdb, 300*time.Millisecond, 0)
		dead := mustEnter(g, "dead", "fence", supplier)
		dead.Die()
		awaitGone(supplier)
		next := mustEnter(g, "next", "fence", supplier)
		if err := dead.Confirm(ctx); !worker.IsWait(err) {
			t.Fatalf("the expired owner confirmed its leases (%v); it must not send", err)
		}
		dead.Release()
		if h := holder(supplier); h != next.Token() {
			t.Fatalf("after the expired owner's release the object is held by %q, want its successor %q", h, next.Token())
		}
		next.Release()
	})

	t.Run("leases are renewed while held", func(t *testing.T) {
		g := worker.NewGate(rdb, time.Second, 1)
		p := mustEnter(g, "long", "renew", supplier)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if holder(supplier) != p.Token() {
				t.Fatal("a held lease ran out")
			}
		}
		if err := p.Confirm(ctx); err != nil {
			t.Fatalf("confirm after renewals: %v", err)
		}
		p.Release()
	})

	t.Run("a destination's slots are capped and come back from the dead", func(t *testing.T) {
		g := worker.NewGate(rdb, 300*time.Millisecond, 2)
		a := mustEnter(g, "a", "cap")
		dead := mustEnter(g, "dead", "cap")
		mustWait(g, "c", "cap")
		mustEnter(g, "elsewhere", "cap-other").Release() // per destination
		a.Release()
		c := mustEnter(g, "c", "cap")
		dead.Die()
		d := awaitEnter(g, "d", "cap") // the dead holder's slot came back
		if n, err := rdb.ZCard(ctx, worker.InFlightKey("cap")).Result(); err != nil || n != 2 {
			t.Fatalf("%d slots held (%v), want c's and d's", n, err)
		}
		c.Release()
		d.Release()
	})

	t.Run("an unknown outcome keeps the leases until SAP must be done", func(t *testing.T) {
		g := worker.NewGate(rdb, 2*time.Second, 1)
		refused := mustEnter(g, "refused", "keep", supplier)
		refused.Sent(time.Now(), &sap.Error{Category: sap.Transient, Code: "MC/601"})
		refused.Release()
		if holder(supplier) != "" {
			t.Fatal("a definite refusal kept its lease")
		}

		began := time.Now()
		unknown := mustEnter(g, "unknown", "keep", supplier)
		unknown.Sent(began, &sap.Error{Category: sap.Unknown, HTTPStatus: 504})
		unknown.Release()
		ttl, err := rdb.PTTL(ctx, worker.LockKey(supplier)).Result()
		if err != nil || ttl <= 0 || ttl > 2*time.Second {
			t.Fatalf("after an unknown outcome the lease runs out in %v (%v); want at most the settle time from the call's beginning", ttl, err)
		}
		mustWait(g, "next", "keep", supplier)
		mustWait(g, "next", "keep")
		awaitEnter(g, "next", "keep", supplier).Release()
	})

	t.Run("no objects and no cap touch nothing", func(t *testing.T) {
		g := worker.NewGate(rdb, time.Second, 0)
		for i := range 3 {
			mustEnter(g, fmt.Sprint("free-", i), "free").Release()
		}
		if n, err := rdb.Exists(ctx, worker.InFlightKey("free")).Result(); err != nil || n != 0 {
			t.Fatalf("without a cap a slot set exists (%d, %v)", n, err)
		}
	})
}
