package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the harness started. Its output is appended to a
// log file, so that a restarted process continues the same log.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status; read after done
}

// startProc starts bin with args and exactly env. Secrets travel in env,
// never in args: args are written to the log.
func startProc(name, logPath, bin string, args, env []string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "---- %s chaos: starting %s: %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	dieWithHarness(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "---- %s chaos: %s (pid %d) exited: %v\n", time.Now().Format(time.RFC3339Nano), name, cmd.Process.Pid, p.err)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to end (SIGTERM, a graceful shutdown) and kills it
// if it has not within limit.
func (p *proc) stop(limit time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
	}
}

// childEnv is the harness's environment without any SAPQ_* variable (the
// user's settings must not change the run), plus vars.
func childEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAPQ_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startListening starts a server process on a free loopback port and waits
// until url(port) answers 200. A free port is released before the child
// binds it, so another process may take it first; then the child exits and
// another port is tried.
func startListening(name, logPath, bin string, args func(port int) []string, env []string, url func(port int) string) (*proc, int, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		p, err := startProc(name, logPath, bin, args(port), env)
		if err != nil {
			return nil, 0, err
		}
		if lastErr = awaitHTTP(p, url(port), 30*time.Second); lastErr == nil {
			return p, port, nil
		}
		p.kill()
	}
	return nil, 0, fmt.Errorf("chaos: %s did not start (log: %s): %w", name, logPath, lastErr)
}

// awaitHTTP polls url until it answers 200, the process exits or limit
// passes.
func awaitHTTP(p *proc, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		cancel()
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // a child process starting up; nothing to subscribe to
	}
}
