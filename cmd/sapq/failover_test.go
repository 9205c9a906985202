package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// Postings run end to end through sapq's own processes (two workers, the
// MCP front, the Asynq UI) on a Redis that Sentinel fails over in the
// middle: every posting ends succeeded with exactly one document in SAP.
func TestPostingsThroughSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	url := "redis-sentinel://" + strings.Join(s.SentinelAddrs(), ",") + "/" + s.MasterName()
	testPostingsThroughFailover(t, url, func() {
		old := s.Master()
		t.Logf("failing over from %s to %s", old, s.Failover())
	})
}

// The same on a Redis Cluster of three masters, one of which fails over to
// its replica in the middle.
func TestPostingsThroughClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
	url := "redis-cluster://" + strings.Join(c.Addrs(), ",")
	testPostingsThroughFailover(t, url, func() {
		old := c.Masters()[0]
		t.Logf("failing over master %s to %s", old, c.Failover(old))
	})
}

// failoverAgent is the caller the test's MCP token stands for.
const failoverAgent = "agent"

func testPostingsThroughFailover(t *testing.T, redisURL string, failover func()) {
	simulator := sim.New(sim.Options{
		User: "SAPQ_COMM", Password: simPassword, Seed: 1, Logger: testLog(t),
		// Calls take a while, so that some are in flight at the failover,
		// and some answers are lost, so that postings are looked up in SAP
		// around it.
		Faults: sim.Faults{Latency: 300 * time.Millisecond, AmbiguousRate: 0.15},
	})
	hs := httptest.NewServer(simulator)
	t.Cleanup(hs.Close)

	const token = "failover-token-0123456789"
	t.Setenv("SAPQ_SAP_PASSWORD", simPassword)
	t.Setenv("SAPQ_MCP_TOKENS", failoverAgent+":"+token)
	t.Setenv("SAPQ_UI_TOKEN", token)
	t.Setenv("SAPQ_LOG_LEVEL", "warn")
	t.Setenv("SAPQ_REDIS_URL", redisURL)

	// A short SAP timeout and settle time: after the failover no call goes
	// out for the settle time (--reconcile-after), and an ambiguous answer
	// is looked up once it has passed.
	var bases []string
	for range 2 {
		addr := freeAddr(t)
		p := startCommand(t, runWorker, "--sap-url", hs.URL, "--sap-timeout", "2s", "--reconcile-after", "3s",
			"--concurrency", "4", "--metrics-addr", addr)
		awaitListening(t, p, "http://"+addr)
		bases = append(bases, "http://"+addr)
	}
	mcpAddr, uiAddr := freeAddr(t), freeAddr(t)
	mcpProc := startCommand(t, runMCP, "--addr", mcpAddr)
	uiProc := startCommand(t, runUI, "--addr", uiAddr)
	awaitListening(t, mcpProc, "http://"+mcpAddr)
	awaitListening(t, uiProc, "http://"+uiAddr)
	bases = append(bases, "http://"+mcpAddr, "http://"+uiAddr)
	for _, b := range bases {
		awaitReady(t, b, 10*time.Second)
	}

	agent := &failoverClient{t: t, cs: connect(t, "http://"+mcpAddr+"/mcp", token), jobs: map[string]string{}}
	var keys []string
	postings := map[string]tasks.Posting{}
	posting := func(i int) tasks.Posting {
		key := fmt.Sprintf("FAILOVER-%02d", i)
		keys = append(keys, key)
		var p tasks.Posting = taskstest.JournalEntry(key)
		if i%2 == 0 {
			p = taskstest.SupplierInvoice(key)
		}
		postings[key] = p
		return p
	}
	const before, after = 20, 10
	for i := range before {
		agent.submit(posting(i))
	}
	// The failover comes once postings are being posted: a brand-new
	// database holds the first ones back for the settle time.
	agent.awaitSucceeded(3, 60*time.Second)
	t.Logf("%d of %d postings succeeded before the failover", len(agent.done), before)
	failover()
	failedOver := time.Now()
	for i := before; i < before+after; i++ {
		agent.submit(posting(i))
	}
	// A failover to a replica that lacked the last writes can forget that
	// a running task finished: asynq hands such a task out again only once
	// its lease has expired and its recoverer has run, about two minutes
	// later. The look-up before the next attempt then adopts the document.
	agent.awaitSucceeded(len(keys), 5*time.Minute)
	t.Logf("all %d postings succeeded %s after the failover", len(keys), time.Since(failedOver).Round(time.Second))

	for _, key := range keys {
		id, err := tasks.IdentityOfPosting(failoverAgent, postings[key], tasks.DefaultDestination)
		if err != nil {
			t.Fatal(err)
		}
		if n := simulator.CountByReference(id.Reference()); n != 1 {
			t.Errorf("%s: %d documents in SAP, want exactly 1", key, n)
		}
	}
	if docs := simulator.Ledger(); len(docs) != len(keys) {
		t.Errorf("SAP holds %d documents for %d postings", len(docs), len(keys))
	}
	if st := simulator.Stats(); st.Faults[sim.FaultAmbiguous] == 0 {
		t.Errorf("no answer was lost (%+v): the test did not play what it claims", st.Faults)
	}
	// Every process follows the new master.
	for _, b := range bases {
		awaitReady(t, b, 20*time.Second)
	}
	// The Asynq UI reads the queues through the same Redis.
	resp, err := consoleLogin(t, "http://"+uiAddr, token).Get("http://" + uiAddr + "/ui/api/queues")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var queues struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Processed int    `json:"processed"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&queues); err != nil || resp.StatusCode != http.StatusOK || len(queues.Queues) == 0 {
		t.Fatalf("GET /ui/api/queues: %d, %+v, %v", resp.StatusCode, queues, err)
	}
}

// failoverClient is an agent posting through MCP. Like any agent, it
// submits again a posting that sapq says it does not know: a failover to a
// replica that had not received the submission forgets it, and the same
// key then finds the document SAP may hold already.
type failoverClient struct {
	t        *testing.T
	cs       *sdk.ClientSession
	postings []tasks.Posting
	jobs     map[string]string // job ID by idempotency key
	done     map[string]posting
}

// callTool calls a tool, retrying errors that an agent would retry (the
// front answering "internal" while Redis fails over); it returns the text
// of an error it does not retry.
func (a *failoverClient) callTool(tool string, args any, out any) string {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := a.cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
		cancel()
		var text string
		if err == nil && res.IsError {
			for _, c := range res.Content {
				if tc, ok := c.(*sdk.TextContent); ok {
					text += tc.Text
				}
			}
		}
		switch {
		case err == nil && !res.IsError:
			b, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(b, out); err != nil {
				a.t.Fatalf("%s: decode %s: %v", tool, b, err)
			}
			return ""
		case err == nil && !strings.HasPrefix(text, "internal"):
			return text
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: still failing after 30s: %v %s", tool, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (a *failoverClient) submit(p tasks.Posting) {
	a.t.Helper()
	tool := "submit_journal_entry"
	if p.Kind() == tasks.KindSupplierInvoice {
		tool = "submit_supplier_invoice"
	}
	var s submitted
	if msg := a.callTool(tool, p, &s); msg != "" {
		a.t.Fatalf("%s %s: %s", tool, p.IdempotencyKey(), msg)
	}
	if _, known := a.jobs[p.IdempotencyKey()]; !known {
		a.postings = append(a.postings, p)
	}
	a.jobs[p.IdempotencyKey()] = s.JobID
}

// awaitSucceeded polls get_posting until n postings have succeeded. A
// posting that fails fails the test.
func (a *failoverClient) awaitSucceeded(n int, limit time.Duration) {
	a.t.Helper()
	if a.done == nil {
		a.done = map[string]posting{}
	}
	deadline := time.Now().Add(limit)
	for len(a.done) < n {
		for _, p := range a.postings {
			key := p.IdempotencyKey()
			if _, ok := a.done[key]; ok {
				continue
			}
			var got posting
			msg := a.callTool("get_posting", map[string]any{"job_id": a.jobs[key]}, &got)
			switch {
			case strings.HasPrefix(msg, "not_found"):
				a.t.Logf("%s: job %s forgotten by the failover; submitting it again", key, a.jobs[key])
				a.submit(p)
			case msg != "":
				a.t.Fatalf("get_posting %s: %s", key, msg)
			case got.Status == "succeeded":
				a.done[key] = got
			case got.Status == "failed" || got.Status == "cancelled":
				a.t.Fatalf("%s ended %s: %+v", key, got.Status, got.Error)
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%d of %d postings succeeded within %s", len(a.done), n, limit)
		}
		time.Sleep(100 * time.Millisecond) // an agent polls get_posting too
	}
}
