package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// PersistentOptions configure StartPersistent.
type PersistentOptions struct {
	// AppendFsync is the appendfsync policy: "always", "everysec" (the
	// default) or "no".
	AppendFsync string
	// Args are more redis-server arguments, after sapq's own (a later
	// argument overrides an earlier one): "--rename-command", "CONFIG", "".
	Args []string
}

// PersistentServer is a redis-server with an append-only file that a test
// can crash, restart and roll back, always on the same port: the "Redis
// loses its last writes" cases of the protocol (an AOF everysec crash, a
// failover to a replica that lagged).
//
// Its methods belong to the test that started it: they fail that test
// (t.Fatal) on error and must be called from its goroutine.
type PersistentServer struct {
	t       testing.TB
	bin     string
	fsync   string
	extra   []string
	addr    string
	dir     string       // everything of this server; removed when the test ends
	dataDir string       // redis-server --dir; the AOF is in dataDir/appendonlydir
	proc    *process     // nil while the server is down
	hold    net.Listener // holds the port while the server is down
	snaps   int          // snapshots taken, to name their directories
}

// appendDir is the directory Redis 7 keeps its multi-part AOF in (a base
// file, incremental files and a manifest naming them), under --dir.
const appendDir = "appendonlydir"

// StartPersistent starts a redis-server with AOF on (appendonly yes, no RDB
// snapshots, no automatic AOF rewrites) and maxmemory-policy noeviction on
// a free loopback port. It is killed and its files removed when the test
// ends.
func StartPersistent(t testing.TB, opts PersistentOptions) *PersistentServer {
	t.Helper()
	if opts.AppendFsync == "" {
		opts.AppendFsync = "everysec"
	}
	switch opts.AppendFsync {
	case "always", "everysec", "no":
	default:
		t.Fatalf("redistest: AppendFsync %q: want always, everysec or no", opts.AppendFsync)
	}
	bin, err := lookPath7("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sapq-redistest-aof-")
	if err != nil {
		t.Fatal(err)
	}
	s := &PersistentServer{t: t, bin: bin, fsync: opts.AppendFsync, extra: opts.Args, dir: dir, dataDir: filepath.Join(dir, "data")}
	t.Cleanup(s.cleanup)
	if err := os.Mkdir(s.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	proc, err := launch(bin, func(port int) ([]string, error) { return s.args(port), nil })
	if err != nil {
		t.Fatal(err)
	}
	s.proc, s.addr = proc, proc.addr
	return s
}

func (s *PersistentServer) args(port int) []string {
	return append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", s.dataDir,
		"--appendonly", "yes", "--appendfsync", s.fsync, "--appenddirname", appendDir,
		// The AOF files change only when a test asks (RewriteAOF), so a
		// Snapshot never races a rewrite that swaps them.
		"--auto-aof-rewrite-percentage", "0",
		"--save", "", "--maxmemory-policy", "noeviction",
		"--daemonize", "no", "--loglevel", "warning"}, s.extra...)
}

func (s *PersistentServer) cleanup() {
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	if s.hold != nil {
		s.hold.Close()
	}
	os.RemoveAll(s.dir)
}

// Addr is the server's address; it stays the same across restarts.
func (s *PersistentServer) Addr() string { return s.addr }

// Options are go-redis options for the server.
func (s *PersistentServer) Options() *redis.Options { return &redis.Options{Addr: s.addr} }

// Client returns a client of the server, closed when the test ends. It
// reconnects after a restart.
func (s *PersistentServer) Client() *redis.Client {
	c := redis.NewClient(s.Options())
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Running tells whether the server is up.
func (s *PersistentServer) Running() bool { return s.proc != nil }

// Kill crashes the server with SIGKILL. What it had written to its AOF
// files stays (the files are in the page cache whether or not fsynced);
// what it had not written yet is lost, as in a crash of the process.
func (s *PersistentServer) Kill() {
	s.t.Helper()
	s.mustRun("Kill")
	s.proc.kill()
	s.proc = nil
	s.holdPort()
}

// Shutdown stops the server cleanly with SHUTDOWN, which writes and fsyncs
// the AOF first: nothing acknowledged is lost.
func (s *PersistentServer) Shutdown() {
	s.t.Helper()
	s.mustRun("Shutdown")
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The connection closes as the server exits; go-redis reports that as
	// success.
	if err := c.Shutdown(ctx).Err(); err != nil {
		s.t.Fatalf("redistest: SHUTDOWN %s: %v", s.addr, err)
	}
	select {
	case <-s.proc.exited:
	case <-ctx.Done():
		s.t.Fatalf("redistest: %s still running 10s after SHUTDOWN: %s", s.addr, s.proc.log.tail())
	}
	s.proc = nil
	s.holdPort()
}

// holdPort binds the server's port while it is down, so that another test
// process looking for a free port does not take it.
func (s *PersistentServer) holdPort() {
	if l, err := net.Listen("tcp", s.addr); err == nil {
		s.hold = l
	}
}

// Start starts the stopped server again on the same port, loading its AOF.
// It fails the test clearly if the port was taken meanwhile.
func (s *PersistentServer) Start() {
	s.t.Helper()
	if s.proc != nil {
		s.t.Fatalf("redistest: Start: %s is already running", s.addr)
	}
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *PersistentServer) start() error {
	if s.hold != nil {
		s.hold.Close()
		s.hold = nil
	}
	_, portStr, _ := net.SplitHostPort(s.addr)
	port, _ := strconv.Atoi(portStr)
	proc, err := spawn(s.bin, s.addr, s.args(port))
	if err != nil {
		return err
	}
	if err := proc.waitReady(readyLimit); err != nil {
		proc.kill()
		if portTaken(proc, err) {
			return fmt.Errorf("redistest: cannot restart redis-server on %s: another process took the port while the server was down: %w", s.addr, err)
		}
		return fmt.Errorf("redistest: restart redis-server on %s: %w", s.addr, err)
	}
	s.proc = proc
	return nil
}

// Restart stops the server cleanly (Shutdown) if it runs and starts it
// again on the same port. After Kill it is the same as Start.
func (s *PersistentServer) Restart() {
	s.t.Helper()
	if s.proc != nil {
		s.Shutdown()
	}
	s.Start()
}

// RunID is the server's run_id, which changes with every start.
func (s *PersistentServer) RunID() string {
	s.t.Helper()
	info := s.info("server")
	id := infoField(info, "run_id")
	if id == "" {
		s.t.Fatalf("redistest: no run_id in INFO of %s", s.addr)
	}
	return id
}

// RewriteAOF runs BGREWRITEAOF and waits until it has finished: the new
// base file, which the rewrite writes and fsyncs before switching to it,
// holds every write acknowledged before the call.
func (s *PersistentServer) RewriteAOF() {
	s.t.Helper()
	s.mustRun("RewriteAOF")
	before := infoField(s.info("persistence"), "aof_rewrites")
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	if err := c.BgRewriteAOF(context.Background()).Err(); err != nil {
		s.t.Fatalf("redistest: BGREWRITEAOF on %s: %v", s.addr, err)
	}
	err := poll(30*time.Second, "the AOF rewrite on "+s.addr, func(ctx context.Context) error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if infoField(info, "aof_rewrites") == before || infoField(info, "aof_rewrite_in_progress") != "0" {
			return errors.New("rewrite not finished")
		}
		if st := infoField(info, "aof_last_bgrewrite_status"); st != "ok" {
			return permanent(fmt.Errorf("aof_last_bgrewrite_status:%s: %s", st, s.proc.log.tail()))
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
}

// Snapshot is a copy of a PersistentServer's data directory (its AOF).
type Snapshot struct{ dir string }

// Snapshot copies the server's AOF files as they are on disk now, without
// asking Redis for anything (no BGREWRITEAOF, no fsync): the copy holds what
// Redis has handed to the kernel, fsynced or not, which is what a SIGKILL at
// this moment would leave. With appendfsync always it holds every write
// acknowledged before the call; with everysec Redis may hold writes back
// for up to 2 s while an fsync is slow, so a write acknowledged just before
// can be missing. A write running during the copy may be in it or not; a
// command cut off at the end of the file is dropped when Redis loads it
// (aof-load-truncated). So restarting from a snapshot rolls the server back
// to a prefix of its write history. The snapshot can be used many times; it
// is removed when the test ends. It waits for an AOF rewrite in progress
// (RewriteAOF called from another goroutine) to finish, since a rewrite
// swaps the files being copied.
func (s *PersistentServer) Snapshot() Snapshot {
	s.t.Helper()
	if s.proc != nil {
		c := redis.NewClient(&redis.Options{Addr: s.addr})
		defer c.Close()
		err := poll(30*time.Second, "no AOF rewrite on "+s.addr, func(ctx context.Context) error {
			info, err := c.Info(ctx, "persistence").Result()
			if err != nil {
				return err
			}
			if infoField(info, "aof_rewrite_in_progress") != "0" || infoField(info, "aof_rewrite_scheduled") != "0" {
				return errors.New("an AOF rewrite is in progress")
			}
			return nil
		})
		if err != nil {
			s.t.Fatalf("redistest: Snapshot: %v", err)
		}
	}
	s.snaps++
	snap := Snapshot{dir: filepath.Join(s.dir, "snapshot-"+strconv.Itoa(s.snaps))}
	if err := os.CopyFS(snap.dir, os.DirFS(s.dataDir)); err != nil {
		s.t.Fatalf("redistest: Snapshot: copy %s: %v", s.dataDir, err)
	}
	return snap
}

// RestartFrom kills the server (SIGKILL) if it runs, replaces its data with
// the snapshot and starts it again on the same port: Redis comes back with
// the writes the snapshot holds and none of the later ones, as after a
// failover to a replica that lagged behind or a crash that lost the last
// writes. Its run_id changes as with any restart.
func (s *PersistentServer) RestartFrom(snap Snapshot) {
	s.t.Helper()
	if snap.dir == "" {
		s.t.Fatal("redistest: RestartFrom: empty Snapshot")
	}
	if s.proc != nil {
		s.Kill()
	}
	if err := os.RemoveAll(s.dataDir); err != nil {
		s.t.Fatal(err)
	}
	if err := os.CopyFS(s.dataDir, os.DirFS(snap.dir)); err != nil {
		s.t.Fatalf("redistest: RestartFrom: copy snapshot: %v", err)
	}
	s.Start()
}

func (s *PersistentServer) mustRun(op string) {
	s.t.Helper()
	if s.proc == nil {
		s.t.Fatalf("redistest: %s: %s is not running", op, s.addr)
	}
}

func (s *PersistentServer) info(section string) string {
	s.t.Helper()
	s.mustRun("INFO")
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		s.t.Fatalf("redistest: INFO %s on %s: %v", section, s.addr, err)
	}
	return info
}
