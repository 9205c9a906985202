package sapcontract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// CheckODataBody checks the JSON body of a create (deep insert) on an
// entity type: every property must exist on the type, hold a value of its
// declared type within its declared length, precision and scale, and be
// one SAP lets a client create; every navigation property must lead to
// entities that pass the same checks. It returns one line per violation.
func (s *Service) CheckODataBody(entityType string, body []byte) []string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	var out []string
	s.checkEntity(&out, entityType, entityType, v)
	return out
}

func (s *Service) checkEntity(out *[]string, path, entityType string, v any) {
	et, ok := s.EntityTypes[entityType]
	if !ok {
		*out = append(*out, fmt.Sprintf("%s: entity type %s is not in service %s", path, entityType, s.Name))
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		*out = append(*out, fmt.Sprintf("%s: an entity must be a JSON object, got %T", path, v))
		return
	}
	for _, name := range sortedKeys(obj) {
		val := obj[name]
		at := path + "." + name
		if name == "__metadata" {
			continue
		}
		if nav, ok := et.Navigation[name]; ok {
			s.checkNavigation(out, at, nav, val)
			continue
		}
		p, ok := et.Properties[name]
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: %s has no property %s", at, entityType, name))
			continue
		}
		if p.NotCreatable {
			*out = append(*out, fmt.Sprintf("%s: SAP assigns %s (sap:creatable=false); a create must not send it", at, name))
		}
		if msg := p.check(val); msg != "" {
			*out = append(*out, at+": "+msg)
		}
	}
}

// checkNavigation checks a deep insert's related entities: {"results":[...]}
// (or a bare array) for a to-many navigation, an object for a to-one.
func (s *Service) checkNavigation(out *[]string, at string, nav Navigation, v any) {
	if !nav.Many {
		s.checkEntity(out, at, nav.Type, v)
		return
	}
	list, ok := v.([]any)
	if obj, isObj := v.(map[string]any); isObj {
		list, ok = obj["results"].([]any)
		if len(obj) != 1 {
			ok = false
		}
	}
	if !ok {
		*out = append(*out, fmt.Sprintf(`%s: a to-many navigation takes {"results":[...]}, got %v`, at, v))
		return
	}
	for i, e := range list {
		s.checkEntity(out, fmt.Sprintf("%s[%d]", at, i), nav.Type, e)
	}
}

var (
	// JSON decoding turns "\/Date(...)\/" into "/Date(...)/".
	edmDateTime       = regexp.MustCompile(`^/Date\(-?\d+\)/$`)
	edmDateTimeOffset = regexp.MustCompile(`^/Date\(-?\d+([+-]\d{4})?\)/$`)
	edmTime           = regexp.MustCompile(`^PT(\d+H)?(\d+M)?(\d+S)?$`)
	edmGUID           = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	edmDecimal        = regexp.MustCompile(`^-?(\d+)(?:\.(\d+))?$`)
	edmInt64          = regexp.MustCompile(`^-?\d+$`)
)

// check returns what is wrong with a JSON value for the property, or "".
// OData V2 JSON writes Edm.Decimal and Edm.Int64 as strings, dates as
// "/Date(ms)/".
func (p Property) check(v any) string {
	if v == nil {
		if p.NotNull {
			return "null for a property that is not nullable"
		}
		return ""
	}
	str, isStr := v.(string)
	switch p.Type {
	case "Edm.String":
		if !isStr {
			return fmt.Sprintf("Edm.String must be a JSON string, got %T", v)
		}
		if n := utf8.RuneCountInString(str); p.MaxLength > 0 && n > p.MaxLength {
			return fmt.Sprintf("%q has %d characters, MaxLength is %d", str, n, p.MaxLength)
		}
	case "Edm.Decimal":
		if !isStr {
			return fmt.Sprintf("Edm.Decimal must be a JSON string, got %T", v)
		}
		m := edmDecimal.FindStringSubmatch(str)
		if m == nil {
			return fmt.Sprintf("%q is not a decimal", str)
		}
		intDigits := len(strings.TrimLeft(m[1], "0"))
		if p.Scale > 0 && len(m[2]) > p.Scale {
			return fmt.Sprintf("%q has %d fraction digits, Scale is %d", str, len(m[2]), p.Scale)
		}
		if p.Precision > 0 && intDigits > p.Precision-p.Scale {
			return fmt.Sprintf("%q has %d integer digits, Precision %d with Scale %d allows %d", str, intDigits, p.Precision, p.Scale, p.Precision-p.Scale)
		}
	case "Edm.DateTime":
		if !isStr || !edmDateTime.MatchString(str) {
			return fmt.Sprintf(`Edm.DateTime must be "/Date(<ms>)/", got %v`, v)
		}
	case "Edm.DateTimeOffset":
		if !isStr || !edmDateTimeOffset.MatchString(str) {
			return fmt.Sprintf(`Edm.DateTimeOffset must be "/Date(<ms>[+-hhmm])/", got %v`, v)
		}
	case "Edm.Time":
		if !isStr || !edmTime.MatchString(str) {
			return fmt.Sprintf(`Edm.Time must be "PThhHmmMssS", got %v`, v)
		}
	case "Edm.Guid":
		if !isStr || !edmGUID.MatchString(str) {
			return fmt.Sprintf("Edm.Guid must be a GUID string, got %v", v)
		}
	case "Edm.Boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("Edm.Boolean must be true or false, got %#v", v)
		}
	case "Edm.Byte", "Edm.SByte", "Edm.Int16", "Edm.Int32":
		if n, ok := v.(json.Number); !ok || strings.ContainsAny(n.String(), ".eE") {
			return fmt.Sprintf("%s must be a JSON integer, got %v", p.Type, v)
		}
	case "Edm.Int64":
		if !isStr || !edmInt64.MatchString(str) {
			return fmt.Sprintf("Edm.Int64 must be a string of digits, got %v", v)
		}
	case "Edm.Double", "Edm.Single":
		if _, ok := v.(json.Number); !ok && !isStr {
			return fmt.Sprintf("%s must be a number, got %v", p.Type, v)
		}
	default:
		return "no check for type " + p.Type
	}
	return ""
}

// filterProperty matches the property names of a $filter: an identifier
// before a comparison operator.
var filterProperty = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s+(?:eq|ne|gt|ge|lt|le)\s`)

// CheckQuery checks the $select, $filter and $orderby of a query on an
// entity type: every property they name must exist on it.
func (s *Service) CheckQuery(entityType string, q url.Values) []string {
	et, ok := s.EntityTypes[entityType]
	if !ok {
		return []string{fmt.Sprintf("entity type %s is not in service %s", entityType, s.Name)}
	}
	var out []string
	known := func(option, name string) {
		if _, ok := et.Properties[name]; !ok {
			out = append(out, fmt.Sprintf("%s names %s, which %s does not have", option, name, entityType))
		}
	}
	for _, sel := range q["$select"] {
		for _, name := range strings.Split(sel, ",") {
			known("$select", strings.TrimSpace(name))
		}
	}
	for _, f := range q["$filter"] {
		for _, m := range filterProperty.FindAllStringSubmatch(f+" ", -1) {
			known("$filter", m[1])
		}
	}
	for _, o := range q["$orderby"] {
		for _, part := range strings.Split(o, ",") {
			if f := strings.Fields(part); len(f) > 0 {
				known("$orderby", f[0])
			}
		}
	}
	return out
}

// CheckFunctionCall checks a call of a function import: its HTTP method,
// an empty body, and every parameter in the query declared by the function
// and given as a URI literal of its declared type (a string in quotes
// within its length; a date time as datetime'YYYY-MM-DDThh:mm:ss').
// System query options ($format) and SAP's own (sap-client, sap-language)
// are not parameters.
func (s *Service) CheckFunctionCall(name, method string, q url.Values, body []byte) []string {
	fn, ok := s.FunctionImports[name]
	if !ok {
		return []string{fmt.Sprintf("service %s has no function import %s", s.Name, name)}
	}
	var out []string
	if fn.HTTPMethod != "" && !strings.EqualFold(fn.HTTPMethod, method) {
		out = append(out, fmt.Sprintf("%s takes %s, not %s", name, fn.HTTPMethod, method))
	}
	if len(bytes.TrimSpace(body)) != 0 {
		out = append(out, fmt.Sprintf("%s takes its parameters in the query; the body must be empty", name))
	}
	for _, param := range sortedKeys(q) {
		if strings.HasPrefix(param, "$") || strings.HasPrefix(param, "sap-") {
			continue
		}
		p, ok := fn.Parameters[param]
		if !ok {
			out = append(out, fmt.Sprintf("%s has no parameter %s", name, param))
			continue
		}
		for _, v := range q[param] {
			if msg := p.checkLiteral(v); msg != "" {
				out = append(out, fmt.Sprintf("%s(%s=%s): %s", name, param, v, msg))
			}
		}
	}
	return out
}

var dateTimeLiteral = regexp.MustCompile(`^datetime'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?'$`)

// checkLiteral checks an OData V2 URI literal against the property.
func (p Property) checkLiteral(v string) string {
	switch p.Type {
	case "Edm.String":
		if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			return "a string parameter must be a quoted literal ('...')"
		}
		inner := strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		if p.MaxLength > 0 && utf8.RuneCountInString(inner) > p.MaxLength {
			return fmt.Sprintf("%d characters, longer than the declared %d", utf8.RuneCountInString(inner), p.MaxLength)
		}
	case "Edm.DateTime":
		if !dateTimeLiteral.MatchString(v) {
			return "a date time parameter must be a literal datetime'YYYY-MM-DDThh:mm:ss'"
		}
	case "Edm.Boolean":
		if v != "true" && v != "false" {
			return "a boolean parameter must be true or false"
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
