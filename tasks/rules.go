package tasks

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// A posting's fields carry their rule in a struct tag, declared once beside
// the field; validation (Check) and the MCP tool schemas (Rules) are both
// derived from it:
//
//	sapq:"key"            the caller's idempotency key (1-128 printable ASCII characters)
//	sapq:"code,4"         an SAP key: up to 4 upper-case letters, digits, - _ /
//	sapq:"number,10"      digits only, up to 10
//	sapq:"text,25"        free text SAP stores as it is, up to 25 characters
//	sapq:"reference,16"   a reference SAP keeps in upper case, up to 16 ASCII characters
//	sapq:"date"           a calendar date, YYYY-MM-DD
//	sapq:"currency"       an ISO 4217 code; amounts in the same struct and below it use its fraction digits
//	sapq:"amount"         a decimal string with the currency's fraction digits (at most 2)
//	sapq:"unit"           a unit of measure; quantities in the same struct use its decimals
//	sapq:"quantity"       a positive decimal string with the unit's decimals
//	sapq:"enum,01,02"     one of the values listed
//	sapq:"list,1,999"     a list of 1 to 999 structs, each checked by its own tags
//	sapq:"list,1,20,number,10"
//	                      a list of 1 to 20 strings, each checked by the rule after the counts
//	sapq:"name,64"        a name from sapq's configuration (a destination), up to 64 characters
//
// A field is required unless its json tag says omitempty. `default:"SA"`
// documents the value an omitted field stands for.
const ruleTag = "sapq"

// RuleKind is the kind of value a field holds.
type RuleKind string

const (
	RuleKey       RuleKind = "key"
	RuleCode      RuleKind = "code"
	RuleNumber    RuleKind = "number"
	RuleText      RuleKind = "text"
	RuleReference RuleKind = "reference"
	RuleDate      RuleKind = "date"
	RuleCurrency  RuleKind = "currency"
	RuleAmount    RuleKind = "amount"
	RuleUnit      RuleKind = "unit"
	RuleQuantity  RuleKind = "quantity"
	RuleEnum      RuleKind = "enum"
	RuleList      RuleKind = "list"
	RuleName      RuleKind = "name"
)

// Rule is one field's rule as its tag declares it.
type Rule struct {
	Kind     RuleKind
	Min, Max int      // lengths (characters), or a list's element counts
	Values   []string // RuleEnum
	Default  string
	Required bool
	// Elem is the rule of each element of a list of strings (nil for a
	// list of structs, whose fields carry their own rules).
	Elem *Rule
}

// FieldRule is a rule with the field's JSON path: ["items", "[]", "amount"].
type FieldRule struct {
	Path []string
	Rule Rule
}

// Rules lists the rules of every field of a posting type, outermost first.
// It panics on a malformed tag: tags are code, and a wrong one is a bug.
func Rules(t reflect.Type) []FieldRule {
	var out []FieldRule
	for _, f := range structRules(t) {
		out = append(out, FieldRule{Path: []string{f.json}, Rule: f.rule})
		if f.rule.Elem != nil {
			out = append(out, FieldRule{Path: []string{f.json, "[]"}, Rule: *f.rule.Elem})
		}
		if f.elem != nil {
			for _, sub := range Rules(f.elem) {
				out = append(out, FieldRule{Path: append([]string{f.json, "[]"}, sub.Path...), Rule: sub.Rule})
			}
		}
	}
	return out
}

// fieldRule is a struct field with its rule.
type fieldRule struct {
	index []int // as reflect.Value.FieldByIndex takes it: embedded structs' fields are the struct's own
	json  string
	rule  Rule
	elem  reflect.Type // a list of structs' element type
}

var rulesCache sync.Map // reflect.Type -> []fieldRule

func structRules(t reflect.Type) []fieldRule {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if cached, ok := rulesCache.Load(t); ok {
		return cached.([]fieldRule)
	}
	var out []fieldRule
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			// encoding/json and the schema promote an embedded struct's
			// fields; so do the rules.
			for _, fr := range structRules(sf.Type) {
				fr.index = append([]int{i}, fr.index...)
				out = append(out, fr)
			}
			continue
		}
		tag, ok := sf.Tag.Lookup(ruleTag)
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		r, err := parseRule(tag)
		if err != nil {
			panic(fmt.Sprintf("tasks: %s.%s: %v", t.Name(), sf.Name, err))
		}
		r.Required = !strings.Contains(opts, "omitempty")
		r.Default = sf.Tag.Get("default")
		fr := fieldRule{index: []int{i}, json: name, rule: r}
		switch {
		case r.Kind == RuleList && r.Elem != nil && (sf.Type.Kind() != reflect.Slice || sf.Type.Elem().Kind() != reflect.String):
			panic(fmt.Sprintf("tasks: %s.%s: a list with an element rule must be a slice of strings", t.Name(), sf.Name))
		case r.Kind == RuleList && r.Elem == nil && (sf.Type.Kind() != reflect.Slice || sf.Type.Elem().Kind() != reflect.Struct):
			panic(fmt.Sprintf("tasks: %s.%s: a list must be a slice of structs, or of strings with an element rule", t.Name(), sf.Name))
		case r.Kind == RuleList && r.Elem == nil:
			fr.elem = sf.Type.Elem()
		case r.Kind == RuleList:
		case sf.Type.Kind() != reflect.String:
			panic(fmt.Sprintf("tasks: %s.%s: rule %s needs a string field", t.Name(), sf.Name, r.Kind))
		}
		out = append(out, fr)
	}
	rulesCache.Store(t, out)
	return out
}

func parseRule(tag string) (Rule, error) {
	parts := strings.Split(tag, ",")
	r := Rule{Kind: RuleKind(parts[0])}
	args := parts[1:]
	ints := func(n int) ([]int, error) {
		if len(args) != n {
			return nil, fmt.Errorf("rule %s takes %d numbers, got %q", r.Kind, n, tag)
		}
		out := make([]int, n)
		for i, a := range args {
			v, err := strconv.Atoi(a)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("rule %s: %q is not a count", r.Kind, a)
			}
			out[i] = v
		}
		return out, nil
	}
	switch r.Kind {
	case RuleKey:
		r.Min, r.Max = 1, MaxIdempotencyKey
	case RuleCode, RuleNumber, RuleText, RuleReference, RuleName:
		n, err := ints(1)
		if err != nil {
			return r, err
		}
		r.Min, r.Max = 1, n[0]
	case RuleDate, RuleCurrency, RuleAmount, RuleUnit, RuleQuantity:
		if len(args) != 0 {
			return r, fmt.Errorf("rule %s takes no arguments, got %q", r.Kind, tag)
		}
		switch r.Kind {
		case RuleCurrency:
			r.Min, r.Max = 3, 3
		case RuleUnit:
			r.Min, r.Max = 1, LenUnit
		case RuleAmount, RuleQuantity:
			r.Max = maxAmountChars
		}
	case RuleEnum:
		if len(args) == 0 {
			return r, fmt.Errorf("rule enum lists no values")
		}
		r.Values = args
	case RuleList:
		// A list of strings names the rule of its elements after the
		// counts: "list,1,20,number,10".
		if len(args) > 2 {
			elem, err := parseRule(strings.Join(args[2:], ","))
			if err != nil {
				return r, fmt.Errorf("list elements: %w", err)
			}
			switch elem.Kind {
			case RuleCode, RuleNumber, RuleText, RuleReference, RuleDate, RuleEnum:
			default:
				return r, fmt.Errorf("list elements: rule %s cannot apply to list elements", elem.Kind)
			}
			elem.Required = true // an element is never empty
			r.Elem = &elem
			args = args[:2]
		}
		n, err := ints(2)
		if err != nil {
			return r, err
		}
		r.Min, r.Max = n[0], n[1]
	default:
		return r, fmt.Errorf("unknown rule %q", r.Kind)
	}
	return r, nil
}

// fieldContext is what a struct's fields pass down: the fraction digits of
// its currency and the decimals of its unit.
type fieldContext struct {
	currencyDigits int
	unitDecimals   int
}

// CheckFields applies the tag rules of the struct v points to, as
// Validate does for postings; for the arguments of other tools, such as an
// operator's comment. It returns a *ValidationError or nil.
func CheckFields(v any) error {
	var c checker
	c.checkFields(v)
	return c.err()
}

// checkFields applies the tag rules of every field of the struct v points
// to, and of the structs in its lists, with paths under prefix.
func (c *checker) checkFields(v any) {
	c.checkStruct(reflect.ValueOf(v), "", fieldContext{currencyDigits: MaxFractionDigits, unitDecimals: maxQuantityDecimals})
}

func (c *checker) checkStruct(v reflect.Value, prefix string, ctx fieldContext) {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	rules := structRules(v.Type())
	// Currencies and units decide how amounts and quantities of the same
	// struct are checked: read them first, report them in their place.
	var scratch checker
	for _, f := range rules {
		switch f.rule.Kind {
		case RuleCurrency:
			ctx.currencyDigits = scratch.checkCurrencyRule("", v.FieldByIndex(f.index).String(), f.rule.Required)
		case RuleUnit:
			ctx.unitDecimals = scratch.checkUnit("", v.FieldByIndex(f.index).String(), f.rule.Required)
		}
	}
	for _, f := range rules {
		path := prefix + f.json
		fv := v.FieldByIndex(f.index)
		r := f.rule
		switch r.Kind {
		case RuleList:
			noun := "lines"
			if r.Elem != nil {
				noun = "values"
			}
			switch n := fv.Len(); {
			case n < r.Min:
				c.add(path, "must have at least %d %s, got %d", r.Min, plural(r.Min, strings.TrimSuffix(noun, "s"), noun), n)
			case n > r.Max:
				c.add(path, "must have at most %d %s, got %d", r.Max, noun, n)
			}
			for i := range fv.Len() {
				at := path + "[" + strconv.Itoa(i) + "]"
				if r.Elem != nil {
					c.checkValue(at, fv.Index(i).String(), *r.Elem, ctx)
				} else {
					c.checkStruct(fv.Index(i), at+".", ctx)
				}
			}
			continue
		case RuleCurrency:
			c.checkCurrencyRule(path, fv.String(), r.Required)
			continue
		case RuleUnit:
			c.checkUnit(path, fv.String(), r.Required)
			continue
		}
		c.checkValue(path, fv.String(), r, ctx)
	}
}

// checkValue applies a rule other than list, currency and unit to one
// string value.
func (c *checker) checkValue(path, s string, r Rule, ctx fieldContext) {
	if s == "" {
		if r.Required {
			c.add(path, "is required%s", requiredHint(r))
		}
		return
	}
	switch r.Kind {
	case RuleKey:
		c.checkIdempotencyKey(s)
	case RuleCode:
		c.checkCode(path, s, r.Max, r.Required)
	case RuleNumber:
		c.checkNumber(path, s, r.Max)
	case RuleText:
		c.checkText(path, s, r.Max, r.Required)
	case RuleReference:
		c.checkReference(path, s, r.Max, r.Required)
	case RuleDate:
		c.checkDate(path, s)
	case RuleAmount:
		c.checkAmount(path, s, ctx.currencyDigits)
	case RuleQuantity:
		c.checkQuantity(path, s, ctx.unitDecimals)
	case RuleEnum:
		c.checkEnum(path, s, r.Values)
	case RuleName:
		c.checkName(path, s, r.Max)
	}
}

func requiredHint(r Rule) string {
	switch r.Kind {
	case RuleKey:
		return fmt.Sprintf(": choose a unique key per business document (1-%d printable ASCII characters) and reuse it when retrying the same submission", MaxIdempotencyKey)
	case RuleDate:
		return " (YYYY-MM-DD)"
	case RuleAmount:
		return ` (a decimal string such as "100.00")`
	case RuleQuantity:
		return ` (a decimal string such as "10" or "2.5")`
	case RuleEnum:
		return " (one of " + strings.Join(r.Values, ", ") + ")"
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (c *checker) checkCurrencyRule(field, v string, required bool) int {
	if v == "" && !required {
		return MaxFractionDigits
	}
	return c.checkCurrency(field, v)
}

func (c *checker) checkNumber(field, v string, max int) {
	if n := len(v); n > max {
		c.add(field, "must be at most %d digits, got %d (%s)", max, n, quote(v))
		return
	}
	for i, r := range v {
		if r < '0' || r > '9' {
			c.add(field, "must contain only digits 0-9; found %s at character %d of %s", describeRune(r), i+1, quote(v))
			return
		}
	}
}

func (c *checker) checkEnum(field, v string, values []string) {
	for _, ok := range values {
		if v == ok {
			return
		}
	}
	c.add(field, "must be one of %s, got %s", strings.Join(values, ", "), quote(v))
}
