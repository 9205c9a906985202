// Package worker posts queued jobs to SAP exactly once.
//
// Delivery from asynq is at least once: a task runs again after a crash, a
// lease expiry (asynq's, or the quicker one of recover.go, which requeues a
// task whose lease no live server renewed for Options.RecoverAfter), a
// shutdown that outlasted its handler, or an operator's "Run" in the Asynq
// UI. The ledger in Redis can lose its last writes. SAP is
// the system of record, and the protocol every handler follows (modelled on
// SAP's tRFC: check, execute, commit, confirm) keeps one rule: nothing is
// sent to SAP unless, immediately before, a look-up in SAP by the posting's
// reference found no document of it, at a time when every earlier call that
// may have carried that reference must have ended.
//
//  1. Claim the job. A posted, cancelled or failed job, or a task of an
//     earlier run (the job was reprocessed since), ends the delivery: failed
//     is final until an operator reprocesses it.
//  2. Wait, without spending the retry budget, until no earlier call can
//     still be in flight: the settle time after the last call the ledger
//     knows of (PhaseSending), and the settle time after a Redis loss, when
//     the ledger may have forgotten calls (tasks/ledger/loss.go).
//     Then take the leases of the SAP objects the posting changes and a
//     call slot of its destination (locks.go), so that jobs of one SAP
//     object never overlap in SAP and a destination never gets more than
//     Options.MaxInFlight calls; a busy job goes back to the queue, again
//     without spending the retry budget, and the leases are held until the
//     outcome is recorded.
//  3. Look the document up in SAP by the reference derived from who
//     submitted it under which key (tasks.Identity): a posting's own
//     document is adopted, a reversed one is not posted again, and if SAP
//     cannot be read nothing is sent.
//  4. Record "sending" (a compare-and-set that fences off a concurrent
//     delivery; inside a loss window it refuses), confirm the leases, then
//     post under the job's context and a timeout, carrying the reference
//     and, for SOAP, the message UUID of the job's generation: the same
//     after an unknown outcome, so that SAP recognises the repeat, a new one
//     after a definite refusal, which SAP would otherwise replay.
//  5. Record what SAP's answer proves before acknowledging the task,
//     retrying the record while Redis is away.
//
// Failures are classified by the sap package: permanent ones fail the job at
// once with SAP's message; transient ones are retried with exponential
// backoff and jitter (honouring Retry-After); unknown outcomes are retried
// through steps 2 and 3; "already exists" (M8/108) is looked up at once and
// adopted when it is the posting's own document. A permanent SAP code inside
// an HTTP 500 fails the job once the look-up after the settle time has found
// nothing.
//
// worker/model/exactlyonce.pml is a model of this protocol, checked by spin
// in CI; it and handler.go must change together.
package worker
