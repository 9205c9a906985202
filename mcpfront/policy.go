package mcpfront

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bojanz/currency"
	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/tasks"
)

// Rule names a policy rule; a refusal names the rule that refused, in its
// text and as ToolError.Rule.
type Rule string

const (
	RuleAllowedKinds              Rule = "allowed_kinds"
	RuleAllowedCompanyCodes       Rule = "allowed_company_codes"
	RuleAllowedSalesOrganizations Rule = "allowed_sales_organizations"
	RuleAllowedPlants             Rule = "allowed_plants"
	RuleMaxAmountPerPosting       Rule = "max_amount_per_posting"
	RuleMaxAmountPerDay           Rule = "max_amount_per_day"
	RuleApprovalThreshold         Rule = "approval_threshold"
	RuleSubmissionsPerMinute      Rule = "submissions_per_minute"
	RuleScope                     Rule = "scope"
)

// PolicySpec is a caller's policy as written in the callers file. Every
// part is optional; an absent part limits nothing.
//
// Amounts are per currency, as decimal strings: sapq has no exchange rates
// and converting at some rate would make a limit depend on the day's
// market. A rule with amounts allows only the currencies it lists: a
// posting in another currency is refused by that rule rather than let
// through unlimited.
type PolicySpec struct {
	// Kinds the caller may submit; the submit tools of other kinds are not
	// listed to it.
	Kinds []tasks.Kind `json:"kinds,omitempty"`
	// CompanyCodes, SalesOrganizations and Plants the caller may post in
	// (each posting kind says which it posts in: tasks.Facts.Units).
	CompanyCodes       []string `json:"company_codes,omitempty"`
	SalesOrganizations []string `json:"sales_organizations,omitempty"`
	Plants             []string `json:"plants,omitempty"`
	// MaxAmountPerPosting bounds one posting's amount (see postingAmount).
	MaxAmountPerPosting map[string]string `json:"max_amount_per_posting,omitempty"`
	// MaxAmountPerDay bounds the sum of the caller's accepted postings per
	// currency and UTC day, counted in Redis.
	MaxAmountPerDay map[string]string `json:"max_amount_per_day,omitempty"`
	// ApprovalThreshold: postings above it wait in awaiting_approval until
	// an operator other than the submitter approves them.
	ApprovalThreshold map[string]string `json:"approval_threshold,omitempty"`
	// SubmissionsPerMinute overrides the server's default quota for this
	// caller; 0 means no quota.
	SubmissionsPerMinute *int `json:"submissions_per_minute,omitempty"`
}

// Policy is a compiled PolicySpec. The zero Policy limits nothing.
type Policy struct {
	Kinds                      []tasks.Kind // nil: every kind
	CompanyCodes               []string     // nil: every company code
	SalesOrganizations, Plants []string     // nil: every one
	MaxPerPosting,
	MaxPerDay,
	ApprovalThreshold map[string]decimal.Decimal // nil: no such rule
	// SubmissionsPerMinute is nil when the server's default applies.
	SubmissionsPerMinute *int
}

// maxLimit keeps every limit and every day's sum exact in Redis's Lua
// numbers (doubles): amounts have at most 11 integer and 2 fraction digits.
var maxLimit = decimal.New(1, 11)

func (p *PolicySpec) compile(at string) (Policy, []tasks.FieldError) {
	var pol Policy
	if p == nil {
		return pol, nil
	}
	var errs []tasks.FieldError
	fail := func(field, format string, args ...any) {
		errs = append(errs, tasks.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if p.Kinds != nil {
		if len(p.Kinds) == 0 {
			fail(at+".kinds", "is empty: omit it to allow every kind, or list the kinds allowed")
		}
		for i, k := range p.Kinds {
			if !k.Valid() {
				fail(fmt.Sprintf("%s.kinds[%d]", at, i), "unknown kind %q; one of %s", k, strings.Join(enumOf(tasks.Kinds), ", "))
			}
		}
		pol.Kinds = slices.Clone(p.Kinds)
	}
	units := func(name, what string, max int, list []string) []string {
		if list == nil {
			return nil
		}
		if len(list) == 0 {
			fail(at+"."+name, "is empty: omit it to allow every %s", what)
		}
		for i, v := range list {
			if v == "" || len(v) > max || strings.ToUpper(v) != v || strings.ContainsAny(v, " \t") {
				fail(fmt.Sprintf("%s.%s[%d]", at, name, i), "must be an SAP %s of 1-%d upper-case characters", what, max)
			}
		}
		return slices.Clone(list)
	}
	pol.CompanyCodes = units("company_codes", "company code", tasks.LenCompanyCode, p.CompanyCodes)
	pol.SalesOrganizations = units("sales_organizations", "sales organisation", 4, p.SalesOrganizations)
	pol.Plants = units("plants", "plant", 4, p.Plants)
	amounts := func(name string, m map[string]string) map[string]decimal.Decimal {
		if m == nil {
			return nil
		}
		if len(m) == 0 {
			fail(at+"."+name, "is empty: omit it for no limit, or give an amount per currency such as {\"EUR\": \"10000.00\"}")
		}
		out := make(map[string]decimal.Decimal, len(m))
		for cur, v := range m {
			field := at + "." + name + "." + cur
			if !currency.IsValid(cur) || strings.ToUpper(cur) != cur {
				fail(field, "is not an ISO 4217 currency code in upper case")
				continue
			}
			d, err := decimal.NewFromString(v)
			if err != nil || strings.ContainsAny(v, "eE") || -d.Exponent() > tasks.MaxFractionDigits {
				fail(field, "must be a decimal string with at most %d fraction digits, such as \"10000.00\"", tasks.MaxFractionDigits)
				continue
			}
			if d.IsNegative() || d.GreaterThanOrEqual(maxLimit) {
				fail(field, "must be between 0 and 99999999999.99")
				continue
			}
			out[cur] = d
		}
		return out
	}
	pol.MaxPerPosting = amounts("max_amount_per_posting", p.MaxAmountPerPosting)
	pol.MaxPerDay = amounts("max_amount_per_day", p.MaxAmountPerDay)
	pol.ApprovalThreshold = amounts("approval_threshold", p.ApprovalThreshold)
	if n := p.SubmissionsPerMinute; n != nil {
		if *n < 0 || *n > 100000 {
			fail(at+".submissions_per_minute", "must be between 0 (no quota) and 100000")
		}
		v := *n
		pol.SubmissionsPerMinute = &v
	}
	return pol, errs
}

// AllowsKind reports whether the policy lets the caller submit kind.
func (p Policy) AllowsKind(k tasks.Kind) bool { return p.Kinds == nil || slices.Contains(p.Kinds, k) }

// Violation is one policy rule a submission breaks.
type Violation struct {
	Rule    Rule
	Field   string
	Message string
}

// postingFacts are what a policy judges a posting by: its kind and what it
// says of itself (tasks.Facts: organisational units, amount).
type postingFacts struct {
	kind tasks.Kind
	tasks.Facts
}

// factsOf reads what the policy needs from a validated posting.
func factsOf(p tasks.Posting) postingFacts { return postingFacts{kind: p.Kind(), Facts: p.Facts()} }

// unitRules is the rule and the allowed list of each kind of
// organisational unit.
func (p Policy) unitRules() map[tasks.OrgUnitKind]struct {
	rule    Rule
	allowed []string
} {
	return map[tasks.OrgUnitKind]struct {
		rule    Rule
		allowed []string
	}{
		tasks.UnitCompanyCode:       {RuleAllowedCompanyCodes, p.CompanyCodes},
		tasks.UnitSalesOrganization: {RuleAllowedSalesOrganizations, p.SalesOrganizations},
		tasks.UnitPlant:             {RuleAllowedPlants, p.Plants},
	}
}

// check applies the rules that need no state, all at once: kind,
// organisational units, amount per posting and the approval threshold.
// The daily amount is checked afterwards in Redis, only if these pass. A
// posting above the approval threshold is not refused: approval says why
// it must wait for an operator's approval.
func (p Policy) check(f postingFacts) (out []Violation, approval *Violation) {
	if !p.AllowsKind(f.kind) {
		out = append(out, Violation{RuleAllowedKinds, "", fmt.Sprintf("you may not submit %s postings; allowed: %s", f.kind, strings.Join(enumOf(p.Kinds), ", "))})
	}
	rules := p.unitRules()
	for _, u := range f.Units {
		r := rules[u.Kind]
		if r.allowed != nil && !slices.Contains(r.allowed, u.Value) {
			out = append(out, Violation{r.rule, u.Field, fmt.Sprintf("you may not post in %s %s; allowed: %s", strings.ReplaceAll(string(u.Kind), "_", " "), u.Value, strings.Join(r.allowed, ", "))})
		}
	}
	if f.Currency == "" {
		// A posting that moves no money by itself: no amount rule applies.
		return out, nil
	}
	amount := f.Amount.StringFixed(tasks.MaxFractionDigits) + " " + f.Currency
	if v, ok := amountRule(p.MaxPerPosting, RuleMaxAmountPerPosting, f); !ok {
		out = append(out, v)
	} else if lim, set := p.MaxPerPosting[f.Currency]; set && f.Amount.GreaterThan(lim) {
		out = append(out, Violation{RuleMaxAmountPerPosting, f.AmountField, fmt.Sprintf("the amount %s is above your limit of %s %s per posting", amount, lim.StringFixed(2), f.Currency)})
	}
	if v, ok := amountRule(p.ApprovalThreshold, RuleApprovalThreshold, f); !ok {
		out = append(out, v)
	} else if lim, set := p.ApprovalThreshold[f.Currency]; set && f.Amount.GreaterThan(lim) {
		approval = &Violation{RuleApprovalThreshold, f.AmountField, fmt.Sprintf("the amount %s is above the submitter's approval threshold of %s %s", amount, lim.StringFixed(2), f.Currency)}
	}
	if v, ok := amountRule(p.MaxPerDay, RuleMaxAmountPerDay, f); !ok {
		out = append(out, v)
	} else if lim, set := p.MaxPerDay[f.Currency]; set && f.Amount.GreaterThan(lim) {
		out = append(out, Violation{RuleMaxAmountPerDay, f.AmountField, fmt.Sprintf("the amount %s alone is above your limit of %s %s per day", amount, lim.StringFixed(2), f.Currency)})
	}
	return out, approval
}

// amountRule refuses a currency that a rule with amounts does not list.
func amountRule(limits map[string]decimal.Decimal, rule Rule, f postingFacts) (Violation, bool) {
	if limits == nil {
		return Violation{}, true
	}
	if _, ok := limits[f.Currency]; ok {
		return Violation{}, true
	}
	curs := make([]string, 0, len(limits))
	for c := range limits {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	return Violation{rule, "currency", fmt.Sprintf("you have no %s for %s; allowed currencies: %s", strings.ReplaceAll(string(rule), "_", " "), f.Currency, strings.Join(curs, ", "))}, false
}
