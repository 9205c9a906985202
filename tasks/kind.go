package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// Kind names a posting kind. It is also the asynq task type suffix and the
// value agents see in tool results.
type Kind string

// Spec declares a posting kind, once, in the manner of River's JobArgs: its
// name, the MCP tool agents submit it with, and the Go type that carries it,
// whose struct tags declare every field's rules (see rules.go). The tool's
// schema, the tool list, the server's instructions, the command line's help
// and the README's field tables are all derived from the specs. Each kind's
// spec lives in the kind's own file; registry lists them.
type Spec struct {
	Kind Kind
	// Tool is the MCP tool's name, Title its title.
	Tool, Title string
	// Summary says in one sentence what the posting is (for tool lists and
	// the server's instructions); Description adds what an agent must know
	// to fill it in.
	Summary, Description string
	// SAP names the SAP service and entity the kind posts to, and
	// Reference the field of it sapq's own reference goes into (see
	// Identity), where the look-up before every call searches.
	SAP, Reference string
	// Identity says how the look-up recognises the posting's document
	// when SAP gives it no field for sapq's reference (Reference "none");
	// empty when the reference is what it searches.
	Identity string
	// New returns an empty posting of the kind.
	New func() Posting
}

// registry is every posting kind sapq accepts, in the order tools are
// listed: adding a kind is adding its file and one line here.
var registry = []Spec{
	supplierInvoiceSpec,
	journalEntrySpec,
	salesOrderSpec,
	billingDocumentSpec,
	goodsMovementSpec,
	reversePostingSpec,
}

// Kinds lists every posting kind sapq accepts.
var Kinds = func() []Kind {
	out := make([]Kind, len(registry))
	for i, s := range registry {
		out[i] = s.Kind
	}
	return out
}()

// Specs returns the specs of every kind, in registry order.
func Specs() []Spec { return slices.Clone(registry) }

// SpecOf returns the spec of a kind.
func SpecOf(k Kind) (Spec, bool) {
	for _, s := range registry {
		if s.Kind == k {
			return s, true
		}
	}
	return Spec{}, false
}

// Valid reports whether k is a kind sapq knows.
func (k Kind) Valid() bool {
	_, ok := SpecOf(k)
	return ok
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
	// Facts are what policy, routing and serialisation need to know of a
	// valid posting.
	Facts() Facts
}

// Facts describe a posting for the decisions made around it.
type Facts struct {
	// Amount is the money the posting moves, in Currency, for the callers'
	// limits; zero for postings that move no money by themselves (a goods
	// movement, a reversal). AmountField names where it comes from.
	Amount      decimal.Decimal
	Currency    string
	AmountField string
	// Units are the organisational units the posting is made in.
	Units []OrgUnit
	// Objects are the SAP objects the posting changes, which SAP locks
	// while it posts ("supplier/1010/17300001"): postings that share one
	// are never sent at the same time.
	Objects []string
	// Destination is the SAP destination the posting names (its
	// `destination` field), or "" to route it by its company code (see
	// Routes).
	Destination string
}

// OrgUnitKind is a kind of organisational unit.
type OrgUnitKind string

const (
	UnitCompanyCode       OrgUnitKind = "company_code"
	UnitSalesOrganization OrgUnitKind = "sales_organization"
	UnitPlant             OrgUnitKind = "plant"
)

// OrgUnit is one organisational unit a posting is made in.
type OrgUnit struct {
	Kind  OrgUnitKind
	Field string // the posting's field it comes from
	Value string
}

// CompanyCode is the company code the posting is made in, or "".
func (f Facts) CompanyCode() string {
	for _, u := range f.Units {
		if u.Kind == UnitCompanyCode {
			return u.Value
		}
	}
	return ""
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

// SubmitOptions are the arguments every submit tool takes beside the
// posting's own fields: how to submit it, not what it is. They are not
// part of the posting, its fingerprint or its identity.
type SubmitOptions struct {
	// DryRun: validate, apply the policy and have SAP check the document
	// where it can, but record and send nothing.
	DryRun bool `json:"dry_run,omitempty" jsonschema:"true: check the document (validation, your policy, approval, and SAP's own check where SAP offers one) without recording or posting anything"`
}

var submitOptionFields = jsonFields(reflect.TypeOf(SubmitOptions{}))

// DecodeSubmission decodes a submit tool's arguments as Decode does, with
// the SubmitOptions beside the posting's fields.
func DecodeSubmission(kind Kind, raw []byte) (Posting, SubmitOptions, error) {
	var opts SubmitOptions
	p, sawOptions, err := decodeWith(kind, raw, submitOptionFields)
	if err != nil {
		var shape *ValidationError
		if errors.As(err, &shape) && len(raw) <= MaxPayloadBytes {
			return nil, opts, withContentErrors(kind, raw, shape)
		}
		return nil, opts, err
	}
	// The shape check has typed the options' fields already; without any,
	// there is nothing to read a second time.
	if sawOptions {
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, opts, invalid("", err.Error())
		}
	}
	if err := p.Validate(); err != nil {
		return nil, opts, err
	}
	if r, ok := p.(Resolver); ok && r.Resolved() {
		// What sapq resolves is sapq's to fill in: a caller who sent it
		// could name a document of someone else's.
		return nil, opts, invalid("original", "is filled in by sapq from job_id; do not send it")
	}
	return p, opts, nil
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
	if s, ok := SpecOf(kind); ok {
		return s.New()
	}
	return nil
}

// decode is Decode without the validation of the content.
func decode(kind Kind, raw []byte) (Posting, error) {
	p, _, err := decodeWith(kind, raw, nil)
	return p, err
}

// decodeWith decodes a posting with the top-level fields of extra beside
// its own; sawExtra is false only if none of them was present.
func decodeWith(kind Kind, raw []byte, extra map[string]reflect.Type) (_ Posting, sawExtra bool, _ error) {
	if len(raw) > MaxPayloadBytes {
		return nil, false, invalid("", fmt.Sprintf("request is %d bytes; the limit is %d bytes", len(raw), MaxPayloadBytes))
	}
	p := newPosting(kind)
	if p == nil {
		names := make([]string, len(Kinds))
		for i, k := range Kinds {
			names[i] = string(k)
		}
		return nil, false, invalid("kind", fmt.Sprintf("unknown posting kind %q; known kinds: %s", kind, strings.Join(names, ", ")))
	}
	sawExtra, err := decodeStrict(raw, p, extra)
	if err != nil {
		return nil, sawExtra, err
	}
	return p, sawExtra, nil
}
