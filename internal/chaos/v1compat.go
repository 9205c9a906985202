package chaos

import (
	"context"
	"encoding/json"

	"github.com/sapq/sapq/tasks"
)

// This file lets the harness run against the old protocol (version 1) and
// its simulator, to show where they break. Delete it once version 2 is the
// only protocol, with what the compiler then names: the call of
// v1References in sapReferences and of simHasSlowCommits in startAll (and
// the slowSupported field and its note), and the "protocol v1 references"
// case of TestCheckVerdicts.

// v1References are the references the old protocol wrote into SAP: the
// supplier's invoice number for supplier invoices (the old simulator's
// ledger reference of an invoice) and a reference derived from each job ID
// for journal entries.
func v1References(k *outcome) []string {
	var refs []string
	var inv struct {
		Number string `json:"invoice_reference"`
	}
	if json.Unmarshal(k.plan.Args, &inv) == nil && inv.Number != "" {
		refs = append(refs, inv.Number)
	}
	for _, id := range k.jobIDs {
		refs = append(refs, tasks.ReferenceFor(id))
	}
	return refs
}

// simHasSlowCommits reports whether the simulator knows slow commits
// (slow_rate, slow_latency); the old one refuses faults that name them.
func (r *run) simHasSlowCommits(ctx context.Context) (bool, error) {
	var faults map[string]any
	if err := r.simGet(ctx, "/sim/faults", &faults); err != nil {
		return false, err
	}
	_, ok := faults["slow_rate"]
	return ok, nil
}
