package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sapq/sapq/tasks"
)

// Shares of the plan.
const (
	// One key in flawEvery (2%) carries a Flaw: SAP refuses it permanently.
	flawEvery = 50
	// repeatedShare of the keys are submitted two or three times under the
	// same key with the same payload, as an agent retrying does.
	repeatedShare = 0.20
	// concurrentShare of the repeated keys send their copies at the same
	// moment as the first submission; the others send them later, while the
	// job runs or after it finished.
	concurrentShare = 0.5
)

// keyPlan is one business document: what an agent submits under one
// idempotency key.
type keyPlan struct {
	Index  int
	Agent  int    // which agent (caller) submits it
	Caller string // the agent's caller name
	Key    string
	Spec   *kindSpec
	Flaw   Flaw
	// Args is the posting as the tool's arguments.
	Args json.RawMessage
	// Copies is how many times the key is submitted (1 to 3); Concurrent
	// says the copies go out together with the first submission.
	Copies     int
	Concurrent bool
	// Delays are the pauses before the later copies when not Concurrent.
	Delays []time.Duration
	// Reverses is, for a reversal, the key whose document it reverses (an
	// earlier sound supplier invoice or journal entry of the same agent);
	// nil otherwise.
	Reverses *keyPlan
}

// Identity is the posting's identity as sapq derives its SAP reference.
func (k *keyPlan) Identity() tasks.Identity {
	spec, ok := tasks.SpecOf(k.Spec.kind)
	if !ok {
		panic("chaos: no spec of kind " + string(k.Spec.kind))
	}
	// The fingerprint is of the posting as sapq decodes it (the arguments
	// the agent sends, in the type's canonical form).
	p := spec.New()
	if len(k.Args) > 0 {
		if err := json.Unmarshal(k.Args, p); err != nil {
			panic(fmt.Sprintf("chaos: planned posting %s: %v", k.Key, err))
		}
	}
	id, err := tasks.IdentityOfPosting(k.Caller, p, tasks.DefaultDestination)
	if err != nil {
		panic(err)
	}
	return id
}

// makePlan lays out n keys over the agents in turn: kinds at random, one
// flawed key in flawEvery, repeated keys at random. It depends only on its arguments,
// so a seed names a plan.
func makePlan(n int, callers []string, seed uint64, now time.Time) ([]*keyPlan, error) {
	g := newGenerator(seed, now)
	keys := make([]*keyPlan, n)
	reversed := map[int]bool{}
	for i := range n {
		agent := i % len(callers)
		spec, flaw := &kinds[g.rng.IntN(len(kinds))], Sound
		// Every flawEvery-th key, the first one early; the flawed keys go
		// through every pair of flaw and kind in turn.
		if (i+flawEvery/2)%flawEvery == 0 {
			pair := flawPairs[(i/flawEvery)%len(flawPairs)]
			spec, flaw = pair.spec, pair.flaw
		}
		var reverses *keyPlan
		if spec.kind == tasks.KindReversePosting {
			// The latest original of the agent's that no key reverses yet;
			// without one, the key is a supplier invoice.
			of := reversible
			if flaw == ClosedPeriod {
				of = reversibleInClosed
			}
			if j := originalFor(keys[:i], agent, of, reversed); j < 0 {
				spec = &kinds[0]
			} else {
				reversed[j], reverses = true, keys[j]
			}
		}
		k := &keyPlan{
			Index:    i,
			Agent:    agent,
			Caller:   callers[agent],
			Key:      fmt.Sprintf("chaos-%d-%06d", seed, i),
			Spec:     spec,
			Flaw:     flaw,
			Copies:   1,
			Reverses: reverses,
		}
		raw, err := json.Marshal(spec.make(g, k.Key, k.Flaw))
		if err != nil {
			return nil, fmt.Errorf("chaos: encode %s: %w", k.Key, err)
		}
		k.Args = raw
		if g.rng.Float64() < repeatedShare {
			k.Copies = 2 + g.rng.IntN(2)
			k.Concurrent = g.rng.Float64() < concurrentShare
			if !k.Concurrent {
				for range k.Copies - 1 {
					k.Delays = append(k.Delays, time.Duration(g.rng.Int64N(int64(4*time.Second))))
				}
			}
		}
		keys[i] = k
	}
	return keys, nil
}

// originalFor is the latest of the agent's keys that a reversal can
// reverse: a sound posting of one of the kinds that no key reverses yet;
// -1 if there is none.
func originalFor(earlier []*keyPlan, agent int, of []tasks.Kind, reversed map[int]bool) int {
	for j := len(earlier) - 1; j >= 0; j-- {
		k := earlier[j]
		if k.Agent == agent && k.Flaw == Sound && slices.Contains(of, k.Spec.kind) && !reversed[j] {
			return j
		}
	}
	return -1
}
