package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/child"
)

// process is a redis-server (or a sentinel) started by the test process.
type process struct {
	addr   string // the loopback address it serves
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    logBuffer     // what it printed: Redis logs to stdout without a logfile
}

// spawn starts bin serving addr; it does not wait for it to answer.
func spawn(bin, addr string, args []string) (*process, error) {
	p := &process{addr: addr, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	// Killed with the test process too: a test binary killed by -timeout
	// runs no cleanup and would leave the server running.
	child.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start %s: %w", bin, err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// exitError describes a process that exited, with the end of its log.
func (p *process) exitError() error {
	return fmt.Errorf("redis process on %s exited (%v): %s", p.addr, p.cmd.ProcessState, p.log.tail())
}

var errServedByOther = errors.New("served by another process")

// waitReady waits until the process, and not another one that took its port,
// answers and has loaded its data.
func (p *process) waitReady(limit time.Duration) error {
	// Short timeouts: something else on the port may accept and not answer
	// (then the child exits, which the next round sees).
	c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	defer c.Close()
	want := fmt.Sprintf("process_id:%d\r\n", p.cmd.Process.Pid)
	return poll(limit, "redis on "+p.addr+" to answer", func(ctx context.Context) error {
		if p.hasExited() {
			return permanent(p.exitError())
		}
		// INFO is served while a server loads its AOF; LOADING errors
		// would follow on every other command.
		info, err := c.Info(ctx, "server", "persistence").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, want) {
			return permanent(fmt.Errorf("%s is %w", p.addr, errServedByOther))
		}
		if strings.Contains(info, "loading:1\r\n") {
			return errors.New("still loading its data")
		}
		return nil
	})
}

// portTaken tells whether a start failed because the port was not free.
func portTaken(p *process, err error) bool {
	return errors.Is(err, errServedByOther) || strings.Contains(p.log.String(), "Address already in use")
}

// launch starts bin on a free loopback port and waits until it answers. args
// gives the command line for a port. The free port is released before the
// child binds it, so another process may take it first; then the child
// exits and launch tries a new port.
func launch(bin string, args func(port int) ([]string, error)) (*process, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		a, err := args(port)
		if err != nil {
			return nil, err
		}
		p, err := spawn(bin, loopback(port), a)
		if err != nil {
			return nil, err
		}
		lastErr = p.waitReady(readyLimit)
		if lastErr == nil {
			return p, nil
		}
		p.kill()
		if !portTaken(p, lastErr) {
			break
		}
	}
	return nil, fmt.Errorf("redistest: %s did not become ready: %w", bin, lastErr)
}

// readyLimit bounds the wait for a started server to answer.
const readyLimit = 10 * time.Second

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// ports remembers every port handed out by this process, so that two servers
// never get the same one and a stopped PersistentServer keeps its own.
var ports struct {
	sync.Mutex
	used map[int]bool
}

// freePort returns a loopback port nothing listens on. It is picked below
// the kernel's ephemeral range, from which the kernel takes the local ports
// of outgoing connections: a port from there may become some client's local
// port while its server is down, and a restart on it would fail.
func freePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	lo, hi := portRange()
	for range 500 {
		var port int
		if hi-lo < 1000 {
			// No room below the ephemeral range: let the kernel choose.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		} else {
			port = lo + rand.IntN(hi-lo)
			l, err := net.Listen("tcp", loopback(port))
			if err != nil {
				continue
			}
			l.Close()
		}
		if !ports.used[port] {
			ports.used[port] = true
			return port, nil
		}
	}
	return 0, errors.New("redistest: no free loopback port found")
}

// portRange is where freePort picks: from 20000 up to the start of
// /proc/sys/net/ipv4/ip_local_port_range.
func portRange() (lo, hi int) {
	lo, hi = 20000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			hi = n
		}
	}
	return lo, hi
}

// poll calls check until it returns nil or a permanent error, or limit has
// passed. check gets a context that ends at the deadline. The error names
// what was awaited and carries the last check's error.
func poll(limit time.Duration, what string, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %w", limit, what, err)
		}
		time.Sleep(pollInterval)
	}
}

// pollInterval is how often a condition on a child process is checked:
// Redis offers nothing to await for most of them (roles, gossip, loading).
const pollInterval = 25 * time.Millisecond

type permanentError struct{ error }

// permanent marks an error that ends a poll at once.
func permanent(err error) error { return permanentError{err} }

// infoField returns a field of an INFO reply ("" when absent).
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}

// lookPath finds a Redis binary, naming the package to install when it is
// missing.
func lookPath(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("redistest: %s not found on PATH; install Redis 7 (Debian: apt-get install -y redis-server, which brings redis-server and redis-cli; Sentinel is redis-server --sentinel) or run .ci/run: %w", name, err)
	}
	return bin, nil
}

// lookPath7 is lookPath for the topologies, which need Redis 7 or later
// (the multi-part AOF, cluster-port, SENTINEL DEBUG).
func lookPath7(name string) (string, error) {
	bin, err := lookPath(name)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("redistest: %s --version: %w", bin, err)
	}
	m := redisVersion.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("redistest: cannot read the version of %s from %q", bin, out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 7 {
		return "", fmt.Errorf("redistest: %s is version %s; the topologies need Redis 7 or later", bin, bytes.TrimSpace(out))
	}
	return bin, nil
}

// redisVersion matches "Redis server v=7.0.15" and "redis-cli 7.0.15".
var redisVersion = regexp.MustCompile(`(?:v=|redis-cli )(\d+)\.`)

// logBuffer keeps what a process printed, bounded, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 1<<20 {
		l.b = append([]byte(nil), l.b[len(l.b)-1<<19:]...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// tail is the end of the log, for an error message.
func (l *logBuffer) tail() string {
	s := strings.TrimSpace(l.String())
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}
