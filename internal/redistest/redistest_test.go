package redistest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func TestMissingBinariesAreNamed(t *testing.T) {
	// Not parallel: t.Setenv changes PATH for the whole process.
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	onlyServer := t.TempDir()
	if err := os.Symlink(server, filepath.Join(onlyServer, "redis-server")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onlyServer)
	if _, err := startCluster(ClusterOptions{}); err == nil || !strings.Contains(err.Error(), "redis-cli not found") || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Errorf("cluster without redis-cli: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(); err == nil || !strings.Contains(err.Error(), "redis-server not found") {
		t.Errorf("server without redis-server: %v", err)
	}
}
