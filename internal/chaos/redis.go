package chaos

import (
	"context"
	"errors"
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisFault is the Redis failure a run goes through once, mid-run.
type RedisFault string

const (
	// RedisShutdown is a clean SHUTDOWN (the AOF is flushed) and a restart
	// on the same port: nothing is lost, every connection drops.
	RedisShutdown RedisFault = "shutdown"
	// RedisKill is SIGKILL and a restart on the same port: with appendfsync
	// everysec the last second of writes may be lost.
	RedisKill RedisFault = "kill"
	// RedisRollback is SIGKILL and a restart from a copy of the AOF taken
	// RollbackAge earlier: Redis comes back having lost its last seconds of
	// writes, as after a failover to a lagging replica.
	RedisRollback RedisFault = "rollback"
)

// RedisFaults lists the faults --redis-fault accepts.
var RedisFaults = []RedisFault{RedisShutdown, RedisKill, RedisRollback}

// ParseRedisFault checks a --redis-fault value.
func ParseRedisFault(s string) (RedisFault, error) {
	for _, f := range RedisFaults {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown Redis fault %q: one of shutdown, kill, rollback", s)
}

// aofDir is Redis 7's multi-part AOF directory (appenddirname): the
// manifest, the base file and the incremental files.
const aofDir = "appendonlydir"

// redisServer is a redis-server with the settings sapq requires in
// production (AOF with fsync every second, noeviction), on a loopback port
// that stays the same across restarts.
type redisServer struct {
	bin, dir, logPath string
	port              int
	proc              *child.Process
}

func startRedis(dir, logPath string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("chaos: redis-server not found on PATH (Debian: apt-get install -y redis-server): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &redisServer{bin: bin, dir: dir, logPath: logPath}
	var lastErr error
	for range 5 {
		if r.port, err = child.FreePort(); err != nil {
			return nil, err
		}
		if lastErr = r.start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server on r.port over r.dir and waits until it serves
// (it answers LOADING while it reads the AOF).
func (r *redisServer) start() error {
	args := []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--appenddirname", aofDir,
		"--maxmemory-policy", "noeviction", "--save", "",
		// No AOF rewrite during the run: a rewrite replaces the files a
		// rollback snapshot copies while it copies them.
		"--auto-aof-rewrite-percentage", "0",
		"--daemonize", "no", "--loglevel", "notice",
	}
	p, err := child.Start("redis", r.logPath, r.bin, args, child.Env())
	if err != nil {
		return err
	}
	if err := r.awaitReady(p, 30*time.Second); err != nil {
		p.Kill()
		return fmt.Errorf("chaos: redis-server on %s (log %s): %w", r.addr(), r.logPath, err)
	}
	r.proc = p
	return nil
}

// awaitReady waits until this process, and not another one that took the
// port, answers PING.
func (r *redisServer) awaitReady(p *child.Process, limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	want := fmt.Sprintf("process_id:%d\r\n", p.PID())
	deadline := time.Now().Add(limit)
	for {
		if p.Exited() {
			return fmt.Errorf("exited: %v", p.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		if err == nil {
			if !strings.Contains(info, want) {
				cancel()
				return errors.New("the port is served by another process")
			}
			err = c.Ping(ctx).Err() // LOADING until the AOF is read
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // a child process starting up; nothing to subscribe to
	}
}

// shutdown ends Redis cleanly: SHUTDOWN flushes the AOF before it exits.
func (r *redisServer) shutdown() error {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The connection closes as Redis exits: that is the answer.
	c.Shutdown(ctx)
	select {
	case <-r.proc.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chaos: redis did not exit after SHUTDOWN")
	}
}

func (r *redisServer) kill() { r.proc.Kill() }

// snapshot copies the AOF directory, as it is on disk now, to dst.
func (r *redisServer) snapshot(dst string) error {
	return copyDir(filepath.Join(r.dir, aofDir), dst)
}

// restore replaces the AOF directory with a snapshot; Redis must be down.
func (r *redisServer) restore(src string) error {
	if !r.proc.Exited() {
		return errors.New("chaos: restore while redis runs")
	}
	live := filepath.Join(r.dir, aofDir)
	if err := os.RemoveAll(live); err != nil {
		return err
	}
	return copyDir(src, live)
}

// copyDir copies the regular files of a flat directory. A file Redis is
// appending to may end in a partial command; Redis truncates it when it
// loads the AOF (aof-load-truncated), as after a crash.
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
