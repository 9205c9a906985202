package tasks

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"

	"github.com/google/uuid"
)

// DefaultDestination names the SAP system a posting goes to when only one is
// configured. The destination is part of a posting's SAP-side identity, so a
// destination must never be renamed while postings to it may be replayed.
const DefaultDestination = "default"

// Identity is what makes a posting the same posting in SAP's eyes: who
// submitted it, under which idempotency key, with what content (its
// Fingerprint), to which SAP system. Everything sapq writes into SAP to
// recognise a document again (the reference, the SOAP message UUID) is
// derived from it, never from the job ID: a job that the ledger forgot
// (Redis lost its last writes, or its retention ended) and that the agent
// submits again, unchanged, under the same key is recognised in SAP as the
// document it already holds. A key used again after its retention for other
// content is another posting, and finds nothing.
type Identity struct {
	Caller, Key, Fingerprint, Destination string
}

// IdentityOf returns the identity of a job posted to destination.
func IdentityOf(j *Job, destination string) Identity {
	return Identity{Caller: j.Caller, Key: j.IdempotencyKey, Fingerprint: j.Fingerprint, Destination: destination}
}

// IdentityOfPosting returns the identity of a posting submitted by caller
// to destination.
func IdentityOfPosting(caller string, p Posting, destination string) (Identity, error) {
	fp, _, err := Fingerprint(p)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Caller: caller, Key: p.IdempotencyKey(), Fingerprint: fp, Destination: destination}, nil
}

// LenSAPReference is the length of the reference sapq writes into SAP: it
// fits the shortest field it goes into (a material document's
// ReferenceDocument, 16) as well as AssignmentReference (18).
const LenSAPReference = 16

// Reference is the posting's reference in SAP: "SQ" and 14 base32
// characters (70 bits) of a SHA-256 over the identity. Upper case letters and
// digits only, so that SAP stores it unchanged in UpperCase fields and an
// OData $filter needs no escaping.
func (id Identity) Reference() string {
	h := sha256.New()
	for _, part := range []string{"sapq/ref/v2", id.Caller, id.Key, id.Fingerprint, id.Destination} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "SQ" + base32.StdEncoding.EncodeToString(h.Sum(nil))[:LenSAPReference-2]
}

// messageNamespace is the UUID namespace of SOAP message UUIDs.
var messageNamespace = uuid.MustParse("5a9c0f0e-6d1b-4f43-9a55-7361707100a1")

// MessageUUID is the SOAP MessageHeader/UUID of the posting's sends of one
// generation. SAP's SOAP runtime answers a repeated UUID with the original
// response, refusals included: a resend after an unknown outcome keeps the
// generation (SAP recognises it), a send after a definite refusal takes the
// next one (or SAP would replay the refusal).
func (id Identity) MessageUUID(generation int) string {
	return uuid.NewSHA1(messageNamespace, []byte(id.Reference()+"/"+strconv.Itoa(generation))).String()
}
