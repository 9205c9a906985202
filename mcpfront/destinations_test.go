package mcpfront_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
)

// With several SAP destinations, a submission names one of them or is
// routed by its company code; one that no destination takes is refused
// with the field to fix, and nothing is recorded.
func TestSubmissionsAreRouted(t *testing.T) {
	tokens, err := mcpfront.ParseTokens("alice:" + aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Tokens: tokens, Routes: tasks.Routes{
		Destinations: []string{"s4-de", "s4-us"},
		CompanyCodes: map[string]string{"1710": "s4-us"},
	}})
	c := dialSDK(t, e.url, aliceToken, "")

	// The tool schemas offer the configured names.
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if _, isSubmit := map[string]bool{"submit_supplier_invoice": true, "submit_journal_entry": true}[tool.Name]; !isSubmit {
			continue
		}
		in := schemaMap(t, tool.InputSchema)
		d, ok := in["properties"].(map[string]any)["destination"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no destination property", tool.Name)
		}
		raw, _ := json.Marshal(d["enum"])
		var names []string
		json.Unmarshal(raw, &names)
		if !slices.Equal(names, []string{"s4-de", "s4-us"}) || slices.Contains(anyStrings(in["required"]), "destination") {
			t.Errorf("%s: destination schema %v, required %v", tool.Name, d, in["required"])
		}
	}

	routed := invoice("route-1")
	routed["company_code"] = "1710"
	submit(t, c, "submit_supplier_invoice", routed)

	named := journalEntry("route-2")
	named["destination"] = "s4-de"
	submit(t, c, "submit_journal_entry", named)

	unknown := journalEntry("route-3")
	unknown["destination"] = "s4-jp"
	wantError(t, call(t, c, "submit_journal_entry", unknown), "invalid_argument", `destination: no SAP destination "s4-jp" is configured; configured: s4-de, s4-us`)

	unrouted := invoice("route-4") // company code 1010: no route, no default
	wantError(t, call(t, c, "submit_supplier_invoice", unrouted), "invalid_argument", "company_code: no SAP destination serves company code 1010")

	malformed := invoice("route-5")
	malformed["destination"] = "s4 de"
	wantError(t, call(t, c, "submit_supplier_invoice", malformed), "invalid_argument", "destination: must be a destination name")

	if n := countJobs(t, e.rdb); n != 2 {
		t.Errorf("%d jobs recorded, want the 2 routable ones", n)
	}
}

// The same key and content for another named destination is another
// submission: refused as a conflict, not replayed to the first destination.
func TestDestinationIsPartOfTheContent(t *testing.T) {
	tokens, err := mcpfront.ParseTokens("alice:" + aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Tokens: tokens, Routes: tasks.Routes{Destinations: []string{"s4-de", "s4-us"}, Default: "s4-de"}})
	c := dialSDK(t, e.url, aliceToken, "")
	args := invoice("dest-conflict")
	submit(t, c, "submit_supplier_invoice", args)
	args["destination"] = "s4-us"
	wantError(t, call(t, c, "submit_supplier_invoice", args), "idempotency_conflict")
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func countJobs(t *testing.T, rdb redis.UniversalClient) int {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "sapq:*:job:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
