package chaos

import (
	"strings"
	"testing"
	"time"
)

func TestReportSummary(t *testing.T) {
	r := &Report{Seed: 3, Postings: 300, Submissions: 370, Documents: 294, Failed: 6,
		Faults: map[string]int{"lock": 2, "ambiguous": 5}, Kills: 4, RedisFault: "kill(down 0.1s)", Wall: 71234 * time.Millisecond}
	want := "chaos PASS: breaches=0 postings=300 submissions=370 documents=294 duplicates=0 lost=0 failed=6 faults=ambiguous:5,lock:2 kills=4 redis=kill(down 0.1s) wall=1m11.2s seed=3"
	if got := r.Summary(); got != want {
		t.Errorf("summary\n%s\nwant\n%s", got, want)
	}
	r.Breaches, r.BreachKinds = []string{"x", "y", "z"}, map[string]int{"lost": 1, "duplicate": 2}
	if r.OK() || !strings.HasPrefix(r.Summary(), "chaos FAIL: breaches=3[duplicate:2,lost:1] ") {
		t.Errorf("a report with a breach: OK %t, %s", r.OK(), r.Summary())
	}
}
