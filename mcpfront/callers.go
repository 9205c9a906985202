package mcpfront

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/sapq/sapq/tasks"
)

// CallersFileEnv is the environment variable conventionally naming the
// callers file (the --callers-file flag of sapq mcp).
const CallersFileEnv = "SAPQ_MCP_CALLERS_FILE"

// Role is what a caller is to sapq. It decides which scopes a caller can
// hold, and so which tools it sees.
type Role string

const (
	// RoleAgent submits postings and follows its own.
	RoleAgent Role = "agent"
	// RoleOperator is a person who can do what an agent does and, once
	// approval arrives, approve or reject other callers' postings.
	RoleOperator Role = "operator"
)

// Roles lists every role.
var Roles = []Role{RoleAgent, RoleOperator}

// Scope is an OAuth 2.0 scope sapq's tools require. Callers from the callers
// file or SAPQ_MCP_TOKENS hold the scopes of their role; OAuth callers hold
// the scopes of their access token, within those of their role.
type Scope string

const (
	ScopeWrite   Scope = "postings:write"   // submit and cancel postings
	ScopeRead    Scope = "postings:read"    // get and list one's postings
	ScopeOperate Scope = "postings:operate" // approve and reject others' postings
)

// Scopes lists every scope, as advertised in the protected-resource metadata.
var Scopes = []Scope{ScopeWrite, ScopeRead, ScopeOperate}

// Scopes returns the scopes a role can hold.
func (r Role) Scopes() []Scope {
	switch r {
	case RoleAgent:
		return []Scope{ScopeWrite, ScopeRead}
	case RoleOperator:
		return []Scope{ScopeWrite, ScopeRead, ScopeOperate}
	}
	return nil
}

// Caller is an authenticated identity and what it may do. A Caller is
// immutable: a reload of the callers file builds new ones, and a request
// keeps the Caller it was authenticated as.
type Caller struct {
	// Name is the ledger's caller: it owns the jobs it submits and sees
	// only those.
	Name   string
	Role   Role
	Scopes []Scope
	// Policy limits what the caller may post. The zero Policy limits
	// nothing.
	Policy Policy
	// Via says how the caller was authenticated: "token", "oauth" or
	// "stdio", for the audit log.
	Via string
}

// Has reports whether the caller holds a scope.
func (c *Caller) Has(s Scope) bool { return c != nil && slices.Contains(c.Scopes, s) }

// Callers is the directory of known callers: whom a bearer token or an OAuth
// subject belongs to. It is immutable; Server.SetCallers swaps a new one in.
// Only SHA-256 digests of tokens are held.
type Callers struct {
	tokens    []digestEntry
	entries   []*Caller
	bySubject map[string]*Caller
	byName    map[string]*Caller
}

// Len is the number of callers.
func (cs *Callers) Len() int {
	if cs == nil {
		return 0
	}
	return len(cs.entries)
}

// ByToken returns the caller a bearer token belongs to. The token's digest
// is compared with every entry in constant time, without stopping early,
// so timing reveals neither whether nor which token matched.
func (cs *Callers) ByToken(token string) (*Caller, bool) {
	if cs == nil {
		return nil, false
	}
	d := sha256.Sum256([]byte(token))
	match := -1
	for i := range cs.tokens {
		eq := subtle.ConstantTimeCompare(d[:], cs.tokens[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, false
	}
	return cs.entries[cs.tokens[match].index], true
}

// BySubject returns the caller registered for an OAuth subject.
func (cs *Callers) BySubject(sub string) (*Caller, bool) {
	if cs == nil {
		return nil, false
	}
	c, ok := cs.bySubject[sub]
	return c, ok
}

// ByName returns the caller of that name (the stdio transport's caller is
// named on the command line).
func (cs *Callers) ByName(name string) (*Caller, bool) {
	if cs == nil {
		return nil, false
	}
	c, ok := cs.byName[name]
	return c, ok
}

// CallersFile is the JSON document of a callers file:
//
//	{"callers": [
//	  {"name": "ap-agent", "token_sha256": "<64 hex digits>", "role": "agent",
//	   "policy": {"kinds": ["supplier_invoice"], "company_codes": ["1010"],
//	              "max_amount_per_posting": {"EUR": "10000.00"},
//	              "max_amount_per_day": {"EUR": "50000.00"},
//	              "approval_threshold": {"EUR": "5000.00"},
//	              "submissions_per_minute": 30}},
//	  {"name": "controller", "subject": "auth0|5f1c...", "role": "operator"}
//	]}
type CallersFile struct {
	Callers []CallerEntry `json:"callers"`
}

// CallerEntry is one caller in a callers file.
type CallerEntry struct {
	// Name is the caller's identity in the ledger: 1-64 letters, digits
	// or . _ @ -. Renaming a caller hides its earlier jobs from it.
	Name string `json:"name"`
	// TokenSHA256 is the hex SHA-256 of the caller's bearer token
	// (printf %s "$TOKEN" | sha256sum). The token itself is never written
	// down here.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	// Subject is the caller's OAuth subject (the access token's sub claim)
	// in OAuth mode.
	Subject string      `json:"subject,omitempty"`
	Role    Role        `json:"role"`
	Policy  *PolicySpec `json:"policy,omitempty"`
}

// ParseCallers reads a callers file's content; name is used in errors.
// Every violation is reported at once, each with its JSON path, such as
// callers[2].policy.max_amount_per_day.EUR. No error quotes a token digest.
func ParseCallers(data []byte, name string) (*Callers, error) {
	var f CallersFile
	if err := tasks.DecodeStrict(data, &f); err != nil {
		var verr *tasks.ValidationError
		if errors.As(err, &verr) {
			return nil, callersFileError(name, verr.Fields)
		}
		return nil, fmt.Errorf("mcpfront: callers file %s: %w", name, err)
	}
	var b callersBuilder
	for i, e := range f.Callers {
		b.add(fmt.Sprintf("callers[%d]", i), e)
	}
	if f.Callers == nil {
		b.errs = append(b.errs, tasks.FieldError{Field: "callers", Message: "is required: a list of callers"})
	}
	if len(b.errs) > 0 {
		return nil, callersFileError(name, b.errs)
	}
	return b.set, nil
}

func callersFileError(name string, fields []tasks.FieldError) error {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.String()
	}
	return fmt.Errorf("mcpfront: callers file %s: %s", name, strings.Join(parts, "; "))
}

// LoadCallersFile reads and checks a callers file.
func LoadCallersFile(path string) (*Callers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mcpfront: callers file: %w", err)
	}
	return ParseCallers(data, path)
}

type callersBuilder struct {
	set  *Callers
	errs []tasks.FieldError
	seen map[[sha256.Size]byte]string
}

func (b *callersBuilder) fail(field, format string, args ...any) {
	b.errs = append(b.errs, tasks.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (b *callersBuilder) init() {
	if b.set == nil {
		b.set = &Callers{bySubject: map[string]*Caller{}, byName: map[string]*Caller{}}
		b.seen = map[[sha256.Size]byte]string{}
	}
}

func (b *callersBuilder) add(at string, e CallerEntry) {
	b.init()
	n := len(b.errs)
	if !validCaller(e.Name) {
		b.fail(at+".name", "must be 1-64 letters, digits or . _ @ -")
	} else if _, dup := b.set.byName[e.Name]; dup {
		b.fail(at+".name", "caller %q appears more than once", e.Name)
	}
	if !slices.Contains(Roles, e.Role) {
		b.fail(at+".role", "must be agent or operator")
	}
	var digest [sha256.Size]byte
	switch {
	case e.TokenSHA256 == "" && e.Subject == "":
		b.fail(at, "needs token_sha256 (a bearer token's SHA-256) or subject (an OAuth subject), or both")
	case e.TokenSHA256 != "":
		raw, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(raw) != sha256.Size {
			// Never quoted: it may be a token pasted by mistake.
			b.fail(at+".token_sha256", "must be 64 hex digits, the SHA-256 of the token (printf %%s \"$TOKEN\" | sha256sum), not the token")
			break
		}
		copy(digest[:], raw)
		if other, dup := b.seen[digest]; dup {
			b.fail(at+".token_sha256", "is the same token as caller %q's: two callers sharing a token could not be told apart", other)
		}
	}
	if e.Subject != "" {
		if len(e.Subject) > 255 || !printable(e.Subject) {
			b.fail(at+".subject", "must be 1-255 printable characters without blanks")
		} else if _, dup := b.set.bySubject[e.Subject]; dup {
			b.fail(at+".subject", "is registered twice")
		}
	}
	policy, perrs := e.Policy.compile(at + ".policy")
	b.errs = append(b.errs, perrs...)
	if len(b.errs) > n {
		return
	}
	c := &Caller{Name: e.Name, Role: e.Role, Scopes: e.Role.Scopes(), Policy: policy, Via: "token"}
	b.set.entries = append(b.set.entries, c)
	b.set.byName[c.Name] = c
	if e.TokenSHA256 != "" {
		b.seen[digest] = c.Name
		b.set.tokens = append(b.set.tokens, digestEntry{digest: digest, index: len(b.set.entries) - 1})
	}
	if e.Subject != "" {
		b.set.bySubject[e.Subject] = c
	}
}

// Merge returns a directory of the callers of both. A name or token in
// both is an error: the same caller must not be described twice.
func (cs *Callers) Merge(other *Callers) (*Callers, error) {
	var b callersBuilder
	b.init()
	for _, src := range []*Callers{cs, other} {
		if src == nil {
			continue
		}
		for _, t := range src.tokens {
			c := src.entries[t.index]
			if other, dup := b.seen[t.digest]; dup {
				return nil, fmt.Errorf("mcpfront: caller %q has the same token as caller %q", c.Name, other)
			}
			b.seen[t.digest] = c.Name
		}
		for _, c := range src.entries {
			if _, dup := b.set.byName[c.Name]; dup {
				return nil, fmt.Errorf("mcpfront: caller %q is defined twice (callers file and %s)", c.Name, TokensEnv)
			}
			b.set.byName[c.Name] = c
			b.set.entries = append(b.set.entries, c)
		}
		for sub, c := range src.bySubject {
			b.set.bySubject[sub] = c
		}
		base := len(b.set.entries) - len(src.entries)
		for _, t := range src.tokens {
			b.set.tokens = append(b.set.tokens, digestEntry{digest: t.digest, index: base + t.index})
		}
	}
	return b.set, nil
}

// Callers returns the token set as a directory of agents without policy
// limits: the simple form of SAPQ_MCP_TOKENS.
func (ts TokenSet) Callers() *Callers {
	var b callersBuilder
	b.init()
	for _, t := range ts.entries {
		c := &Caller{Name: t.caller, Role: RoleAgent, Scopes: RoleAgent.Scopes(), Via: "token"}
		if _, dup := b.set.byName[c.Name]; dup {
			// The same caller with several tokens (a rotation): one Caller.
			c = b.set.byName[c.Name]
		} else {
			b.set.entries = append(b.set.entries, c)
			b.set.byName[c.Name] = c
		}
		b.set.tokens = append(b.set.tokens, digestEntry{digest: t.digest, index: slices.Index(b.set.entries, c)})
	}
	return b.set
}

// digestEntry maps a token's SHA-256 to its caller in Callers.entries.
type digestEntry struct {
	digest [sha256.Size]byte
	index  int
}
