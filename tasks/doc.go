// Package tasks is sapq's job contract: the posting kinds, their typed
// payloads, strict decoding and validation, idempotency keys and job states.
//
// Everything an agent can submit is described here and nowhere else. A
// posting is decoded strictly (unknown fields are an error), validated with a
// field-level message for every violation, and only then recorded. Amounts are
// decimal strings on the wire and exact decimals inside; no float ever touches
// money.
package tasks
