// Package child runs the processes the harnesses (sapq chaos, sapq bench)
// start beside themselves: sapq's own commands and redis-server, each with
// its output appended to a log file, tied to the harness's life, and
// stopped gracefully or killed.
package child

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

// Process is a child process. Its output is appended to Log, so that a
// restarted process continues the same log.
type Process struct {
	Name, Log string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	err       error         // its exit status; read after done
}

// Start starts bin with args and exactly env. Secrets travel in env, never
// in args: args are written to the log. The child dies with the harness,
// even when the harness is killed, where the kernel can tie them (Linux).
func Start(name, logPath, bin string, args, env []string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "---- %s: starting %s: %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "---- %s: %s (pid %d) exited: %v\n", time.Now().Format(time.RFC3339Nano), name, cmd.Process.Pid, p.err)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit status, once Done is closed.
func (p *Process) Err() error { return p.err }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// SendKill sends SIGKILL without waiting for the exit.
func (p *Process) SendKill() { p.cmd.Process.Signal(syscall.SIGKILL) }

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() {
	p.SendKill()
	<-p.done
}

// Stop asks the process to end (SIGTERM, a graceful shutdown) and kills it
// if it has not within limit.
func (p *Process) Stop(limit time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		p.Kill()
	}
}

// Env is the harness's environment without any SAPQ_* variable (the
// user's settings must not change a run), plus vars.
func Env(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAPQ_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartListening starts a server process on a free loopback port and waits
// until url(port) answers 200. A free port is released before the child
// binds it, so another process may take it first; then the child exits and
// another port is tried.
func StartListening(ctx context.Context, name, logPath, bin string, args func(port int) []string, env []string, url func(port int) string) (*Process, int, error) {
	var lastErr error
	for range 5 {
		port, err := FreePort()
		if err != nil {
			return nil, 0, err
		}
		p, err := Start(name, logPath, bin, args(port), env)
		if err != nil {
			return nil, 0, err
		}
		if lastErr = AwaitHTTP(ctx, p, url(port), 30*time.Second); lastErr == nil {
			return p, port, nil
		}
		p.Kill()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, fmt.Errorf("%s did not start (log: %s): %w", name, logPath, lastErr)
}

// AwaitHTTP polls url until it answers 200, the process exits, ctx ends or
// limit passes.
func AwaitHTTP(ctx context.Context, p *Process, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited: %v", p.Name, p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // a child process starting up; nothing to subscribe to
	}
}
