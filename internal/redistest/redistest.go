// Package redistest starts a private redis-server for a test package.
//
// Tests talk to a real Redis, never a mock and never a shared instance on
// 6379: each package gets its own server on a free loopback port, with
// persistence off and the noeviction policy asynq needs (an evicted lease
// entry strands a task forever).
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server owned by the test process.
type Server struct {
	Addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	output bytes.Buffer  // the server's log; read only after exited
	dir    string
	mu     sync.Mutex
	free   []int // logical DBs not in use by a test
}

// Start launches redis-server on a free loopback port. It returns an error
// with install instructions when the binary is missing.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-server not found on PATH; install it (Debian: apt-get install -y redis-server) or run .ci/run, which does: %w", err)
	}
	dir, err := os.MkdirTemp("", "sapq-redistest-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	// The free port is released before redis-server binds it, so another
	// process (another package's server) may take it first; then this one
	// exits and the next port is tried.
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, exited: make(chan struct{})}
		s.cmd = exec.Command(bin,
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--maxmemory-policy", "noeviction", "--databases", strconv.Itoa(databases),
			"--daemonize", "no", "--loglevel", "warning")
		s.cmd.Stdout, s.cmd.Stderr = &s.output, &s.output
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("redistest: start redis-server: %w", err)
		}
		go func() { s.cmd.Wait(); close(s.exited) }()
		for db := range databases {
			s.free = append(s.free, db)
		}
		if lastErr = s.waitReady(10 * time.Second); lastErr == nil {
			return s, nil
		}
		s.kill()
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redistest: redis-server did not become ready: %w", lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until this server, and not another process that took its
// port, answers.
func (s *Server) waitReady(limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	want := fmt.Sprintf("process_id:%d", s.cmd.Process.Pid)
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, bytes.TrimSpace(s.output.Bytes()))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if strings.Contains(info, want+"\r\n") {
				return nil
			}
			return fmt.Errorf("%s is served by another process", s.Addr)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // polling a child process we just started; there is nothing to await
	}
}

func (s *Server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// Stop terminates the server and removes its directory.
func (s *Server) Stop() {
	s.kill()
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
// through the returned accessor. Use it from TestMain:
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
	code := m.Run()
	s.Stop()
	os.Exit(code)
}
