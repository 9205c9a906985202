package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's generated parts")

// The README's tables of submit tools and of every kind's fields are
// generated from the kinds' declarations (tasks.Spec and the field tags):
// this test fails when they differ, and go test ./cmd/sapq -run README
// -update-readme rewrites them.
func TestREADMEIsGeneratedFromTheRegistry(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, part := range []struct{ name, text string }{
		{"submit-tools", submitToolRows()},
		{"kinds", kindTables()},
	} {
		begin, end := "<!-- "+part.name+":begin (generated) -->\n", "<!-- "+part.name+":end -->"
		i, j := strings.Index(readme, begin), strings.Index(readme, end)
		if i < 0 || j < i {
			t.Fatalf("README has no %q ... %q markers", begin, end)
		}
		if got := readme[i+len(begin) : j]; got != part.text {
			if !*updateREADME {
				t.Errorf("README's %s are not what the registry says; run go test ./cmd/sapq -run README -update-readme\nwant:\n%s", part.name, part.text)
				continue
			}
			readme = readme[:i+len(begin)] + part.text + readme[j:]
		}
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func submitToolRows() string {
	var b strings.Builder
	for _, spec := range tasks.Specs() {
		fmt.Fprintf(&b, "| `%s` | validate, record and queue %s; returns `{job_id, kind, status, replayed, poll_after_seconds}`, with `approval` and `waiting_for` when it awaits approval, or `dry_run` for a dry run | false, false, true, true |\n", spec.Tool, spec.Summary)
	}
	return b.String()
}

func kindTables() string {
	var b strings.Builder
	for _, spec := range tasks.Specs() {
		t := reflect.TypeOf(spec.New()).Elem()
		fmt.Fprintf(&b, "### `%s` (`%s`) → %s\n\n", spec.Kind, spec.Tool, spec.SAP)
		b.WriteString("| MCP argument | SAP field | rule |\n|---|---|---|\n")
		fields(&b, t, "")
		if spec.Identity != "" {
			fmt.Fprintf(&b, "| (sapq) | %s | identified by %s |\n", spec.Reference, spec.Identity)
		} else {
			fmt.Fprintf(&b, "| (sapq) | %s | sapq's reference, derived from caller, key, content and destination; what the look-up searches |\n", spec.Reference)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// fields writes a row per field of t that carries a rule, with paths under
// prefix.
func fields(b *strings.Builder, t reflect.Type, prefix string) {
	byName := map[string]tasks.Rule{}
	for _, fr := range tasks.Rules(t) {
		if len(fr.Path) == 1 {
			byName[fr.Path[0]] = fr.Rule
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		r, ok := byName[name]
		if !ok {
			continue
		}
		sapField := f.Tag.Get("sap")
		if sapField == "" {
			sapField = "(sapq)"
		}
		text := ruleText(r)
		if r.Kind == tasks.RuleName {
			// Where an omitted destination goes differs by kind: the
			// field's own description, which the MCP schema carries too,
			// says it.
			text = "optional; " + strings.TrimPrefix(f.Tag.Get("jsonschema"), "Optional: ")
		}
		fmt.Fprintf(b, "| `%s%s` | `%s` | %s |\n", prefix, name, strings.ReplaceAll(sapField, ", ", "`, `"), text)
		if r.Kind == tasks.RuleList && r.Elem == nil {
			fields(b, f.Type.Elem(), prefix+name+"[].")
		}
	}
}

func ruleText(r tasks.Rule) string {
	var s string
	switch r.Kind {
	case tasks.RuleKey:
		s = fmt.Sprintf("your idempotency key, 1-%d printable ASCII characters", r.Max)
	case tasks.RuleCode:
		s = fmt.Sprintf("code, up to %d upper-case letters, digits, `-` `_` `/`", r.Max)
	case tasks.RuleNumber:
		s = fmt.Sprintf("digits, up to %d", r.Max)
	case tasks.RuleText:
		s = fmt.Sprintf("text, up to %d characters", r.Max)
	case tasks.RuleReference:
		s = fmt.Sprintf("reference, up to %d ASCII characters in upper case", r.Max)
	case tasks.RuleDate:
		s = "date, `YYYY-MM-DD`"
	case tasks.RuleCurrency:
		s = "ISO 4217 currency code"
	case tasks.RuleAmount:
		s = "amount, a decimal string with the currency's fraction digits (at most 2)"
	case tasks.RuleUnit:
		s = "unit of measure: " + strings.Join(tasks.Units(), ", ")
	case tasks.RuleQuantity:
		s = "quantity, a positive decimal string with the unit's decimals"
	case tasks.RuleEnum:
		s = "one of " + strings.Join(r.Values, ", ")
	case tasks.RuleList:
		s = fmt.Sprintf("%d to %d lines", r.Min, r.Max)
		if r.Elem != nil {
			s = fmt.Sprintf("%d to %d values, each %s", r.Min, r.Max, ruleText(*r.Elem))
		}
	}
	if !r.Required {
		s = "optional; " + s
	}
	if r.Default != "" {
		s += "; default " + r.Default
	}
	return s
}
