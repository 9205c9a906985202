package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/sapq/sapq/sap"
)

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.25}
	plain := errors.New("boom")
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 50 {
			d := p.Delay(n, plain)
			if lo, hi := want*3/4, want*5/4; d < lo || d > hi {
				t.Fatalf("Delay(%d) = %v, want %v ± 25%%", n, d, want)
			}
		}
	}
	if d := p.Delay(40, plain); d > p.Max*5/4 {
		t.Fatalf("Delay(40) = %v, want at most about %v", d, p.Max)
	}
	throttled := &sap.Error{Category: sap.Transient, RetryAfter: 30 * time.Second}
	if d := p.Delay(0, throttled); d != 30*time.Second {
		t.Fatalf("Delay with Retry-After 30s = %v, want 30s", d)
	}
	greedy := &sap.Error{Category: sap.Transient, RetryAfter: 24 * time.Hour}
	if d := p.Delay(0, greedy); d != p.Max {
		t.Fatalf("Delay with Retry-After 24h = %v, want the policy's cap %v", d, p.Max)
	}
	for _, n := range []int{0, 12} {
		// A wait is not a failure: however many attempts came before, it
		// lasts exactly as long as it asked for.
		if d := p.Delay(n, &waitError{after: 700 * time.Millisecond}); d != 700*time.Millisecond {
			t.Fatalf("Delay(%d) after a wait = %v, want 700ms", n, d)
		}
	}
}

func TestOnlyRealFailuresSpendTheRetryBudget(t *testing.T) {
	if isFailure(&waitError{}) {
		t.Fatal("waiting for an earlier call to settle spent a retry")
	}
	if !isFailure(&sap.Error{Category: sap.Transient}) {
		t.Fatal("a SAP failure did not count")
	}
}
