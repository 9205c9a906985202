package chaos

import (
	"encoding/json"

	"github.com/sapq/sapq/tasks"
)

// v1References are the references the old protocol (version 1) wrote into
// SAP, so that the harness can show where it breaks: the supplier's invoice
// number for supplier invoices (the simulator's ledger reference of an
// invoice was its invoice number) and a reference derived from each job ID
// for journal entries. Delete this file, its call in sapReferences and the
// "protocol v1 references" case of TestCheckVerdicts once version 2 is the
// only protocol.
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
