package mcpfront

import (
	"encoding/json"
	"fmt"

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
	// maxAmountLength is tasks' bound on an amount string.
	maxAmountLength = 32
)

func code(s map[string]any, max int) {
	s["pattern"], s["minLength"], s["maxLength"] = codePattern, 1, max
}

func reference(s map[string]any, max int) {
	s["pattern"], s["minLength"], s["maxLength"] = referencePattern, 1, max
}

func text(s map[string]any, max int) { s["maxLength"] = max }

func amount(s map[string]any) {
	s["pattern"], s["maxLength"] = amountPattern, maxAmountLength
}

func date(s map[string]any) { s["pattern"], s["format"] = datePattern, "date" }

func fixSupplierInvoice(s map[string]any) {
	commonPosting(s)
	code(prop(s, "supplier"), tasks.LenSupplier)
	reference(prop(s, "invoice_reference"), tasks.LenInvoiceReference)
	amount(prop(s, "gross_amount"))
	items := prop(s, "items")
	items["minItems"], items["maxItems"] = 1, tasks.MaxItems
	line := prop(s, "items", "[]")
	code(prop(line, "gl_account"), tasks.LenGLAccount)
	code(prop(line, "cost_center"), tasks.LenCostCenter)
	code(prop(line, "tax_code"), tasks.LenTaxCode)
	text(prop(line, "text"), tasks.LenItemText)
	amount(prop(line, "amount"))
}

func fixJournalEntry(s map[string]any) {
	commonPosting(s)
	dt := prop(s, "document_type")
	code(dt, tasks.LenDocumentType)
	dt["default"] = tasks.DefaultDocumentType
	reference(prop(s, "reference"), tasks.LenReference)
	items := prop(s, "items")
	items["minItems"], items["maxItems"] = 2, tasks.MaxItems
	line := prop(s, "items", "[]")
	code(prop(line, "gl_account"), tasks.LenGLAccount)
	code(prop(line, "cost_center"), tasks.LenCostCenter)
	text(prop(line, "text"), tasks.LenItemText)
	amount(prop(line, "amount"))
}

func commonPosting(s map[string]any) {
	key := prop(s, "idempotency_key")
	key["minLength"], key["maxLength"], key["pattern"] = 1, tasks.MaxIdempotencyKey, keyPattern
	code(prop(s, "company_code"), tasks.LenCompanyCode)
	date(prop(s, "document_date"))
	date(prop(s, "posting_date"))
	cur := prop(s, "currency")
	cur["pattern"], cur["minLength"], cur["maxLength"] = `^[A-Z]{3}$`, 3, 3
	text(prop(s, "header_text"), tasks.LenHeaderText)
}

func fixPosting(s map[string]any) {
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
	for _, f := range []string{"created_at", "updated_at", "next_attempt_at"} {
		prop(s, f)["format"] = "date-time"
	}
	prop(s, "error", "category")["enum"] = enumOf([]tasks.ErrorCategory{tasks.CategoryPermanent, tasks.CategoryTransient, tasks.CategoryUnknown})
	prop(s, "result", "messages", "[]", "severity")["enum"] = enumOf(tasks.Severities)
}

func fixSubmitResult(s map[string]any) {
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
}

func fixPostingList(s map[string]any) { fixPosting(prop(s, "postings", "[]")) }

func fixListArgs(s map[string]any) {
	prop(s, "status")["enum"] = enumOf(tasks.Statuses)
	prop(s, "kind")["enum"] = enumOf(tasks.Kinds)
	limit := prop(s, "limit")
	limit["type"] = "integer" // generated as nullable from *int; null is not accepted
	limit["minimum"], limit["maximum"], limit["default"] = 1, maxListLimit, defaultListLimit
}

func fixJobRef(s map[string]any) {
	id := prop(s, "job_id")
	id["minLength"], id["maxLength"] = 1, maxJobIDLen
}
