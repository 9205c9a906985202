package redistest

import (
	"context"
	"testing"
)

var srv *Server

func TestMain(m *testing.M) { Main(m, &srv) }

func TestServerIsPrivateAndIsolated(t *testing.T) {
	a, dbA := srv.NewDB(t)
	b, dbB := srv.NewDB(t)
	if dbA == dbB {
		t.Fatalf("two clients share db %d", dbA)
	}
	ctx := context.Background()
	if err := a.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Exists(ctx, "k").Result(); n != 0 {
		t.Fatalf("db %d sees a key written to db %d", dbB, dbA)
	}
	policy, err := a.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil || policy["maxmemory-policy"] != "noeviction" {
		t.Fatalf("maxmemory-policy = %v (%v), want noeviction", policy, err)
	}
	if srv.Addr == "127.0.0.1:6379" {
		t.Fatal("test server must not use the shared port 6379")
	}
}
