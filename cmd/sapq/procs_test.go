package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// Helpers for tests that run sapq's commands (worker, mcp, ui) as the
// binary would, each in a goroutine with its own flags, until the test ends.

// runner is one of sapq's commands.
type runner func(ctx context.Context, args []string, stdout io.Writer) error

// proc is a command running in the test.
type proc struct {
	args    []string
	stopped chan struct{} // closed when it returned
	err     error         // what it returned
}

// startCommand runs a command until the test ends, and fails the test if
// it does not stop cleanly then.
func startCommand(t *testing.T, run runner, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{args: args, stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		p.err = run(ctx, args, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.stopped:
			if p.err != nil {
				t.Errorf("%v did not stop cleanly: %v", args, p.err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("%v did not stop within 45s of its context ending", args)
		}
	})
	return p
}

// exited reports whether the command returned, and what.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.stopped:
		return true, p.err
	default:
		return false, nil
	}
}

// freeAddr returns a loopback address that was free a moment ago, for a
// command's listener: the commands log their address but do not hand it
// to a caller.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// awaitListening waits until p answers /healthz at base, failing the test
// if it exits first.
func awaitListening(t *testing.T, p *proc, base string) {
	t.Helper()
	c := httpClient(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if gone, err := p.exited(); gone {
			t.Fatalf("%v exited: %v", p.args, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer within 30s: %v", base, err)
		}
		time.Sleep(20 * time.Millisecond) // nothing to subscribe to
	}
}

// probe GETs base+path and returns the status and body.
func probe(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := httpClient(t).Get(base + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// awaitReady waits until base's /readyz answers 200, and fails the test
// with the last answer if it does not within limit.
func awaitReady(t *testing.T, base string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		code, body := probe(t, base, "/readyz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz = %d within %s:\n%s", base, code, limit, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLog is a logger into the test's output, warnings and errors only.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
