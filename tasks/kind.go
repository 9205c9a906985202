package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind names a posting kind. It is also the asynq task type suffix and the
// value agents see in tool results.
type Kind string

const (
	KindSupplierInvoice Kind = "supplier_invoice"
	KindJournalEntry    Kind = "journal_entry"
)

// Kinds lists every posting kind sapq accepts.
var Kinds = []Kind{KindSupplierInvoice, KindJournalEntry}

// Valid reports whether k is a kind sapq knows.
func (k Kind) Valid() bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// TaskType is the asynq task type that carries postings of this kind.
func (k Kind) TaskType() string { return "posting:" + string(k) }

// Posting is the typed payload of one posting kind, in the style of River's
// JobArgs: the value knows its kind and how to check itself.
type Posting interface {
	Kind() Kind
	// IdempotencyKey is the caller's key for this submission.
	IdempotencyKey() string
	// Validate returns a *ValidationError listing every violation, or nil.
	Validate() error
}

// MaxPayloadBytes bounds one encoded posting. 999 lines of generous size fit
// well below it; anything larger is not a posting but an accident or an attack.
const MaxPayloadBytes = 1 << 20

// Decode strictly decodes and validates a posting of the given kind: unknown
// fields, wrong types, trailing data and oversized input are errors, reported
// as a *ValidationError with field paths an agent can act on.
//
// Shape and content are checked in one pass: when the shape is wrong (an
// unknown field, a number for an amount), the rest of the document is still
// validated, and the answer lists the content violations of the fields the
// shape errors do not already name, so that an agent fixes everything in
// one round.
func Decode(kind Kind, raw []byte) (Posting, error) {
	p, err := decode(kind, raw)
	if err != nil {
		var shape *ValidationError
		if errors.As(err, &shape) && len(raw) <= MaxPayloadBytes {
			return nil, withContentErrors(kind, raw, shape)
		}
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// withContentErrors adds to shape errors the content violations of a
// lenient decoding (encoding/json skips values of the wrong type and
// unknown fields), except for fields a shape error already names.
func withContentErrors(kind Kind, raw []byte, shape *ValidationError) error {
	p := newPosting(kind)
	var syntax *json.SyntaxError
	if p == nil || len(shape.Fields) >= MaxFieldErrors || errors.As(json.Unmarshal(raw, p), &syntax) {
		return shape
	}
	var content *ValidationError
	if !errors.As(p.Validate(), &content) {
		return shape
	}
	var c checker
	covered := func(field string) bool {
		for _, s := range shape.Fields {
			if s.Field == "" || field == s.Field || strings.HasPrefix(field, s.Field+".") || strings.HasPrefix(field, s.Field+"[") {
				return true
			}
		}
		return false
	}
	for _, f := range shape.Fields {
		c.add(f.Field, "%s", f.Message)
	}
	for _, f := range content.Fields {
		if f.Field != "" && !covered(f.Field) {
			c.add(f.Field, "%s", f.Message)
		}
	}
	return c.err()
}

func newPosting(kind Kind) Posting {
	switch kind {
	case KindSupplierInvoice:
		return new(SupplierInvoice)
	case KindJournalEntry:
		return new(JournalEntry)
	}
	return nil
}

// decode is Decode without the validation of the content.
func decode(kind Kind, raw []byte) (Posting, error) {
	if len(raw) > MaxPayloadBytes {
		return nil, invalid("", fmt.Sprintf("request is %d bytes; the limit is %d bytes", len(raw), MaxPayloadBytes))
	}
	p := newPosting(kind)
	if p == nil {
		return nil, invalid("kind", fmt.Sprintf("unknown posting kind %q; known kinds: %s, %s", kind, KindSupplierInvoice, KindJournalEntry))
	}
	if err := DecodeStrict(raw, p); err != nil {
		return nil, err
	}
	return p, nil
}
