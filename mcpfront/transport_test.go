package mcpfront_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sapq/sapq/mcpfront"
)

// postWith sends one raw JSON-RPC message with extra headers.
func postWith(t *testing.T, url, token, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func rpcErrorOf(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var m struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %q is not JSON-RPC: %v", body, err)
	}
	return m.Error.Code, m.Error.Message
}

const listCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_postings","arguments":{}}}`

// openSession initializes a 2025-11-25 session over raw HTTP.
func openSession(t *testing.T, url, token string) string {
	t.Helper()
	resp := postWith(t, url, token, initialize, nil)
	io.Copy(io.Discard, resp.Body)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("initialize: status %d, session %q", resp.StatusCode, id)
	}
	return id
}

func inSession(t *testing.T, url, token, id, body string) *http.Response {
	t.Helper()
	return postWith(t, url, token, body, map[string]string{"Mcp-Session-Id": id, "MCP-Protocol-Version": legacyVersion})
}

// Unknown, deleted and other callers' sessions get 404, as the Streamable
// HTTP transport requires, so that the client initializes anew.
func TestUnknownSessionsAre404(t *testing.T) {
	e := newEnv(t)
	id := openSession(t, e.url, aliceToken)
	if resp := inSession(t, e.url, aliceToken, id, listCall); resp.StatusCode != 200 {
		t.Fatalf("own session: %d", resp.StatusCode)
	}
	for name, sid := range map[string]string{
		"unknown":   "mcp-session-0197f000-0000-7000-8000-000000000000",
		"malformed": "not-a-session",
	} {
		resp := inSession(t, e.url, aliceToken, sid, listCall)
		if code, msg := rpcErrorOf(t, resp); resp.StatusCode != 404 || code != -32001 || !strings.Contains(msg, "initialize a new session") {
			t.Errorf("%s session: %d %d %q", name, resp.StatusCode, code, msg)
		}
	}
	// bob cannot use, nor delete, alice's session.
	if resp := inSession(t, e.url, bobToken, id, listCall); resp.StatusCode != 404 {
		t.Errorf("another caller's session: %d", resp.StatusCode)
	}
	del := func(token, sid string) int {
		req, _ := http.NewRequest(http.MethodDelete, e.url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", legacyVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := del(bobToken, id); got != 404 {
		t.Errorf("bob deleting alice's session: %d", got)
	}
	if resp := inSession(t, e.url, aliceToken, id, listCall); resp.StatusCode != 200 {
		t.Fatalf("alice's session after bob's attempts: %d", resp.StatusCode)
	}
	if got := del(aliceToken, id); got != 200 {
		t.Fatalf("DELETE: %d", got)
	}
	if resp := inSession(t, e.url, aliceToken, id, listCall); resp.StatusCode != 404 {
		t.Errorf("deleted session: %d", resp.StatusCode)
	}
	if got := del(aliceToken, id); got != 404 {
		t.Errorf("deleting a deleted session: %d", got)
	}
}

// A caller's sessions are capped (a new one ends the least recently used)
// and end when idle.
func TestSessionsPerCallerAreBounded(t *testing.T) {
	e := newEnvWith(t, mcpfront.Options{Tokens: aliceAndBob(t), MaxSessionsPerCaller: 3, SessionIdleTimeout: 300 * time.Millisecond})
	ids := []string{openSession(t, e.url, aliceToken), openSession(t, e.url, aliceToken), openSession(t, e.url, aliceToken)}
	bobs := openSession(t, e.url, bobToken)
	// Using the first makes the second the least recently used.
	if resp := inSession(t, e.url, aliceToken, ids[0], listCall); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	ids = append(ids, openSession(t, e.url, aliceToken))
	want := map[int]int{0: 200, 1: 404, 2: 200, 3: 200}
	for i, id := range ids {
		if resp := inSession(t, e.url, aliceToken, id, listCall); resp.StatusCode != want[i] {
			t.Errorf("session %d: %d, want %d", i, resp.StatusCode, want[i])
		}
	}
	if resp := inSession(t, e.url, bobToken, bobs, listCall); resp.StatusCode != 200 {
		t.Errorf("bob's session was ended by alice's: %d", resp.StatusCode)
	}
	if got := metricValue(t, e, "sapq_mcp_sessions"); got != 4 {
		t.Errorf("sessions gauge %v, want 4", got)
	}
	// Idle sessions end: await the 404.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := postWith(t, e.url, bobToken, listCall, map[string]string{"Mcp-Session-Id": bobs, "MCP-Protocol-Version": legacyVersion})
		if resp.StatusCode == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle session did not end")
		}
		time.Sleep(400 * time.Millisecond) // longer than the idle timeout, so the next try finds it idle
	}
}

func aliceAndBob(t *testing.T) mcpfront.TokenSet {
	t.Helper()
	ts, err := mcpfront.ParseTokens("alice:" + aliceToken + ",bob:" + bobToken)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// 40,000 initialize calls by one caller must not grow the process without
// bound: sessions beyond the cap end at once, with mcp-go's state.
func TestManyInitializeCallsStayBounded(t *testing.T) {
	// Logs are discarded: a test buffer holding them would grow with the calls.
	e := newEnvWith(t, mcpfront.Options{Tokens: aliceAndBob(t), Logger: slog.New(slog.DiscardHandler)})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	client := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const n, workers = 40000, 8
	var wg sync.WaitGroup
	var failed sync.Once
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(initialize))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+aliceToken)
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Do(func() { t.Errorf("initialize %d: %v %v", i, err, resp) })
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := heap()
	sessions := metricValue(t, e, "sapq_mcp_sessions")
	grown := int64(after) - int64(before)
	t.Logf("%d initialize calls in %v; heap %d KiB -> %d KiB (%+d KiB); open sessions %v", n, elapsed.Round(time.Millisecond), before>>10, after>>10, grown>>10, sessions)
	if sessions != mcpfront.DefaultMaxSessionsPerCaller {
		t.Errorf("open sessions %v, want the cap %d", sessions, mcpfront.DefaultMaxSessionsPerCaller)
	}
	// 40,000 sessions kept would be over 500 MiB (13 KB each).
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB over %d initialize calls", grown>>20, n)
	}
}

// A browser page from a foreign origin is refused with 403, even with a
// valid token; same-origin, loopback and configured origins pass.
func TestForeignOriginIsForbidden(t *testing.T) {
	e := newEnvWith(t, mcpfront.Options{Tokens: aliceAndBob(t), AllowedOrigins: []string{"https://agent.example.com"}})
	port := e.http.URL[strings.LastIndex(e.http.URL, ":")+1:]
	for origin, want := range map[string]int{
		"https://evil.example":          403,
		"null":                          403,
		"http://127.0.0.1.evil.example": 403,
		"https://agent.example.com":     200,
		"http://127.0.0.1:" + port:      200,
		"http://localhost:6274":         200,
		"":                              200,
	} {
		headers := map[string]string{}
		if origin != "" {
			headers["Origin"] = origin
		}
		resp := postWith(t, e.url, aliceToken, initialize, headers)
		if resp.StatusCode != want {
			t.Errorf("Origin %q: %d, want %d", origin, resp.StatusCode, want)
		}
		if want == 403 {
			if code, msg := rpcErrorOf(t, resp); code != -32600 || !strings.Contains(msg, "origin not allowed") {
				t.Errorf("Origin %q: %d %q", origin, code, msg)
			}
		}
	}
	// A foreign page gets no 401 challenge either: it learns nothing.
	if resp := postWith(t, e.url, "", initialize, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("foreign origin without a token: %d", resp.StatusCode)
	}
}

// JSON-RPC batches get a clear refusal (MCP dropped them), and JSON nested
// deeper than the limit is refused before anything parses it.
func TestBatchesAndDeepJSONAreRefused(t *testing.T) {
	e := newEnv(t)
	resp := postWith(t, e.url, aliceToken, "  ["+initialize+","+listCall+"]", nil)
	if code, msg := rpcErrorOf(t, resp); resp.StatusCode != 400 || code != -32600 || !strings.Contains(msg, "batches are not supported") {
		t.Errorf("batch: %d %d %q", resp.StatusCode, code, msg)
	}
	deep := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_postings","arguments":{"cursor":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}}`
	resp = postWith(t, e.url, aliceToken, deep, nil)
	if code, msg := rpcErrorOf(t, resp); resp.StatusCode != 400 || code != -32600 || !strings.Contains(msg, "nested deeper than 32 levels") {
		t.Errorf("deep JSON: %d %d %q", resp.StatusCode, code, msg)
	}
	// Brackets inside strings do not count.
	shallow := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_posting","arguments":{"job_id":"` + strings.Repeat("[", 50) + `"}}}`
	sid := openSession(t, e.url, aliceToken)
	if resp := inSession(t, e.url, aliceToken, sid, shallow); resp.StatusCode != 200 {
		t.Errorf("brackets in a string: %d", resp.StatusCode)
	}
}

// Every client flavour still works end to end behind the new checks.
func TestClientsWorkBehindTheChecks(t *testing.T) {
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)
		job := submit(t, c, "submit_journal_entry", journalEntry(fmt.Sprintf("ok-%d", time.Now().UnixNano())))
		var p posting
		call(t, c, "get_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
		if p.Status != "queued" {
			t.Fatalf("%+v", p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ctx
	})
}
