package chaos

import (
	"bytes"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
)

func TestPlanShares(t *testing.T) {
	callers := []string{"agent-1", "agent-2", "agent-3"}
	const n = 5000
	plan, err := makePlan(n, callers, 99, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	flawed, repeated, concurrent := 0, 0, 0
	combos := map[tasks.Kind]map[Flaw]int{}
	perAgent := map[int]map[tasks.Kind]int{}
	for i, k := range plan {
		if perAgent[k.Agent] == nil {
			perAgent[k.Agent] = map[tasks.Kind]int{}
		}
		perAgent[k.Agent][k.Spec.kind]++
		if keys[k.Key] {
			t.Fatalf("key %s planned twice", k.Key)
		}
		keys[k.Key] = true
		if k.Caller != callers[k.Agent] || k.Agent != i%len(callers) {
			t.Fatalf("key %d: agent %d caller %s, want round robin", i, k.Agent, k.Caller)
		}
		if k.Flaw != Sound {
			flawed++
			if combos[k.Spec.kind] == nil {
				combos[k.Spec.kind] = map[Flaw]int{}
			}
			combos[k.Spec.kind][k.Flaw]++
		}
		switch {
		case k.Copies == 1:
			if k.Concurrent || len(k.Delays) > 0 {
				t.Fatalf("key %d: one copy but concurrent=%t delays=%v", i, k.Concurrent, k.Delays)
			}
		case k.Copies == 2 || k.Copies == 3:
			repeated++
			if k.Concurrent {
				concurrent++
			} else if len(k.Delays) != k.Copies-1 {
				t.Fatalf("key %d: %d copies with %d delays", i, k.Copies, len(k.Delays))
			}
		default:
			t.Fatalf("key %d: %d copies", i, k.Copies)
		}
	}
	if flawed != n/flawEvery {
		t.Errorf("%d flawed keys, want %d", flawed, n/flawEvery)
	}
	for _, spec := range kinds {
		for _, f := range spec.flaws {
			if combos[spec.kind][f] == 0 {
				t.Errorf("no %s key with flaw %s", spec.kind, f)
			}
		}
	}
	for agent := range callers {
		for _, spec := range kinds {
			if perAgent[agent][spec.kind] < n/len(callers)/len(kinds)/2 {
				t.Errorf("agent %d submits %d %s postings: every agent must submit every kind", agent, perAgent[agent][spec.kind], spec.kind)
			}
		}
	}
	if share := float64(repeated) / n; share < 0.17 || share > 0.23 {
		t.Errorf("%.1f%% of the keys repeated, want about %.0f%%", 100*share, 100*repeatedShare)
	}
	if concurrent == 0 || concurrent == repeated {
		t.Errorf("%d of %d repeated keys concurrent: want both kinds", concurrent, repeated)
	}
}

func TestPlanIsDeterminedBySeed(t *testing.T) {
	now := time.Now()
	callers := []string{"a", "b"}
	p1, _ := makePlan(300, callers, 5, now)
	p2, _ := makePlan(300, callers, 5, now)
	p3, _ := makePlan(300, callers, 6, now)
	same := func(a, b []*keyPlan) bool {
		for i := range a {
			if a[i].Key != b[i].Key || !bytes.Equal(a[i].Args, b[i].Args) || a[i].Copies != b[i].Copies {
				return false
			}
		}
		return true
	}
	if !same(p1, p2) {
		t.Error("the same seed gave two plans")
	}
	if same(p1, p3) {
		t.Error("two seeds gave the same plan")
	}
}

func TestFewKeysStillGetAFlaw(t *testing.T) {
	plan, _ := makePlan(30, []string{"a"}, 1, time.Now())
	for _, k := range plan {
		if k.Flaw != Sound {
			return
		}
	}
	t.Error("a plan of 30 keys has no flawed key: short runs would never see a permanent refusal")
}
