package chaos

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
)

// outcome is what the agents learnt about one key over the run.
type outcome struct {
	plan *keyPlan
	// jobIDs are the distinct job IDs the key's submissions answered, in the
	// order they were first seen: more than one means the ledger forgot a
	// job and a resubmission created another.
	jobIDs      []string
	submissions int // submit calls that got an answer (accepted or replayed)
	resubmits   int // submissions after a not_found
	notFound    int // get_posting answers not_found
	conflict    string
	// skipped says why a reversal was not submitted (its original did not
	// succeed); "" for a key that was.
	skipped string
	// reversedInPlan is set (by check) for a key whose document a
	// reversal key of the plan reverses.
	reversedInPlan bool
	// seen is the first terminal state an agent saw; final is the job's
	// state when the run ended (nil if it was never read).
	seen, final *mcpfront.Posting
}

func (o *outcome) addJob(id string) {
	if !slices.Contains(o.jobIDs, id) {
		o.jobIDs = append(o.jobIDs, id)
	}
}

// Breach kinds.
const (
	breachDuplicate    = "duplicate"         // more than one document for a key
	breachUnattributed = "unattributed"      // a document no key accounts for
	breachLost         = "lost"              // neither its document nor a clear failure
	breachMismatch     = "document_mismatch" // the job names another document than SAP holds
	breachFailedPosted = "failed_with_document"
	breachConflict     = "idempotency_conflict" // the same key and payload refused as different
	breachAcceptedBad  = "flaw_accepted"        // SAP posted a document the harness made invalid
	breachWrongCode    = "wrong_failure"        // a flawed posting failed for another reason
)

// breach is one violation of the exactly-once promise.
type breach struct {
	kind   string
	key    *outcome // nil for an unattributed document
	detail string
}

func (b breach) String() string {
	if b.key == nil {
		return b.kind + ": " + b.detail
	}
	k := b.key
	var s strings.Builder
	fmt.Fprintf(&s, "%s: key %s (caller %s, %s, %s): %s", b.kind, k.plan.Key, k.plan.Caller, k.plan.Spec.kind, k.plan.Flaw, b.detail)
	fmt.Fprintf(&s, "\n    reference %s, jobs %v, submissions %d, not_found %d, resubmits %d",
		k.plan.Identity().Reference(), k.jobIDs, k.submissions, k.notFound, k.resubmits)
	if k.seen != nil {
		fmt.Fprintf(&s, "\n    first terminal state seen: %s", describePosting(k.seen))
	}
	if k.final != nil {
		fmt.Fprintf(&s, "\n    final state: %s", describePosting(k.final))
	}
	return s.String()
}

func describePosting(p *mcpfront.Posting) string {
	s := fmt.Sprintf("job %s %s attempts %d", p.JobID, p.Status, p.Attempts)
	if p.Result != nil {
		s += fmt.Sprintf(" document %s/%s/%s reconciled=%t", p.Result.CompanyCode, p.Result.Document, p.Result.FiscalYear, p.Result.Reconciled)
	}
	if p.Error != nil {
		s += fmt.Sprintf(" error [%s] %s %q", p.Error.Category, p.Error.Code, p.Error.Message)
	}
	return s
}

// verdict is the checker's finding over a run.
type verdict struct {
	postings, documents int
	succeeded, failed   int
	// duplicates counts documents beyond the first of a key, and documents
	// no key accounts for; lost counts keys with neither their document nor
	// a failure that carries SAP's message.
	duplicates, lost int
	// skipped counts reversals not submitted because their original did
	// not succeed.
	skipped  int
	breaches []breach
}

// sapMessageCode is a T100 message class and number, such as F5/201.
var sapMessageCode = regexp.MustCompile(`^[A-Z0-9/_]{1,20}/[0-9]{3}$`)

// check holds the run's outcomes against SAP's ledger: every key has exactly
// one document, or a failed job whose error carries SAP's message and no
// document; there are no other documents.
func check(keys []*outcome, docs []sim.LedgerDocument) verdict {
	v := verdict{postings: len(keys), documents: len(docs)}
	byRef := map[string][]int{}
	for i, d := range docs {
		byRef[ledgerKey(d)] = append(byRef[ledgerKey(d)], i)
	}
	claimed := make([]bool, len(docs))
	reversedInPlan := map[*keyPlan]bool{}
	byPlan := map[*keyPlan]*outcome{}
	for _, k := range keys {
		byPlan[k.plan] = k
		if k.plan.Reverses != nil && k.skipped == "" {
			reversedInPlan[k.plan.Reverses] = true
		}
	}
	for _, k := range keys {
		k.reversedInPlan = reversedInPlan[k.plan]
		var mine []sim.LedgerDocument
		for _, ref := range sapReferences(k, byPlan) {
			for _, i := range byRef[ref] {
				if !claimed[i] {
					claimed[i] = true
					mine = append(mine, docs[i])
				}
			}
		}
		v.checkKey(k, mine)
	}
	for i, d := range docs {
		if !claimed[i] {
			v.duplicates++
			v.add(breach{kind: breachUnattributed, detail: fmt.Sprintf("%s %s posted at %s with reference %q, which no key accounts for",
				d.Kind, docName(d), d.PostedAt.Format(time.RFC3339Nano), d.Reference)})
		}
	}
	return v
}

func (v *verdict) add(b breach) { v.breaches = append(v.breaches, b) }

func (v *verdict) checkKey(k *outcome, docs []sim.LedgerDocument) {
	if k.conflict != "" {
		v.add(breach{kind: breachConflict, key: k, detail: k.conflict})
	}
	if len(docs) > 1 {
		v.duplicates += len(docs) - 1
		v.add(breach{kind: breachDuplicate, key: k, detail: fmt.Sprintf("SAP holds %d documents: %s", len(docs), docNames(docs))})
	}
	lost := func(detail string) {
		v.lost++
		v.add(breach{kind: breachLost, key: k, detail: detail})
	}
	p := k.final
	switch {
	case p == nil && k.skipped != "" && len(docs) == 0:
		v.skipped++
	case p == nil:
		lost(fmt.Sprintf("never accepted or never read back; SAP holds %d document(s)", len(docs)))
	case p.Status == tasks.StatusSucceeded:
		v.succeeded++
		if p.Result == nil {
			lost("succeeded without a result")
			return
		}
		if k.plan.Flaw != Sound {
			v.add(breach{kind: breachAcceptedBad, key: k, detail: fmt.Sprintf("expected SAP to refuse it with %s", k.plan.Flaw.Code())})
		}
		if len(docs) == 0 {
			lost(fmt.Sprintf("job says document %s/%s/%s but SAP holds none for the key", p.Result.CompanyCode, p.Result.Document, p.Result.FiscalYear))
			return
		}
		if !slices.ContainsFunc(docs, func(d sim.LedgerDocument) bool { return sameDocument(d, p.Result) }) {
			v.add(breach{kind: breachMismatch, key: k, detail: fmt.Sprintf("job says document %s/%s/%s, SAP holds %s",
				p.Result.CompanyCode, p.Result.Document, p.Result.FiscalYear, docNames(docs))})
		}
	case p.Status == tasks.StatusFailed:
		v.failed++
		if len(docs) > 0 {
			if k.reversedInPlan && p.Error != nil && p.Error.Code == "sapq/reversed" && p.Result != nil && len(docs) == 1 && sameDocument(docs[0], p.Result) {
				// A job of the key that Redis forgot came back after the
				// plan's reversal: it found its document reversed and
				// says so, keeping it. Exactly once, and no lie.
				return
			}
			v.add(breach{kind: breachFailedPosted, key: k, detail: "the job failed but SAP holds " + docNames(docs)})
			return
		}
		if p.Error == nil || p.Error.Category != tasks.CategoryPermanent || !sapMessageCode.MatchString(p.Error.Code) {
			lost("failed without a refusal from SAP, and SAP holds no document")
			return
		}
		if k.plan.Flaw == Sound {
			lost("a sound posting failed permanently, and SAP holds no document")
			return
		}
		if p.Error.Code != k.plan.Flaw.Code() {
			v.add(breach{kind: breachWrongCode, key: k, detail: fmt.Sprintf("expected %s", k.plan.Flaw.Code())})
		}
	default:
		lost(fmt.Sprintf("still %s when the run ended; SAP holds %d document(s)", p.Status, len(docs)))
	}
}

// sapReferences are the references under which SAP may hold the key's
// document: the one derived from the submission (tasks.Identity), or for a
// billing document, which carries none, the sales documents it bills.
func sapReferences(k *outcome, byPlan map[*keyPlan]*outcome) []string {
	if k.plan.Reverses != nil {
		// A reversal document is the key's that reverses the original's
		// document: the original key's, as its job last named it.
		o := byPlan[k.plan.Reverses]
		if o == nil {
			return nil
		}
		p := o.final
		if p == nil {
			p = o.seen
		}
		if p == nil || p.Result == nil {
			return nil
		}
		return []string{reversalKey(string(o.plan.Spec.kind), p.Result.CompanyCode, p.Result.Document, p.Result.FiscalYear)}
	}
	if k.plan.Spec.kind == tasks.KindBillingDocument {
		var b tasks.BillingDocument
		if err := json.Unmarshal(k.plan.Args, &b); err != nil {
			panic(fmt.Sprintf("chaos: planned billing %s: %v", k.plan.Key, err))
		}
		return []string{billingKey(b.BilledDocuments())}
	}
	return []string{k.plan.Identity().Reference()}
}

// ledgerKey is what attributes a document of SAP's ledger to a key: its
// reference, or for a billing document the sales documents it bills.
func ledgerKey(d sim.LedgerDocument) string {
	if d.Reverses != "" {
		// A reversal document (supplier invoices' carry the original's
		// reference) is attributed by the document it reverses.
		return reversalKey(string(d.Kind), d.CompanyCode, d.Reverses, d.FiscalYear)
	}
	if d.Kind == sim.KindBillingDocument {
		return billingKey(d.SalesDocuments)
	}
	return d.Reference
}

func reversalKey(kind, companyCode, document, fiscalYear string) string {
	return "reversal of " + kind + " " + companyCode + "/" + document + "/" + fiscalYear
}

func billingKey(salesDocuments []string) string {
	return "billing of " + strings.Join(salesDocuments, "+")
}

func sameDocument(d sim.LedgerDocument, r *tasks.Result) bool {
	return d.CompanyCode == r.CompanyCode && d.Document == r.Document && d.FiscalYear == r.FiscalYear
}

func docName(d sim.LedgerDocument) string {
	return d.CompanyCode + "/" + d.Document + "/" + d.FiscalYear
}

func docNames(docs []sim.LedgerDocument) string {
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = docName(d) + " (posted " + d.PostedAt.Format("15:04:05.000") + ")"
	}
	return strings.Join(names, ", ")
}
