// Package redistest starts private Redis servers and topologies for tests.
//
// Tests talk to a real Redis, never a mock and never a shared instance on
// 6379: each package gets its own server on a free loopback port, with
// persistence off and the noeviction policy asynq needs (an evicted lease
// entry strands a task forever). For tests of what sapq does when Redis
// misbehaves there are a server with an AOF that can be crashed and rolled
// back (StartPersistent), a Redis Cluster (StartCluster, SharedCluster) and
// a Sentinel-managed master and replica (StartSentinel).
package redistest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server owned by the test process.
type Server struct {
	Addr string
	proc *process
	dir  string
	mu   sync.Mutex
	free []int // logical DBs not in use by a test
}

// Start launches redis-server on a free loopback port. It returns an error
// with install instructions when the binary is missing.
func Start() (*Server, error) {
	bin, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sapq-redistest-")
	if err != nil {
		return nil, err
	}
	proc, err := launch(bin, func(port int) ([]string, error) {
		return []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--maxmemory-policy", "noeviction", "--databases", strconv.Itoa(databases),
			"--daemonize", "no", "--loglevel", "warning"}, nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Addr: proc.addr, proc: proc, dir: dir}
	for db := range databases {
		s.free = append(s.free, db)
	}
	return s, nil
}

// Stop terminates the server and removes its directory.
func (s *Server) Stop() {
	s.proc.kill()
	os.RemoveAll(s.dir)
}

// databases is how many logical DBs one server offers to concurrent tests.
const databases = 64

// NewDB returns a client on a flushed logical database that no running test
// of this package uses; the database goes back to the pool when the test
// ends. It also returns the database number, for a process under test that
// needs its own connection.
func (s *Server) NewDB(t testing.TB) (redis.UniversalClient, int) {
	t.Helper()
	s.mu.Lock()
	if len(s.free) == 0 {
		s.mu.Unlock()
		t.Fatalf("redistest: all %d databases are in use by running tests", databases)
	}
	db := s.free[0]
	s.free = s.free[1:]
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db})
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: flush db %d: %v", db, err)
	}
	t.Cleanup(func() {
		c.Close()
		s.mu.Lock()
		s.free = append(s.free, db)
		s.mu.Unlock()
	})
	return c, db
}

// Main runs a test package's tests against one private server, available
// through the returned accessor, and stops the shared clusters the tests
// started (SharedCluster). Use it from TestMain:
//
//	var redisSrv *redistest.Server
//	func TestMain(m *testing.M) { redistest.Main(m, &redisSrv) }
func Main(m interface{ Run() int }, srv **Server) {
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*srv = s
	shared.Lock()
	shared.underMain = true
	shared.Unlock()
	code := m.Run()
	stopSharedClusters()
	s.Stop()
	os.Exit(code)
}
