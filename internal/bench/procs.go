package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The scenarios that measure a worker's memory or kill one run it as a
// process of its own: `sapq worker`, or the asynq baseline worker (`sapq
// bench asynq-worker`, AsynqWorker), started from Options.Binary.

// proc is a child process; its output goes to a log file.
type proc struct {
	name string
	log  string
	addr string // where it serves /readyz (and, for sapq worker, /metrics)
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status; read after done
}

// startProc starts bin with args and env (secrets travel in env, never in
// args). The child dies with the bench process (Pdeathsig on Linux).
func startProc(name, logDir, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "---- %s bench: starting %s: %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "---- %s bench: %s exited: %v\n", time.Now().Format(time.RFC3339Nano), name, p.err)
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

// stop asks for a graceful shutdown (SIGTERM) and kills after limit.
func (p *proc) stop(limit time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
	}
}

// childEnv is this process's environment without SAPQ_* variables (the
// user's settings must not change a run), plus vars.
func childEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAPQ_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startReady starts a process that serves /readyz on the address it is
// given and waits until it answers 200. A free port is released before the
// child binds it, so another process may take it first: then another is
// tried.
func startReady(ctx context.Context, name, logDir, bin string, args func(addr string) []string, env []string) (*proc, error) {
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := startProc(name, logDir, bin, args(addr), env)
		if err != nil {
			return nil, err
		}
		if lastErr = awaitReady(ctx, p, "http://"+addr+"/readyz", 30*time.Second); lastErr == nil {
			p.addr = addr
			return p, nil
		}
		p.kill()
	}
	return nil, fmt.Errorf("bench: %s did not become ready (log %s): %w", name, filepath.Join(logDir, name+".log"), lastErr)
}

func awaitReady(ctx context.Context, p *proc, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
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
		time.Sleep(20 * time.Millisecond) // a child starting up: nothing to subscribe to
	}
}

// memory is a process's memory as the kernel accounts it, in bytes.
type memory struct {
	rss, hwm, pss int64 // VmRSS, VmHWM (peak RSS) from status; Pss from smaps_rollup
	anon          int64 // RssAnon from status: heap, stacks, runtime; the rest of RSS is the mapped binary and libraries
}

// readMemory reads /proc/<pid>/status and smaps_rollup (Linux only; zero
// elsewhere).
func readMemory(pid int) memory {
	var m memory
	field := func(path string, names map[string]*int64) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, rest, ok := strings.Cut(sc.Text(), ":")
			dst, want := names[name]
			if !ok || !want {
				continue
			}
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				continue
			}
			kb, _ := strconv.ParseInt(fs[0], 10, 64)
			*dst = kb * 1024
		}
	}
	field(fmt.Sprintf("/proc/%d/status", pid), map[string]*int64{"VmRSS": &m.rss, "VmHWM": &m.hwm, "RssAnon": &m.anon})
	field(fmt.Sprintf("/proc/%d/smaps_rollup", pid), map[string]*int64{"Pss": &m.pss})
	return m
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// goMemory reads the Go runtime's own account from a process's /metrics
// (the Prometheus Go collector): heap in use, stacks in use, goroutines.
func goMemory(ctx context.Context, addr string) map[string]float64 {
	out := map[string]float64{}
	if addr == "" {
		return out
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		switch name {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines", "go_memstats_sys_bytes", "go_memstats_heap_objects":
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); ok && err == nil {
				out[name] = f
			}
		}
	}
	return out
}
