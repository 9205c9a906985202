package mcpfront_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// get_posting with wait_seconds answers as soon as the job changes: here
// when a worker claims it, which the test does while the call waits.
func TestGetPostingWaitsForAChange(t *testing.T) {
	e := newEnv(t)
	c := dialSDK(t, e.url, aliceToken, "")
	sub := submit(t, c, "submit_journal_entry", journalEntry("wait-1"))

	answered := make(chan posting, 1)
	go func() {
		var p posting
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := c.callErr(ctx, "get_posting", map[string]any{"job_id": sub.JobID, "wait_seconds": 20})
		if err == nil {
			json.Unmarshal(r.Structured, &p)
		}
		answered <- p
	}()
	select {
	case p := <-answered:
		t.Fatalf("get_posting answered before anything changed: %+v", p)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := e.ledger.Claim(context.Background(), sub.JobID, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-answered:
		if p.Status != "running" {
			t.Fatalf("get_posting answered %+v, want running", p)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("get_posting did not answer after the job changed")
	}
	wantError(t, call(t, c, "get_posting", map[string]any{"job_id": sub.JobID, "wait_seconds": 26}), "invalid_argument", "wait_seconds: must be between 0 and 25")
}
