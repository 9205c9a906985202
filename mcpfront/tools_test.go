package mcpfront_test

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/tasks"
)

// toolNames are the tools every agent with an open policy sees: the
// posting tools and a submit tool per kind in the registry.
var toolNames = func() []string {
	names := []string{"cancel_posting", "get_posting", "list_postings"}
	for _, spec := range tasks.Specs() {
		names = append(names, spec.Tool)
	}
	slices.Sort(names)
	return names
}()

// operatorToolNames are the tools an operator sees: an agent's and those
// of four-eyes approval and over failed postings.
var operatorToolNames = func() []string {
	names := append([]string{"approve_posting", "list_approvals", "reject_posting", "list_failures", "reprocess_postings", "discard_postings"}, toolNames...)
	slices.Sort(names)
	return names
}()

// hints are the four annotations every tool must state: readOnly,
// destructive, idempotent, openWorld. Every kind's submit tool has the
// same: it writes, destroys nothing, is idempotent under its key and
// reaches SAP.
var wantHints = func() map[string][4]bool {
	hints := map[string][4]bool{
		"get_posting":    {true, false, true, false},
		"list_postings":  {true, false, true, false},
		"cancel_posting": {false, true, true, false},
	}
	for _, spec := range tasks.Specs() {
		hints[spec.Tool] = [4]bool{false, false, true, true}
	}
	return hints
}()

func TestToolsListMCPGo(t *testing.T) {
	e := newEnv(t)
	for _, version := range []string{"", legacyVersion} {
		c := dialMCPGo(t, e.url, aliceToken, version)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.c.ListTools(ctx, mcpgo.ListToolsRequest{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
			a := tool.Annotations
			// mcp-go decodes the hints into pointers, so an omitted hint is
			// nil here: all four must be on the wire.
			if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
				t.Errorf("%s (%s): not all four hints sent: %+v", tool.Name, c.protocolVersion(), a)
				continue
			}
			got := [4]bool{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
			if got != wantHints[tool.Name] {
				t.Errorf("%s: hints (readOnly, destructive, idempotent, openWorld) = %v, want %v", tool.Name, got, wantHints[tool.Name])
			}
			if tool.Description == "" {
				t.Errorf("%s: no description", tool.Name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, toolNames) {
			t.Fatalf("tools = %v, want %v", names, toolNames)
		}
	}
}

func TestToolsListGoSDK(t *testing.T) {
	e := newEnv(t)
	for _, version := range []string{"", legacyVersion} {
		c := dialSDK(t, e.url, aliceToken, version)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.cs.ListTools(ctx, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
			a := tool.Annotations
			if a == nil || a.DestructiveHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("%s: annotations incomplete: %+v", tool.Name, a)
			}
			got := [4]bool{a.ReadOnlyHint, *a.DestructiveHint, a.IdempotentHint, *a.OpenWorldHint}
			if got != wantHints[tool.Name] {
				t.Errorf("%s: hints = %v, want %v", tool.Name, got, wantHints[tool.Name])
			}
			in, out := schemaMap(t, tool.InputSchema), schemaMap(t, tool.OutputSchema)
			if in["type"] != "object" || in["additionalProperties"] != false {
				t.Errorf("%s: input schema must be a closed object: %v", tool.Name, in)
			}
			if out["type"] != "object" || out["properties"] == nil {
				t.Errorf("%s: no output schema: %v", tool.Name, out)
			}
			checkSchema(t, tool, in, out)
		}
		slices.Sort(names)
		if !slices.Equal(names, toolNames) {
			t.Fatalf("tools = %v, want %v", names, toolNames)
		}
	}
}

func schemaMap(t *testing.T, s any) map[string]any {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkSchema spot-checks that the schemas name properties exactly as the
// json tags do and carry the tags' descriptions.
func checkSchema(t *testing.T, tool *sdk.Tool, in, out map[string]any) {
	t.Helper()
	props := func(m map[string]any) map[string]any { p, _ := m["properties"].(map[string]any); return p }
	required := func(m map[string]any) []string {
		var r []string
		for _, v := range m["required"].([]any) {
			r = append(r, v.(string))
		}
		return r
	}
	switch tool.Name {
	case "submit_supplier_invoice":
		for _, f := range []string{"idempotency_key", "company_code", "supplier", "invoice_reference", "document_date", "posting_date", "currency", "gross_amount", "items"} {
			if !slices.Contains(required(in), f) {
				t.Errorf("%s: %s not required", tool.Name, f)
			}
		}
		items := props(in)["items"].(map[string]any)
		if items["type"] != "array" {
			t.Errorf("items type = %v", items["type"])
		}
		line := items["items"].(map[string]any)
		if line["additionalProperties"] != false || props(line)["gl_account"] == nil {
			t.Errorf("item schema: %v", line)
		}
		desc, _ := props(in)["idempotency_key"].(map[string]any)["description"].(string)
		if !strings.Contains(desc, "same key") {
			t.Errorf("idempotency_key description missing: %q", desc)
		}
		fallthrough
	case "submit_journal_entry":
		for _, f := range []string{"job_id", "kind", "status", "replayed", "poll_after_seconds"} {
			if props(out)[f] == nil {
				t.Errorf("%s output lacks %s", tool.Name, f)
			}
		}
	case "get_posting", "cancel_posting":
		if !slices.Equal(required(in), []string{"job_id"}) {
			t.Errorf("%s: required = %v", tool.Name, required(in))
		}
		for _, f := range []string{"job_id", "kind", "status", "attempts", "next_attempt_at", "created_at", "updated_at", "result", "error"} {
			if props(out)[f] == nil {
				t.Errorf("%s output lacks %s", tool.Name, f)
			}
		}
	case "list_postings":
		limit := props(in)["limit"].(map[string]any)
		if limit["minimum"] != 1.0 || limit["maximum"] != 100.0 {
			t.Errorf("limit bounds: %v", limit)
		}
		if props(out)["postings"] == nil || props(out)["next_cursor"] == nil {
			t.Errorf("list output: %v", out)
		}
	}
}

func TestSubmitAndGet(t *testing.T) {
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)

		inv := submit(t, c, "submit_supplier_invoice", invoice("inv-1"))
		if inv.Kind != "supplier_invoice" || inv.Status != "queued" || *inv.Replayed || inv.PollAfterSeconds != 2 {
			t.Fatalf("submit invoice = %+v", inv)
		}
		je := submit(t, c, "submit_journal_entry", journalEntry("je-1"))
		if je.Kind != "journal_entry" || je.Status != "queued" || *je.Replayed || je.JobID == inv.JobID {
			t.Fatalf("submit journal entry = %+v", je)
		}

		var p posting
		call(t, c, "get_posting", map[string]any{"job_id": inv.JobID}).decode(t, &p)
		if p.JobID != inv.JobID || p.Kind != "supplier_invoice" || p.Status != "queued" || p.IdempotencyKey != "inv-1" ||
			p.Attempts == nil || *p.Attempts != 0 || p.CreatedAt.IsZero() || p.UpdatedAt.IsZero() || p.Result != nil || p.Error != nil {
			t.Fatalf("get_posting = %+v", p)
		}

		// The ledger holds what the agent sent, decoded strictly.
		job, err := e.ledger.Get(context.Background(), "alice", je.JobID)
		if err != nil {
			t.Fatal(err)
		}
		posted, err := job.Posting()
		if err != nil {
			t.Fatal(err)
		}
		if got := posted.(*tasks.JournalEntry); got.Items[1].Amount != "-250.00" || got.Key != "je-1" {
			t.Fatalf("stored journal entry = %+v", got)
		}

		l := list(t, c, nil)
		if len(l.Postings) != 2 || l.Postings[0].JobID != je.JobID || l.Postings[1].JobID != inv.JobID || *l.NextCursor != "" {
			t.Fatalf("list_postings = %+v", l)
		}
		l = list(t, c, map[string]any{"kind": "journal_entry"})
		if len(l.Postings) != 1 || l.Postings[0].JobID != je.JobID {
			t.Fatalf("list_postings kind=journal_entry = %+v", l)
		}
		l = list(t, c, map[string]any{"limit": 1})
		if len(l.Postings) != 1 || *l.NextCursor == "" {
			t.Fatalf("list_postings limit=1 = %+v", l)
		}
		l = list(t, c, map[string]any{"limit": 1, "cursor": *l.NextCursor})
		if len(l.Postings) != 1 || l.Postings[0].JobID != inv.JobID || *l.NextCursor != "" {
			t.Fatalf("list_postings second page = %+v", l)
		}
		if l := list(t, c, map[string]any{"status": "succeeded"}); len(l.Postings) != 0 {
			t.Fatalf("list_postings status=succeeded = %+v", l)
		}
	})
}

func TestReplayAndConflict(t *testing.T) {
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)
		first := submit(t, c, "submit_supplier_invoice", invoice("inv-42"))
		again := submit(t, c, "submit_supplier_invoice", invoice("inv-42"))
		if again.JobID != first.JobID || !*again.Replayed || again.Status != "queued" {
			t.Fatalf("replay = %+v, first = %+v", again, first)
		}

		changed := invoice("inv-42")
		changed["gross_amount"] = "1200.00"
		item(changed, 0)["amount"] = "1010.00"
		r := call(t, c, "submit_supplier_invoice", changed)
		wantError(t, r, "idempotency_conflict", "idempotency_key", first.JobID)

		// The same key as another kind is a conflict too, not a second job.
		r = call(t, c, "submit_journal_entry", journalEntry("inv-42"))
		wantError(t, r, "idempotency_conflict")

		if l := list(t, c, nil); len(l.Postings) != 1 || l.Postings[0].JobID != first.JobID {
			t.Fatalf("after replay and conflicts: %+v", l)
		}
	})
}

func TestConcurrentIdenticalSubmissions(t *testing.T) {
	e := newEnv(t)
	var clients []mcpClient
	for _, k := range clientKinds {
		clients = append(clients, k.dial(t, e.url, aliceToken))
	}
	const n = 50
	results := make([]submitResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := clients[i%len(clients)].callErr(ctx, "submit_journal_entry", journalEntry("je-race"))
			if err == nil && r.IsError {
				err = &toolError{r.Text}
			}
			if err == nil {
				err = json.Unmarshal(r.Structured, &results[i])
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()

	fresh := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("submission %d: %v", i, errs[i])
		}
		if r.JobID != results[0].JobID {
			t.Fatalf("submission %d got job %s, submission 0 got %s", i, r.JobID, results[0].JobID)
		}
		if !*r.Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d submissions created a job, want exactly 1", fresh)
	}
	if l := list(t, clients[0], nil); len(l.Postings) != 1 {
		t.Fatalf("list_postings after 50 identical submissions: %d postings", len(l.Postings))
	}
}

type toolError struct{ text string }

func (e *toolError) Error() string { return e.text }

func TestInvalidInputRecordsNothing(t *testing.T) {
	type tc struct {
		name      string
		tool      string
		args      func() any
		fragments []string
	}
	cases := []tc{
		{"amount as number", "submit_supplier_invoice", func() any {
			m := invoice("bad-1")
			item(m, 0)["amount"] = 1000
			return m
		}, []string{"invalid_argument", "items", "amount", "must be a string"}},
		{"gross amount as number", "submit_supplier_invoice", func() any {
			m := invoice("bad-2")
			m["gross_amount"] = 1190.0
			return m
		}, []string{"gross_amount", "must be a string"}},
		{"items as object", "submit_journal_entry", func() any {
			m := journalEntry("bad-3")
			m["items"] = map[string]any{"gl_account": "1"}
			return m
		}, []string{"items", "must be an array"}},
		{"unknown top-level field", "submit_supplier_invoice", func() any {
			m := invoice("bad-4")
			m["vendor"] = "17300001"
			return m
		}, []string{"vendor", "unknown field"}},
		{"unknown item field", "submit_journal_entry", func() any {
			m := journalEntry("bad-5")
			item(m, 1)["tax_code"] = "V1"
			return m
		}, []string{"tax_code", "unknown field"}},
		{"unbalanced entry", "submit_journal_entry", func() any {
			m := journalEntry("bad-6")
			item(m, 1)["amount"] = "-249.99"
			return m
		}, []string{"items: debits and credits do not balance", "0.01"}},
		{"three fraction digits", "submit_supplier_invoice", func() any {
			m := invoice("bad-7")
			item(m, 1)["amount"] = "190.005"
			return m
		}, []string{"items[1].amount: must have at most 2 fraction digits, got \"190.005\""}},
		{"missing fields", "submit_supplier_invoice", func() any {
			return map[string]any{"idempotency_key": "bad-8"}
		}, []string{"company_code: is required", "supplier: is required", "invoice_reference: is required", "document_date: is required", "gross_amount: is required", "items: must have at least 1 line"}},
		{"no arguments", "submit_journal_entry", func() any { return map[string]any{} },
			[]string{"idempotency_key: is required", "items: a journal entry needs at least 2 lines"}},
		{"several errors at once", "submit_journal_entry", func() any {
			m := journalEntry("bad-9")
			m["posting_date"] = "2024-02-30"
			m["currency"] = "eur"
			item(m, 0)["gl_account"] = "6100 3000"
			return m
		}, []string{"posting_date: must be a real calendar date", "currency: must be the ISO 4217 code of a currency in use", "items[0].gl_account"}},
		{"list: limit too large", "list_postings", func() any { return map[string]any{"limit": 500} },
			[]string{"limit: must be between 1 and 100, got 500"}},
		{"list: limit zero", "list_postings", func() any { return map[string]any{"limit": 0} },
			[]string{"limit: must be between 1 and 100, got 0"}},
		{"list: limit not an integer", "list_postings", func() any { return map[string]any{"limit": 2.5} },
			[]string{"limit", "must be an integer"}},
		{"list: unknown status", "list_postings", func() any { return map[string]any{"status": "done"} },
			[]string{"status: unknown status \"done\"", "succeeded"}},
		{"list: unknown field", "list_postings", func() any { return map[string]any{"state": "queued"} },
			[]string{"state", "unknown field"}},
		{"get: field name in another case", "get_posting", func() any { return map[string]any{"JOB_ID": "x"} },
			[]string{"JOB_ID", `did you mean "job_id"`}},
		{"submit: field name in another case", "submit_supplier_invoice", func() any {
			m := invoice("bad-case")
			m["Company_Code"] = m["company_code"]
			delete(m, "company_code")
			return m
		}, []string{"Company_Code", `did you mean "company_code"`}},
		{"get: missing job_id", "get_posting", func() any { return map[string]any{} },
			[]string{"job_id: is required"}},
		{"get: job_id as number", "get_posting", func() any { return map[string]any{"job_id": 7} },
			[]string{"job_id", "must be a string"}},
		{"cancel: unknown field", "cancel_posting", func() any { return map[string]any{"job_id": "x", "force": true} },
			[]string{"force", "unknown field"}},
	}
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)
		for _, tc := range cases {
			r := call(t, c, tc.tool, tc.args())
			if !r.IsError {
				t.Errorf("%s: accepted: %s", tc.name, r.Structured)
				continue
			}
			if !strings.HasPrefix(r.Text, "invalid_argument: ") {
				t.Errorf("%s: text does not start with the code: %q", tc.name, r.Text)
			}
			for _, f := range tc.fragments {
				if !strings.Contains(r.Text, f) {
					t.Errorf("%s: error text lacks %q:\n%s", tc.name, f, r.Text)
				}
			}
		}
		if l := list(t, c, nil); len(l.Postings) != 0 {
			t.Fatalf("rejected submissions created jobs: %+v", l)
		}
		if n, err := e.rdb.Keys(context.Background(), "sapq:job:*").Result(); err != nil || len(n) != 0 {
			t.Fatalf("jobs in Redis after rejected submissions: %v %v", n, err)
		}
	})
}

// The schemas state what the server enforces: lengths, patterns, formats,
// defaults and enums, and their patterns agree with the validation.
func TestSchemasCarryWhatIsEnforced(t *testing.T) {
	e := newEnv(t)
	c := dialSDK(t, e.url, aliceToken, "")
	res, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string][2]map[string]any{}
	for _, tool := range res.Tools {
		schemas[tool.Name] = [2]map[string]any{schemaMap(t, tool.InputSchema), schemaMap(t, tool.OutputSchema)}
	}
	at := func(s map[string]any, path ...string) map[string]any {
		t.Helper()
		for _, p := range path {
			if p == "[]" {
				s = s["items"].(map[string]any)
				continue
			}
			next, ok := s["properties"].(map[string]any)[p].(map[string]any)
			if !ok {
				t.Fatalf("no property %v", path)
			}
			s = next
		}
		return s
	}
	si, je := schemas["submit_supplier_invoice"][0], schemas["submit_journal_entry"][0]
	for _, tc := range []struct {
		s    map[string]any
		path []string
		key  string
		want any
	}{
		{si, []string{"company_code"}, "maxLength", 4.0},
		{si, []string{"supplier"}, "maxLength", 10.0},
		{si, []string{"invoice_reference"}, "maxLength", 16.0},
		{si, []string{"header_text"}, "maxLength", 25.0},
		{si, []string{"document_date"}, "format", "date"},
		{si, []string{"posting_date"}, "format", "date"},
		{si, []string{"idempotency_key"}, "maxLength", 128.0},
		{si, []string{"items"}, "maxItems", 999.0},
		{si, []string{"items", "[]", "tax_code"}, "maxLength", 2.0},
		{si, []string{"items", "[]", "text"}, "maxLength", 50.0},
		{je, []string{"document_type"}, "default", "SA"},
		{je, []string{"document_type"}, "maxLength", 2.0},
		{je, []string{"reference"}, "maxLength", 16.0},
		{je, []string{"customer_items", "[]", "customer"}, "maxLength", 10.0},
		{je, []string{"supplier_items"}, "maxItems", 999.0},
		{schemas["get_posting"][1], []string{"status"}, "enum", []any{"awaiting_approval", "queued", "running", "retrying", "succeeded", "failed", "cancelled", "rejected"}},
		{schemas["get_posting"][1], []string{"approval", "decision"}, "enum", []any{"approved", "rejected", "expired"}},
		{schemas["get_posting"][1], []string{"approval", "expires_at"}, "format", "date-time"},
		{schemas["get_posting"][1], []string{"result", "messages", "[]", "severity"}, "enum", []any{"success", "info", "warning", "error"}},
		{schemas["get_posting"][1], []string{"error", "category"}, "enum", []any{"permanent", "transient", "outcome_unknown", "reversed"}},
	} {
		if got := at(tc.s, tc.path...)[tc.key]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v.%s = %v, want %v", tc.path, tc.key, got, tc.want)
		}
	}
	// The patterns say what validation says.
	for _, tc := range []struct {
		path   []string
		accept []string
		refuse []string
	}{
		{[]string{"invoice_reference"}, []string{"RE-2026-11-0042", "A B/7"}, []string{"РЕ-2026-11-0042", "ＲＥ-1", "re-1", " RE-1", "RE-1 "}},
		{[]string{"company_code"}, []string{"1010", "DE01"}, []string{"1О10", "de01", "10 1"}},
		{[]string{"idempotency_key"}, []string{"inv-2026/42 a"}, []string{"K\u00ff", "inv\u200b"}},
		{[]string{"gross_amount"}, []string{"1190.00", "-5.5", ".5"}, []string{"1e3", "1,190.00", "1.234"}},
		{[]string{"document_date"}, []string{"2026-11-05"}, []string{"05.11.2026"}},
	} {
		re := regexp.MustCompile(at(si, tc.path...)["pattern"].(string))
		for _, v := range tc.accept {
			if !re.MatchString(v) {
				t.Errorf("%v: pattern refuses %q", tc.path, v)
			}
		}
		for _, v := range tc.refuse {
			if re.MatchString(v) {
				t.Errorf("%v: pattern accepts %q", tc.path, v)
			}
		}
	}
}

// Look-alike characters are refused by name through every client; a
// 960 KB argument gets a short answer.
func TestLookAlikesAndHugeValuesThroughClients(t *testing.T) {
	forEachClient(t, func(t *testing.T, e *env, dial func(string) mcpClient) {
		c := dial(aliceToken)
		for ref, want := range map[string]string{
			"РЕ-2026-11-0042": "U+0420 CYRILLIC CAPITAL LETTER ER at character 1",
			"ＲＥ-2026-11-0042": `U+FF32 FULLWIDTH LATIN CAPITAL LETTER R (a look-alike of "R")`,
		} {
			m := invoice("look-" + ref)
			m["idempotency_key"] = "look-alike-1"
			m["invoice_reference"] = ref
			wantError(t, call(t, c, "submit_supplier_invoice", m), "invalid_argument", "invoice_reference: must contain only ASCII", want)
		}
		huge := invoice("huge-value")
		huge["company_code"] = strings.Repeat("Ж", 480_000)
		r := call(t, c, "submit_supplier_invoice", huge)
		wantError(t, r, "company_code: must be at most 4 characters, got 480000")
		if len(r.Text) > 2048 {
			t.Fatalf("answer of %d bytes to a 960 KB argument", len(r.Text))
		}
		if l := list(t, c, nil); len(l.Postings) != 0 {
			t.Fatalf("refused submissions recorded: %+v", l)
		}
	})
}

// Invalid UTF-8 cannot be sent by the SDK clients (their JSON encoders
// replace it), so it is sent raw: "K\xff" and "K\xfe" are refused, never
// folded into one key.
func TestInvalidUTF8OnTheWire(t *testing.T) {
	e := newEnv(t)
	good, _ := json.Marshal(journalEntry("KEY"))
	for _, bad := range []string{"\xff", "\xfe"} {
		args := strings.Replace(string(good), `"idempotency_key":"KEY"`, "\"idempotency_key\":\"K"+bad+"\"", 1)
		body := `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"submit_journal_entry","arguments":` + args + `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`
		resp := postWith(t, e.url, aliceToken, body, map[string]string{"MCP-Protocol-Version": modernVersion, "Mcp-Method": "tools/call", "Mcp-Name": "submit_journal_entry"})
		answer, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(answer), "idempotency_key: is not valid UTF-8") {
			t.Fatalf("%q: %d %s", bad, resp.StatusCode, answer)
		}
	}
	if n, _ := e.rdb.Keys(context.Background(), "sapq:job:*").Result(); len(n) != 0 {
		t.Fatalf("jobs recorded: %v", n)
	}
}

// A posting is a resource only for its owner, and only with read access.
func TestPostingResourceIsCallerIsolated(t *testing.T) {
	e := newEnv(t)
	alice, bob := dialSDK(t, e.url, aliceToken, ""), dialSDK(t, e.url, bobToken, legacyVersion)
	job := submit(t, alice, "submit_journal_entry", journalEntry("res-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uri := "sapq://postings/" + job.JobID
	res, err := alice.cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
	if err != nil || len(res.Contents) != 1 || !strings.Contains(res.Contents[0].Text, job.JobID) {
		t.Fatalf("alice reads her posting: %+v %v", res, err)
	}
	_, err = bob.cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
	if err == nil || !strings.Contains(err.Error(), "you have no posting") {
		t.Fatalf("bob reads alice's posting: %v", err)
	}
}
