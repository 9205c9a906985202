package bench

import (
	"bufio"
	"context"
	"fmt"
	"github.com/sapq/sapq/internal/child"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The scenarios that measure a worker's memory or kill one run it as a
// process of its own: `sapq worker`, or the asynq baseline worker (`sapq
// bench asynq-worker`, AsynqWorker), started from Options.Binary.

// proc is a worker process and the address it serves /readyz (and, for
// sapq worker, /metrics) on.
type proc struct {
	*child.Process
	addr string
}

// startReady starts a process that serves /readyz on the address it is
// given and waits until it answers 200. The child dies with the bench
// process; secrets travel in env, never in args.
func startReady(ctx context.Context, name, logDir, bin string, args func(addr string) []string, env []string) (*proc, error) {
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	p, port, err := child.StartListening(ctx, name, filepath.Join(logDir, name+".log"), bin,
		func(port int) []string { return args(addr(port)) }, env,
		func(port int) string { return "http://" + addr(port) + "/readyz" })
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &proc{Process: p, addr: addr(port)}, nil
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
