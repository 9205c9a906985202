package tasks_test

import (
	"regexp"
	"testing"

	"github.com/sapq/sapq/tasks"
)

func TestIdentityIsDerivedFromTheSubmission(t *testing.T) {
	a := tasks.Identity{Caller: "agent-a", Key: "INV-1", Fingerprint: "FP1", Destination: tasks.DefaultDestination}
	if !regexp.MustCompile(`^SQ[A-Z2-7]{14}$`).MatchString(a.Reference()) {
		t.Fatalf("reference %q is not SQ + 14 base32 characters", a.Reference())
	}
	if a.Reference() != (tasks.Identity{Caller: "agent-a", Key: "INV-1", Fingerprint: "FP1", Destination: tasks.DefaultDestination}).Reference() {
		t.Fatal("the same submission must always get the same reference")
	}
	for name, other := range map[string]tasks.Identity{
		"caller": {Caller: "agent-b", Key: "INV-1", Fingerprint: "FP1", Destination: tasks.DefaultDestination},
		"key":    {Caller: "agent-a", Key: "INV-2", Fingerprint: "FP1", Destination: tasks.DefaultDestination},
		// The same key for other content, after its retention ended.
		"content":     {Caller: "agent-a", Key: "INV-1", Fingerprint: "FP2", Destination: tasks.DefaultDestination},
		"destination": {Caller: "agent-a", Key: "INV-1", Fingerprint: "FP1", Destination: "s4-eu"},
		// The parts are separated: moving a character from one to the
		// next is another identity.
		"boundary": {Caller: "agent-aI", Key: "NV-1", Fingerprint: "FP1", Destination: tasks.DefaultDestination},
	} {
		if other.Reference() == a.Reference() {
			t.Errorf("another %s gave the same reference", name)
		}
	}
	if a.MessageUUID(0) != a.MessageUUID(0) || a.MessageUUID(0) == a.MessageUUID(1) {
		t.Fatal("a generation's message UUID must be stable and differ from the next generation's")
	}
}
