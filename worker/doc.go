// Package worker posts queued jobs to SAP exactly once.
//
// Delivery from asynq is at least once: a task runs again after a crash, a
// lease expiry or a shutdown that outlasted its handler. Exactly-once comes
// from the protocol every handler follows, modelled on SAP's tRFC
// (check, execute, commit, confirm) over the ledger:
//
//  1. Claim the job. A posted job returns its stored result; a cancelled one
//     ends.
//  2. If the previous attempt's outcome is unknown (PhaseSending: a crash
//     mid-call, a timeout, a 5xx), look the document up in SAP by the
//     reference sapq wrote with it, and adopt it if found. If SAP cannot be
//     read, do not post: retry later.
//  3. Record "sending" (a compare-and-set that fences off a concurrent
//     delivery), then post under the job's context and a timeout.
//  4. Record the result before acknowledging the task.
//
// Failures are classified by the sap package: permanent ones fail the job at
// once with SAP's message, transient ones are retried with exponential
// backoff and jitter (honouring Retry-After), and unknown outcomes are retried
// through step 2.
package worker
