package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
)

// A small world for the checker: keys, the jobs agents saw, SAP's ledger.

var (
	invoiceSpec = &kinds[0]
	journalSpec = &kinds[1]
)

func key(n int, spec *kindSpec, flaw Flaw) *outcome {
	p := &keyPlan{Index: n, Caller: "agent-1", Key: fmt.Sprintf("key-%d", n), Spec: spec, Flaw: flaw, Copies: 1}
	if spec.kind == tasks.KindSupplierInvoice {
		p.Args = []byte(fmt.Sprintf(`{"invoice_reference":"INV%d"}`, n))
	}
	return &outcome{plan: p, jobIDs: []string{fmt.Sprintf("job-%d", n)}, submissions: 1}
}

func succeeded(k *outcome, doc string) *outcome {
	k.final = &mcpfront.Posting{JobID: k.jobIDs[0], Status: tasks.StatusSucceeded, Result: &tasks.Result{CompanyCode: "1010", Document: doc, FiscalYear: "2026"}}
	k.seen = k.final
	return k
}

func failed(k *outcome, category tasks.ErrorCategory, code string) *outcome {
	k.final = &mcpfront.Posting{JobID: k.jobIDs[0], Status: tasks.StatusFailed, Error: &tasks.JobError{Code: code, Message: "SAP says no", Category: category}}
	k.seen = k.final
	return k
}

func status(k *outcome, s tasks.Status) *outcome {
	k.final = &mcpfront.Posting{JobID: k.jobIDs[0], Status: s}
	return k
}

// docOf is a document SAP holds under the key's reference (protocol v2).
func docOf(k *outcome, doc string) sim.LedgerDocument {
	return sim.LedgerDocument{Kind: sim.Kind(k.plan.Spec.kind), Document: doc, FiscalYear: "2026", CompanyCode: "1010",
		Reference: k.plan.Identity().Reference(), PostedAt: time.Now()}
}

func kindsOf(v verdict) []string {
	var out []string
	for _, b := range v.breaches {
		out = append(out, b.kind)
	}
	return out
}

func TestCheckVerdicts(t *testing.T) {
	type world struct {
		keys []*outcome
		docs []sim.LedgerDocument
	}
	cases := []struct {
		name                string
		world               func() world
		breaches            []string
		duplicates, lost    int
		succeededN, failedN int
	}{
		{
			name: "every key posted once, a flawed key refused",
			world: func() world {
				a, b := succeeded(key(1, invoiceSpec, Sound), "5105600001"), succeeded(key(2, journalSpec, Sound), "0100000001")
				c := failed(key(3, journalSpec, ClosedPeriod), tasks.CategoryPermanent, "F5/201")
				return world{[]*outcome{a, b, c}, []sim.LedgerDocument{docOf(a, "5105600001"), docOf(b, "0100000001")}}
			},
			succeededN: 2, failedN: 1,
		},
		{
			name: "two documents for one key",
			world: func() world {
				a := succeeded(key(1, journalSpec, Sound), "0100000001")
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "0100000001"), docOf(a, "0100000002")}}
			},
			breaches: []string{breachDuplicate}, duplicates: 1, succeededN: 1,
		},
		{
			name: "a document no key accounts for",
			world: func() world {
				a := succeeded(key(1, journalSpec, Sound), "0100000001")
				stray := docOf(a, "0100000009")
				stray.Reference = "SQSOMEONEELSES00"
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "0100000001"), stray}}
			},
			breaches: []string{breachUnattributed}, duplicates: 1, succeededN: 1,
		},
		{
			name: "succeeded but SAP holds nothing",
			world: func() world {
				return world{[]*outcome{succeeded(key(1, invoiceSpec, Sound), "5105600001")}, nil}
			},
			breaches: []string{breachLost}, lost: 1, succeededN: 1,
		},
		{
			name: "succeeded naming another document than SAP holds",
			world: func() world {
				a := succeeded(key(1, invoiceSpec, Sound), "5105600001")
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "5105600002")}}
			},
			breaches: []string{breachMismatch}, succeededN: 1,
		},
		{
			name: "failed while SAP holds the document (M8/108 after a lost answer)",
			world: func() world {
				a := failed(key(1, invoiceSpec, Sound), tasks.CategoryPermanent, "M8/108")
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "5105600001")}}
			},
			breaches: []string{breachFailedPosted}, failedN: 1,
		},
		{
			name: "a sound posting failed permanently",
			world: func() world {
				return world{[]*outcome{failed(key(1, journalSpec, Sound), tasks.CategoryPermanent, "F5/507")}, nil}
			},
			breaches: []string{breachLost}, lost: 1, failedN: 1,
		},
		{
			name: "failed without SAP's message",
			world: func() world {
				return world{[]*outcome{failed(key(1, journalSpec, UnknownGLAccount), tasks.CategoryUnknown, "attempts_exhausted")}, nil}
			},
			breaches: []string{breachLost}, lost: 1, failedN: 1,
		},
		{
			name: "a flawed posting failed with another SAP message",
			world: func() world {
				return world{[]*outcome{failed(key(1, invoiceSpec, UnknownGLAccount), tasks.CategoryPermanent, "F5/201")}, nil}
			},
			breaches: []string{breachWrongCode}, failedN: 1,
		},
		{
			name: "SAP posted a flawed posting",
			world: func() world {
				a := succeeded(key(1, invoiceSpec, ClosedPeriod), "5105600001")
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "5105600001")}}
			},
			breaches: []string{breachAcceptedBad}, succeededN: 1,
		},
		{
			name: "stuck, cancelled, never accepted",
			world: func() world {
				return world{[]*outcome{status(key(1, invoiceSpec, Sound), tasks.StatusRetrying), status(key(2, journalSpec, Sound), tasks.StatusCancelled), key(3, journalSpec, Sound)}, nil}
			},
			breaches: []string{breachLost, breachLost, breachLost}, lost: 3,
		},
		{
			name: "the same key and payload refused as a conflict",
			world: func() world {
				a := succeeded(key(1, journalSpec, Sound), "0100000001")
				a.conflict = "already used for job x with different content"
				return world{[]*outcome{a}, []sim.LedgerDocument{docOf(a, "0100000001")}}
			},
			breaches: []string{breachConflict}, succeededN: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			v := check(w.keys, w.docs)
			if got, want := strings.Join(kindsOf(v), ","), strings.Join(tc.breaches, ","); got != want {
				t.Errorf("breaches [%s], want [%s]:\n%v", got, want, v.breaches)
			}
			if v.duplicates != tc.duplicates || v.lost != tc.lost || v.succeeded != tc.succeededN || v.failed != tc.failedN {
				t.Errorf("duplicates %d lost %d succeeded %d failed %d, want %d %d %d %d",
					v.duplicates, v.lost, v.succeeded, v.failed, tc.duplicates, tc.lost, tc.succeededN, tc.failedN)
			}
			if v.postings != len(w.keys) || v.documents != len(w.docs) {
				t.Errorf("postings %d documents %d, want %d %d", v.postings, v.documents, len(w.keys), len(w.docs))
			}
		})
	}
}

func TestBreachNamesTheKey(t *testing.T) {
	k := failed(key(7, invoiceSpec, Sound), tasks.CategoryPermanent, "M8/108")
	k.jobIDs = append(k.jobIDs, "job-7-again")
	k.seen = &mcpfront.Posting{JobID: "job-7", Status: tasks.StatusSucceeded, Result: &tasks.Result{CompanyCode: "1010", Document: "5105600007", FiscalYear: "2026"}}
	v := check([]*outcome{k}, []sim.LedgerDocument{docOf(k, "5105600007")})
	if len(v.breaches) != 1 {
		t.Fatalf("breaches %v", v.breaches)
	}
	s := v.breaches[0].String()
	for _, want := range []string{"key-7", "agent-1", k.plan.Identity().Reference(), "job-7-again", "1010/5105600007/2026", "succeeded", "M8/108"} {
		if !strings.Contains(s, want) {
			t.Errorf("breach does not mention %q:\n%s", want, s)
		}
	}
}

// A billing document carries no reference of sapq's: the checker gives it
// to the key that bills exactly its sales documents.
func TestCheckAttributesBillingDocumentsByTheirOrders(t *testing.T) {
	billing := &kinds[slices.IndexFunc(kinds, func(s kindSpec) bool { return s.kind == tasks.KindBillingDocument })]
	bill := func(n int, orders ...string) *outcome {
		k := key(n, billing, Sound)
		k.plan.Args, _ = json.Marshal(tasks.BillingDocument{Key: k.plan.Key, SalesDocuments: orders})
		return k
	}
	doc := func(number string, orders ...string) sim.LedgerDocument {
		return sim.LedgerDocument{Kind: sim.KindBillingDocument, Document: number, FiscalYear: "2026", CompanyCode: "1010", SalesDocuments: orders}
	}
	a, b := succeeded(bill(1, "0000000002", "1"), "90000000"), succeeded(bill(2, "3"), "90000001")
	v := check([]*outcome{a, b}, []sim.LedgerDocument{doc("90000000", "1", "2"), doc("90000001", "3")})
	if len(v.breaches) != 0 || v.succeeded != 2 {
		t.Errorf("breaches %v", v.breaches)
	}
	v = check([]*outcome{succeeded(bill(1, "1"), "90000000")}, []sim.LedgerDocument{doc("90000000", "1"), doc("90000001", "1", "2")})
	if got := strings.Join(kindsOf(v), ","); got != breachUnattributed {
		t.Errorf("a billing document of other orders: breaches [%s], want [%s]", got, breachUnattributed)
	}
}

// A reversal is attributed by the document it reverses: the key that
// reverses the original's document owns SAP's one reversal of it (a
// supplier invoice's carries the original's reference); a second reversal
// is unattributed, and a reversal key that failed is lost.
func TestCheckAttributesReversalsByTheirOriginal(t *testing.T) {
	reversalSpec := &kinds[slices.IndexFunc(kinds, func(s kindSpec) bool { return s.kind == tasks.KindReversePosting })]
	world := func() (orig, rev *outcome, docs []sim.LedgerDocument) {
		orig = succeeded(key(1, invoiceSpec, Sound), "5105600001")
		rev = succeeded(key(2, reversalSpec, Sound), "5105600002")
		rev.plan.Reverses = orig.plan
		reversal := docOf(orig, "5105600002")
		reversal.Reverses = "5105600001"
		return orig, rev, []sim.LedgerDocument{docOf(orig, "5105600001"), reversal}
	}
	orig, rev, docs := world()
	if v := check([]*outcome{orig, rev}, docs); len(v.breaches) != 0 || v.succeeded != 2 {
		t.Fatalf("one original, its one reversal: breaches %v, succeeded %d", v.breaches, v.succeeded)
	}
	// The original's job forgotten and resubmitted after the reversal: it
	// finds its document reversed and fails saying so, keeping it.
	orig, rev, docs = world()
	orig.final = &mcpfront.Posting{JobID: "job-1b", Status: tasks.StatusFailed, Result: orig.final.Result,
		Error: &tasks.JobError{Code: "sapq/reversed", Category: tasks.CategoryReversed}}
	if v := check([]*outcome{orig, rev}, docs); len(v.breaches) != 0 {
		t.Fatalf("an original found reversed: %v", v.breaches)
	}
	// A second reversal of the same document.
	orig, rev, docs = world()
	second := docs[1]
	second.Document = "5105600003"
	if v := check([]*outcome{orig, rev}, append(docs, second)); !slices.Equal(kindsOf(v), []string{breachDuplicate}) {
		t.Fatalf("two reversals: %v", kindsOf(v))
	}
	// The reversal key failed as already reversed although SAP holds one
	// reversal, which no other key made: lost.
	orig, rev, docs = world()
	failed(rev, tasks.CategoryPermanent, "sapq/already_reversed")
	if v := check([]*outcome{orig, rev}, docs); !slices.Contains(kindsOf(v), breachFailedPosted) {
		t.Fatalf("a reversal failed while SAP holds its reversal: %v", kindsOf(v))
	}
	// A reversal whose original did not succeed is not submitted.
	orig, rev, _ = world()
	failed(orig, tasks.CategoryPermanent, "F5/201")
	rev.final, rev.seen, rev.skipped = nil, nil, "its original did not succeed"
	if v := check([]*outcome{orig, rev}, nil); slices.Contains(kindsOf(v), breachLost) && len(v.breaches) != 1 || v.skipped != 1 {
		t.Fatalf("a skipped reversal: %v skipped %d", kindsOf(v), v.skipped)
	}
}
