package mcpfront_test

import (
	"bufio"
	"context"
	"encoding/json"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
)

// stdioServer runs ServeStdio as carol over two in-memory pipes and returns
// the client's ends. ServeStdio must return once the client closes its end.
func stdioServer(t *testing.T, e *env) (toServer *io.PipeWriter, fromServer *io.PipeReader) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := e.srv.ServeStdio(context.Background(), inR, outW, "carol")
		outW.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStdio: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ServeStdio did not return after stdin closed")
		}
	})
	return inW, outR
}

// Stdio tests do not run in parallel: mcp-go keeps one stdio session per process.

func TestStdioWithGoSDKClient(t *testing.T) {
	e := newEnv(t)
	toServer, fromServer := stdioServer(t, e)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "sapq-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.IOTransport{Reader: fromServer, Writer: toServer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	c := &sdkClient{cs}

	job := submit(t, c, "submit_journal_entry", journalEntry("stdio-1"))
	if job.Status != "queued" || *job.Replayed {
		t.Fatalf("submit over stdio = %+v", job)
	}
	var p posting
	call(t, c, "get_posting", map[string]any{"job_id": job.JobID}).decode(t, &p)
	if p.JobID != job.JobID || p.Status != "queued" {
		t.Fatalf("get_posting over stdio = %+v", p)
	}
	// The job belongs to the stdio caller and nobody else.
	if _, err := e.ledger.Get(ctx, "carol", job.JobID); err != nil {
		t.Fatalf("job not recorded for carol: %v", err)
	}
	alice := dialSDK(t, e.url, aliceToken, "")
	wantError(t, call(t, alice, "get_posting", map[string]any{"job_id": job.JobID}), "not_found")

	// The posting is also readable as a resource.
	res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "sapq://postings/" + job.JobID})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 1 || !strings.Contains(res.Contents[0].Text, `"status":"queued"`) {
		t.Fatalf("resource = %+v", res.Contents)
	}
	if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "sapq://postings/unknown"}); err == nil {
		t.Fatal("reading an unknown posting succeeded")
	}
}

// TestStdioOversizedLine speaks raw JSON-RPC: a message over the limit is
// answered with an error and discarded, and the session goes on.
func TestStdioOversizedLine(t *testing.T) {
	e := newEnv(t)
	toServer, fromServer := stdioServer(t, e)
	lines := bufio.NewScanner(fromServer)
	lines.Buffer(nil, 1<<20)
	readReply := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no reply: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("reply %q: %v", lines.Text(), err)
		}
		return m
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(toServer, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	huge := invoice("stdio-huge")
	huge["header_text"] = strings.Repeat("y", 2<<20)
	call, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
		"params": map[string]any{"name": "submit_supplier_invoice", "arguments": huge}})
	send(string(call))
	reply := readReply()
	rpcErr, _ := reply["error"].(map[string]any)
	if rpcErr == nil || rpcErr["code"] != -32600.0 || !strings.Contains(rpcErr["message"].(string), "exceeds the limit") {
		t.Fatalf("reply to an oversized line = %v", reply)
	}

	send(`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_postings","arguments":{}}}`)
	reply = readReply()
	if reply["id"] != 8.0 {
		t.Fatalf("reply = %v", reply)
	}
	res, _ := json.Marshal(reply["result"])
	if !strings.Contains(string(res), `"postings":[]`) {
		t.Fatalf("the oversized submission created a job: %s", res)
	}
}

// The stdio transport has one caller and no HTTP tokens: it does not warn
// about them. A caller of its name in the callers file brings its policy;
// batches and deep JSON are refused as over HTTP.
func TestStdioCallerPolicyAndLimits(t *testing.T) {
	callers, err := mcpfront.ParseCallers([]byte(`{"callers":[{"name":"carol","token_sha256":"`+sha("carol-t")+`","role":"agent","policy":{"kinds":["journal_entry"]}}]}`), "c")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Callers: callers})
	logs := &testutil.SyncBuffer{}
	srv, err := mcpfront.New(mcpfront.Options{Ledger: e.ledger, Redis: e.rdb, Callers: callers, Logger: slog.New(slog.NewTextHandler(logs, nil)), Tracer: sdktrace.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	toServer, fromServer := stdioServer(t, e)
	lines := bufio.NewScanner(fromServer)
	lines.Buffer(nil, 1<<20)
	exchange := func(msg string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(toServer, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() {
			t.Fatalf("no reply: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("reply %q: %v", lines.Text(), err)
		}
		return m
	}
	exchange(initialize)
	reply := exchange(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	var names []string
	for _, tool := range reply["result"].(map[string]any)["tools"].([]any) {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	if slices.Contains(names, "submit_supplier_invoice") || !slices.Contains(names, "submit_journal_entry") {
		t.Errorf("carol's policy is not applied on stdio: %v", names)
	}
	reply = exchange(`[` + initialize + `]`)
	if e, _ := reply["error"].(map[string]any); e == nil || !strings.Contains(e["message"].(string), "batches are not supported") {
		t.Errorf("batch on stdio: %v", reply)
	}
	reply = exchange(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_postings","arguments":{"cursor":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}}`)
	if e, _ := reply["error"].(map[string]any); e == nil || !strings.Contains(e["message"].(string), "nested deeper") {
		t.Errorf("deep JSON on stdio: %v", reply)
	}
	for _, word := range []string{"token", "callers configured", "WARN"} {
		if strings.Contains(logs.String(), word) {
			t.Errorf("stdio log mentions %q:\n%s", word, logs.String())
		}
	}
}
