package mcpfront

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/tasks"
)

// Schemas are generated from the Go types by mcp-go (json tags name the
// properties, jsonschema tags describe them, fields without omitempty are
// required, structs get additionalProperties:false) and then tightened where
// the generator cannot know better: a Go slice is generated as
// ["null","array"], but null is never valid input and never sent.

// inputSchema is mcp.WithInputSchema[T] followed by fix.
func inputSchema[T any](fix func(map[string]any)) mcp.ToolOption {
	raw := schemaJSON[T](fix)
	return func(t *mcp.Tool) {
		t.InputSchema.Type = "" // the raw schema replaces the structured one
		t.RawInputSchema = raw
	}
}

// outputSchema is mcp.WithOutputSchema[T] followed by fix.
func outputSchema[T any](fix func(map[string]any)) mcp.ToolOption {
	return mcp.WithRawOutputSchema(schemaJSON[T](fix))
}

func schemaJSON[T any](fix func(map[string]any)) json.RawMessage {
	s := mcp.SchemaFor[T]()
	if s == nil {
		// Only a programming error (an unsupported Go type) gets here.
		panic(fmt.Sprintf("mcpfront: no JSON schema for %s", mcp.TypeKey[T]()))
	}
	s["type"] = "object"
	tidy(s)
	if fix != nil {
		fix(s)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("mcpfront: marshal schema for %s: %v", mcp.TypeKey[T](), err))
	}
	return raw
}

// tidy replaces nullable array types by plain arrays, recursively.
func tidy(node any) {
	switch v := node.(type) {
	case map[string]any:
		if t, ok := v["type"].([]any); ok && len(t) == 2 && t[0] == "null" && t[1] == "array" {
			v["type"] = "array"
		}
		for _, child := range v {
			tidy(child)
		}
	case []any:
		for _, child := range v {
			tidy(child)
		}
	}
}

// prop returns the schema of a property, walking nested objects and array
// items: prop(s, "items", "[]", "amount").
func prop(s map[string]any, path ...string) map[string]any {
	cur := s
	for _, p := range path {
		var next any
		if p == "[]" {
			next = cur["items"]
		} else {
			props, _ := cur["properties"].(map[string]any)
			next = props[p]
		}
		m, ok := next.(map[string]any)
		if !ok {
			panic(fmt.Sprintf("mcpfront: schema has no property %v", path))
		}
		cur = m
	}
	return cur
}

func enumOf[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// Patterns and bounds mirror tasks' validation, taken from its constants,
// so that a client that checks the schema catches the common mistakes
// before calling and a model reads the rules where it looks. The server
// checks everything again regardless.
const (
	datePattern   = `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`
	amountPattern = `^[+-]?([0-9]+(\.[0-9]{1,2})?|\.[0-9]{1,2})$`
	// codePattern: upper-case ASCII letters, digits and - _ /.
	codePattern = `^[A-Z0-9_/-]+$`
	// referencePattern: printable ASCII without lower case letters, no
	// blank at either end (look-alikes from other scripts are refused).
	referencePattern = "^[!-`{-~]([ -`{-~]*[!-`{-~])?$"
	// keyPattern: printable ASCII.
	keyPattern = `^[ -~]+$`
	// numberPattern: digits only.
	numberPattern = `^[0-9]+$`
	// quantityPattern: a positive decimal with at most 3 decimals (the
	// unit decides how many; the server checks).
	quantityPattern = `^[0-9]*(\.[0-9]{1,3})?$`
)

// postingSchema is the input schema of a kind's submit tool: generated from
// the posting type (json tags name the properties, jsonschema tags describe
// them, fields without omitempty are required), tightened by each field's
// rule (tasks.Rules) so that it states what validation enforces.
// The destination property lists the configured destinations' names.
func postingSchema(spec tasks.Spec, destinations []string) mcp.ToolOption {
	t := reflect.TypeOf(spec.New()).Elem()
	js, err := jsonschema.ForType(t, &jsonschema.ForOptions{IgnoreInvalidTypes: true})
	if err != nil {
		panic(fmt.Sprintf("mcpfront: no JSON schema for %s: %v", t, err))
	}
	b, err := json.Marshal(js)
	if err != nil {
		panic(fmt.Sprintf("mcpfront: marshal schema for %s: %v", t, err))
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		panic(err)
	}
	s["type"] = "object"
	tidy(s)
	if _, ok := spec.New().(tasks.Resolver); ok {
		// What sapq resolves from the ledger is not the caller's to send.
		delete(s["properties"].(map[string]any), "original")
	}
	for _, fr := range tasks.Rules(t) {
		constrain(prop(s, fr.Path...), fr.Rule)
		if fr.Rule.Kind == tasks.RuleName && len(fr.Path) == 1 && fr.Path[0] == "destination" && len(destinations) > 0 {
			prop(s, fr.Path...)["enum"] = destinations
		}
	}
	// The submit options (tasks.SubmitOptions) beside the posting's fields.
	opts := map[string]any{}
	optsSchema, err := jsonschema.For[tasks.SubmitOptions](nil)
	if err != nil {
		panic(err)
	}
	b, _ = json.Marshal(optsSchema)
	json.Unmarshal(b, &opts)
	for name, v := range opts["properties"].(map[string]any) {
		m := v.(map[string]any)
		if m["type"] == "boolean" {
			m["default"] = false
		}
		s["properties"].(map[string]any)[name] = m
	}
	raw, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return func(tool *mcp.Tool) {
		tool.InputSchema.Type = "" // the raw schema replaces the structured one
		tool.RawInputSchema = raw
	}
}

// constrain states a field's rule in its schema.
func constrain(s map[string]any, r tasks.Rule) {
	switch r.Kind {
	case tasks.RuleKey:
		s["minLength"], s["maxLength"], s["pattern"] = r.Min, r.Max, keyPattern
	case tasks.RuleCode:
		s["pattern"], s["minLength"], s["maxLength"] = codePattern, r.Min, r.Max
	case tasks.RuleNumber:
		s["pattern"], s["minLength"], s["maxLength"] = numberPattern, r.Min, r.Max
	case tasks.RuleText:
		s["maxLength"] = r.Max
	case tasks.RuleReference:
		s["pattern"], s["minLength"], s["maxLength"] = referencePattern, r.Min, r.Max
	case tasks.RuleDate:
		s["pattern"], s["format"] = datePattern, "date"
	case tasks.RuleCurrency:
		s["pattern"], s["minLength"], s["maxLength"] = `^[A-Z]{3}$`, 3, 3
	case tasks.RuleAmount:
		s["pattern"], s["maxLength"] = amountPattern, r.Max
	case tasks.RuleQuantity:
		s["pattern"], s["maxLength"] = quantityPattern, r.Max
	case tasks.RuleUnit:
		s["enum"] = tasks.Units()
	case tasks.RuleEnum:
		s["enum"] = r.Values
	case tasks.RuleList:
		s["minItems"], s["maxItems"] = r.Min, r.Max
	case tasks.RuleName:
		s["pattern"], s["minLength"], s["maxLength"] = tasks.DestinationNamePattern, r.Min, r.Max
	}
	if r.Default != "" {
		s["default"] = r.Default
	}
}

func fixPosting(s map[string]any) {
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
	for _, f := range []string{"created_at", "updated_at", "next_attempt_at"} {
		prop(s, f)["format"] = "date-time"
	}
	prop(s, "error", "category")["enum"] = enumOf(tasks.ErrorCategories)
	prop(s, "result", "messages", "[]", "severity")["enum"] = enumOf(tasks.Severities)
	fixApproval(prop(s, "approval"))
}

func fixApproval(s map[string]any) {
	for _, f := range []string{"requested_at", "expires_at", "decided_at"} {
		prop(s, f)["format"] = "date-time"
	}
	prop(s, "decision")["enum"] = enumOf(tasks.Decisions)
}

func fixSubmitResult(s map[string]any) {
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
	fixApproval(prop(s, "approval"))
	prop(s, "dry_run", "verdict")["enum"] = Verdicts
	prop(s, "dry_run", "sap_check", "messages", "[]", "severity")["enum"] = enumOf(tasks.Severities)
}

func fixPostingList(s map[string]any) { fixPosting(prop(s, "postings", "[]")) }

func fixListArgs(s map[string]any) {
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	limit := prop(s, "limit")
	limit["type"] = "integer" // generated as nullable from *int; null is not accepted
	limit["minimum"], limit["maximum"], limit["default"] = 1, maxListLimit, defaultListLimit
}

func fixGetArgs(s map[string]any) {
	fixJobRef(s)
	w := prop(s, "wait_seconds")
	w["type"] = "integer"
	w["minimum"], w["maximum"], w["default"] = 0, maxWaitSeconds, 0
}

func fixJobRef(s map[string]any) {
	id := prop(s, "job_id")
	id["minLength"], id["maxLength"] = 1, maxJobIDLen
}
