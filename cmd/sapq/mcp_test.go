package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/tasks/taskstest"
)

// captureStderr sends what the command logs to a buffer for the test.
func captureStderr(t *testing.T) *testutil.SyncBuffer {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	buf := &testutil.SyncBuffer{}
	done := make(chan struct{})
	go func() { io.Copy(buf, r); close(done) }()
	t.Cleanup(func() {
		os.Stderr = old
		w.Close()
		<-done
	})
	return buf
}

// startMCP runs `sapq mcp` on a free port against the test's Redis and
// returns its MCP URL once it answers.
func startMCP(t *testing.T, extra ...string) string {
	t.Helper()
	_, db := redisSrv.NewDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"--addr", addr, "--redis-url", fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runMCP(ctx, args, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sapq mcp: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sapq mcp did not stop")
		}
	})
	url := "http://" + addr + "/mcp"
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return url
		}
		select {
		case err := <-done:
			t.Fatalf("sapq mcp exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sapq mcp did not start")
		}
		time.Sleep(20 * time.Millisecond) // waiting for the listener; nothing to subscribe to
	}
}

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

const rawInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func initStatus(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(rawInitialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClientNoKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var httpClientNoKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a process's observable state
	}
}

// SIGHUP reloads the callers file without a restart, keeps the old callers
// when the new file is bad (and logs why), and reopens the audit log.
func TestMCPReloadsOnSIGHUP(t *testing.T) {
	logs := captureStderr(t)
	dir := t.TempDir()
	callers, audit := filepath.Join(dir, "callers.json"), filepath.Join(dir, "audit.log")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(callers, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(name, token string) string {
		return fmt.Sprintf(`{"name":%q,"token_sha256":%q,"role":"agent"}`, name, digest(token))
	}
	write(`{"callers":[` + entry("alice", "alice-tok-1") + `]}`)
	url := startMCP(t, "--callers-file", callers, "--audit-log", audit)
	if got := initStatus(t, url, "alice-tok-1"); got != 200 {
		t.Fatalf("alice: %d", got)
	}
	if got := initStatus(t, url, "bob-tok-2"); got != 401 {
		t.Fatalf("bob before the reload: %d", got)
	}

	write(`{"callers":[` + entry("alice", "alice-tok-1") + "," + entry("bob", "bob-tok-2") + `]}`)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	await(t, "bob to be admitted", func() bool { return initStatus(t, url, "bob-tok-2") == 200 })

	write(`{"callers":[{"name":"alice","token_sha256":"not-a-digest","role":"agent"}]}`)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	await(t, "the refused reload to be logged", func() bool {
		return strings.Contains(logs.String(), "callers file not reloaded") && strings.Contains(logs.String(), "callers[0].token_sha256: must be 64 hex digits")
	})
	for _, tok := range []string{"alice-tok-1", "bob-tok-2"} {
		if got := initStatus(t, url, tok); got != 200 {
			t.Errorf("%s after a bad reload: %d", tok, got)
		}
	}

	// The audit log: a tool call is recorded; after logrotate moves the
	// file, SIGHUP starts a new one.
	cs := connect(t, url, "alice-tok-1")
	var sub submitted
	call(t, cs, "submit_journal_entry", taskstest.JournalEntry("sighup-1"), &sub)
	await(t, "the audit record", func() bool { b, _ := os.ReadFile(audit); return strings.Contains(string(b), sub.JobID) })
	if err := os.Rename(audit, audit+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	await(t, "a new audit file", func() bool { _, err := os.Stat(audit); return err == nil })
	call(t, cs, "submit_journal_entry", taskstest.JournalEntry("sighup-2"), &sub)
	await(t, "the record in the new file", func() bool { b, _ := os.ReadFile(audit); return strings.Contains(string(b), sub.JobID) })
	for _, f := range []string{audit, audit + ".1"} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "alice-tok-1") || strings.Contains(string(b), "Accrued consulting") {
			t.Errorf("%s holds a token or payload:\n%s", f, b)
		}
	}
}

// A client that sends headers and then a slow body is cut off, and idle
// keep-alive connections are closed.
func TestMCPConnectionLimits(t *testing.T) {
	t.Setenv("SAPQ_MCP_TOKENS", "alice:alice-tok-1")
	url := startMCP(t, "--max-connections", "2", "--read-timeout", "500ms", "--read-header-timeout", "500ms", "--idle-timeout", "500ms")
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept the connection open")
		}
	}

	// Headers, then a body that never comes.
	slow := dial()
	fmt.Fprintf(slow, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer alice-tok-1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":", host)
	closedByServer(slow)

	// A served keep-alive connection that then idles is closed.
	idle := dial()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	closedByServer(idle)

}

// Open connections are capped: with two held, a third client is not served
// until one of them closes.
func TestMCPCapsConnections(t *testing.T) {
	t.Setenv("SAPQ_MCP_TOKENS", "alice:alice-tok-1")
	url := startMCP(t, "--max-connections", "2", "--idle-timeout", "1m")
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	var holders []net.Conn
	for range 2 {
		h, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		fmt.Fprintf(h, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		if resp, err := http.ReadResponse(bufio.NewReader(h), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("holder: %v %v", resp, err)
		}
		holders = append(holders, h)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := httpClientNoKeepAlive.Get("http://" + host + "/healthz")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("a third connection was served (%d) while two held the cap", code)
	case <-time.After(300 * time.Millisecond): // a negative check: it can only pass wrongly, not fail wrongly
	}
	holders[0].Close()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("third client: %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the third client was not served after a connection closed")
	}
}

func TestMCPConfigErrorsNameTheVariable(t *testing.T) {
	for name, value := range map[string]string{
		"SAPQ_MCP_MAX_CONNECTIONS":      "many",
		"SAPQ_MCP_SESSION_IDLE_TIMEOUT": "15",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			t.Setenv("SAPQ_MCP_TOKENS", "alice:alice-tok-1")
			err := runMCP(context.Background(), nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: %v", name, value, err)
			}
		})
	}
	t.Setenv("SAPQ_MCP_OAUTH_ISSUER", "https://issuer.example")
	t.Setenv("SAPQ_MCP_TOKENS", "alice:alice-tok-1")
	if err := runMCP(context.Background(), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "SAPQ_MCP_OAUTH_JWKS_URL") {
		t.Fatalf("incomplete OAuth config: %v", err)
	}
}

// ReadTimeout bounds reading a request, not a listening stream: a
// 2025-11-25 client's standalone SSE stream outlives it, and the session
// goes on working.
func TestMCPListeningStreamOutlivesReadTimeout(t *testing.T) {
	t.Setenv("SAPQ_MCP_TOKENS", "alice:alice-tok-1")
	url := startMCP(t, "--read-timeout", "300ms", "--read-header-timeout", "300ms")
	hc := httpClient(t)
	opened, ended := make(chan struct{}, 8), make(chan error, 8)
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := testutil.Bearer{Token: "alice-tok-1", Next: http.DefaultTransport}.RoundTrip(r)
		if err == nil && r.Method == http.MethodGet && resp.StatusCode == 200 {
			opened <- struct{}{}
			resp.Body = &watchedBody{ReadCloser: resp.Body, ended: ended}
		}
		return resp, err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "sse", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the client opened no listening stream")
	}
	time.Sleep(time.Second) // let the stream live past the read timeout
	var sub submitted
	call(t, cs, "submit_journal_entry", taskstest.JournalEntry("sse-1"), &sub)
	select {
	case err := <-ended:
		t.Fatalf("the listening stream ended: %v", err)
	default:
	}
}

// watchedBody reports when a streamed response body ends.
type watchedBody struct {
	io.ReadCloser
	ended chan<- error
	once  sync.Once
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if err != nil {
		w.once.Do(func() { w.ended <- err })
	}
	return n, err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
