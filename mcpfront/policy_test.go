package mcpfront_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/mcpfront"
)

func sha(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

const (
	apToken   = "ap-agent-token-5b1e"
	glToken   = "gl-agent-token-c3d9"
	openToken = "open-agent-token-81aa"
	opToken   = "operator-token-77f0"
	op2Token  = "operator-token-2-91c4"
)

// callersJSON is a callers file with an accounts-payable agent limited by
// every rule, a G/L agent allowed journal entries only, an agent without
// limits and an operator.
func callersJSON() string {
	return fmt.Sprintf(`{"callers": [
  {"name": "ap-agent", "token_sha256": %q, "role": "agent", "policy": {
     "kinds": ["supplier_invoice"],
     "company_codes": ["1010", "1710"],
     "max_amount_per_posting": {"EUR": "2000.00", "USD": "2500.00"},
     "max_amount_per_day": {"EUR": "3000.00", "USD": "3000.00"},
     "approval_threshold": {"EUR": "1500.00", "USD": "2500.00"},
     "submissions_per_minute": 100}},
  {"name": "gl-agent", "token_sha256": %q, "role": "agent", "policy": {"kinds": ["journal_entry"], "submissions_per_minute": 3}},
  {"name": "open-agent", "token_sha256": %q, "role": "agent"},
  {"name": "controller", "token_sha256": %q, "role": "operator"},
  {"name": "auditor", "token_sha256": %q, "role": "operator", "policy": {"approval_threshold": {"EUR": "100.00"}}}
]}`, sha(apToken), sha(glToken), sha(openToken), sha(opToken), sha(op2Token))
}

func policyEnv(t *testing.T) *env {
	t.Helper()
	callers, err := mcpfront.ParseCallers([]byte(callersJSON()), "callers.json")
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, mcpfront.Options{Callers: callers, SAP: simDestinations(t)})
}

func withAmount(m map[string]any, gross, first, second string) map[string]any {
	m["gross_amount"] = gross
	item(m, 0)["amount"], item(m, 1)["amount"] = first, second
	return m
}

// toolErrorOf reads the machine-readable error a tool result carries.
func toolErrorMeta(t *testing.T, c mcpClient, tool string, args any) (mcpfront.ToolError, string) {
	t.Helper()
	mc, ok := c.(*mcpGoClient)
	if !ok {
		t.Fatal("toolErrorMeta needs an mcp-go client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req mcpgo.CallToolRequest
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := mc.c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var te mcpfront.ToolError
	if res.Meta != nil {
		b, _ := json.Marshal(res.Meta.AdditionalFields["sapq/error"])
		json.Unmarshal(b, &te)
	}
	text := ""
	for _, ct := range res.Content {
		if tc, ok := ct.(mcpgo.TextContent); ok {
			text += tc.Text
		}
	}
	return te, text
}

func TestPolicyRefusalsNameTheRule(t *testing.T) {
	e := policyEnv(t)
	ap := dialMCPGo(t, e.url, apToken, "")

	cases := []struct {
		name      string
		args      map[string]any
		rule      string
		fragments []string
	}{
		{"company code", func() map[string]any { m := invoice("p-cc"); m["company_code"] = "2000"; return m }(),
			"allowed_company_codes", []string{"company_code: you may not post in company code 2000; allowed: 1010, 1710 (rule allowed_company_codes)"}},
		{"amount per posting", withAmount(invoice("p-max"), "2100.00", "2000.00", "100.00"),
			"max_amount_per_posting", []string{"gross_amount: the amount 2100.00 EUR is above your limit of 2000.00 EUR per posting (rule max_amount_per_posting)"}},
		{"currency no rule lists", func() map[string]any { m := invoice("p-chf"); m["currency"] = "CHF"; return m }(),
			"max_amount_per_posting", []string{"currency: you have no max amount per posting for CHF; allowed currencies: EUR, USD"}},
		{"several rules at once", func() map[string]any {
			m := withAmount(invoice("p-multi"), "2100.00", "2000.00", "100.00")
			m["company_code"] = "2000"
			return m
		}(), "allowed_company_codes", []string{"rule allowed_company_codes", "rule max_amount_per_posting"}},
	}
	for _, tc := range cases {
		te, text := toolErrorMeta(t, ap, "submit_supplier_invoice", tc.args)
		if te.Code != "policy_violation" || te.Rule != tc.rule {
			t.Errorf("%s: code %q rule %q, want policy_violation %s:\n%s", tc.name, te.Code, te.Rule, tc.rule, text)
		}
		for _, f := range tc.fragments {
			if !strings.Contains(text, f) {
				t.Errorf("%s: text lacks %q:\n%s", tc.name, f, text)
			}
		}
	}
	if l := list(t, ap, nil); len(l.Postings) != 0 {
		t.Fatalf("refused submissions were recorded: %+v", l)
	}
	if keys, _ := e.rdb.Keys(context.Background(), "sapq:{policy:*}:day:*").Result(); len(keys) != 0 {
		t.Fatalf("refusals counted towards the daily amount: %v", keys)
	}
}

// The daily amount counts each accepted posting once per idempotency key:
// a replay is accepted and not counted again (even once the limit is
// reached), the posting that would cross the limit is refused with what is
// left, and another currency has its own sum.
func TestDailyAmount(t *testing.T) {
	forEachPolicyClient(t, apToken, func(t *testing.T, e *env, c mcpClient) {
		first := submit(t, c, "submit_supplier_invoice", withAmount(invoice("d-1"), "1400.00", "1300.00", "100.00"))
		if again := submit(t, c, "submit_supplier_invoice", withAmount(invoice("d-1"), "1400.00", "1300.00", "100.00")); again.JobID != first.JobID || !*again.Replayed {
			t.Fatalf("replay = %+v", again)
		}
		submit(t, c, "submit_supplier_invoice", withAmount(invoice("d-2"), "1400.01", "1400.00", "0.01"))
		r := call(t, c, "submit_supplier_invoice", withAmount(invoice("d-3"), "300.00", "200.00", "100.00"))
		wantError(t, r, "policy_violation", "rule max_amount_per_day",
			"the amount 300.00 EUR would bring today's total (UTC) to 3100.01 EUR, above your limit of 3000.00 EUR per day; 199.99 EUR are left")
		// Corrected under the same key, it fits.
		submit(t, c, "submit_supplier_invoice", withAmount(invoice("d-3"), "199.99", "99.99", "100.00"))
		// The limit is reached, and a replay is still a replay.
		if again := submit(t, c, "submit_supplier_invoice", withAmount(invoice("d-1"), "1400.00", "1300.00", "100.00")); again.JobID != first.JobID || !*again.Replayed {
			t.Fatalf("replay at the limit = %+v", again)
		}
		wantError(t, call(t, c, "submit_supplier_invoice", withAmount(invoice("d-4"), "0.02", "0.01", "0.01")), "rule max_amount_per_day", "0.00 EUR are left")
		// USD has its own day.
		usd := withAmount(invoice("u-1"), "1400.00", "1300.00", "100.00")
		usd["currency"] = "USD"
		submit(t, c, "submit_supplier_invoice", usd)

		day := time.Now().UTC().Format("20060102")
		keys, err := e.rdb.Keys(context.Background(), "sapq:{policy:*}:day:"+day).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("day keys %v %v", keys, err)
		}
		sums, _ := e.rdb.HGetAll(context.Background(), keys[0]).Result()
		if sums["EUR"] != "300000" || sums["USD"] != "140000" {
			t.Fatalf("day sums in minor units = %v", sums)
		}
		if ttl := e.rdb.TTL(context.Background(), keys[0]).Val(); ttl <= 24*time.Hour || ttl > 48*time.Hour {
			t.Fatalf("day key expires in %v", ttl)
		}
		if l := list(t, c, nil); len(l.Postings) != 4 {
			t.Fatalf("%d postings recorded, want 4", len(l.Postings))
		}
	})
}

func forEachPolicyClient(t *testing.T, token string, f func(t *testing.T, e *env, c mcpClient)) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			e := policyEnv(t)
			f(t, e, k.dial(t, e.url, token))
		})
	}
}

// Tools a caller may not use are not listed to it, and a call to one is
// refused as if the tool did not exist; the audit log records the refusal.
func TestToolsFollowRoleAndPolicy(t *testing.T) {
	e := policyEnv(t)
	for token, want := range map[string][]string{
		apToken:   {"cancel_posting", "get_posting", "list_postings", "submit_supplier_invoice"},
		glToken:   {"cancel_posting", "get_posting", "list_postings", "submit_journal_entry"},
		openToken: toolNames,
		opToken:   operatorToolNames,
	} {
		for _, version := range []string{"", legacyVersion} {
			mc := dialMCPGo(t, e.url, token, version)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := mc.c.ListTools(ctx, mcpgo.ListToolsRequest{})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("%s (%s): tools %v, want %v", token[:6], mc.protocolVersion(), names, want)
			}
			sc := dialSDK(t, e.url, token, version)
			sres, err := sc.cs.ListTools(context.Background(), nil)
			if err != nil || len(sres.Tools) != len(want) {
				t.Errorf("%s: go-sdk lists %v tools, want %d", token[:6], err, len(want))
			}
		}
	}
	for _, k := range clientKinds {
		c := k.dial(t, e.url, glToken)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.callErr(ctx, "submit_supplier_invoice", invoice("hidden-1"))
		cancel()
		if err == nil && !r.IsError {
			t.Fatalf("%s: gl-agent submitted a supplier invoice: %s", k.name, r.Structured)
		}
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s: calling a hidden tool: %v", k.name, err)
		}
	}
	if l := list(t, dialMCPGo(t, e.url, glToken, ""), nil); len(l.Postings) != 0 {
		t.Fatalf("hidden tool recorded a posting: %+v", l)
	}
	recs := auditRecords(t, e)
	n := 0
	for _, r := range recs {
		if r.Caller == "gl-agent" && r.Tool == "submit_supplier_invoice" && r.Decision == "refused" && r.Rule == "tool_not_available" {
			n++
		}
	}
	if n != len(clientKinds) {
		t.Errorf("%d audited refusals of the hidden tool, want %d", n, len(clientKinds))
	}
}

// A caller's quota of submissions per minute is shared by all its clients
// and answered with the time to wait; another caller has its own.
func TestSubmissionsQuota(t *testing.T) {
	e := policyEnv(t)
	a, b := dialMCPGo(t, e.url, glToken, ""), dialSDK(t, e.url, glToken, legacyVersion)
	submit(t, a, "submit_journal_entry", journalEntry("q-1"))
	submit(t, b, "submit_journal_entry", journalEntry("q-2"))
	submit(t, a, "submit_journal_entry", journalEntry("q-3"))
	te, text := toolErrorMeta(t, a, "submit_journal_entry", journalEntry("q-4"))
	if te.Code != "rate_limited" || te.Rule != "submissions_per_minute" || te.RetryAfterSeconds < 1 || te.RetryAfterSeconds > 20 {
		t.Fatalf("fourth submission: %+v\n%s", te, text)
	}
	if !strings.Contains(text, "you may submit 3 postings per minute (rule submissions_per_minute)") || !strings.Contains(text, fmt.Sprintf("in %d seconds", te.RetryAfterSeconds)) {
		t.Fatalf("text: %s", text)
	}
	wantError(t, call(t, b, "submit_journal_entry", journalEntry("q-4")), "rate_limited")
	if l := list(t, b, nil); len(l.Postings) != 3 {
		t.Fatalf("%d postings, want 3", len(l.Postings))
	}
	submit(t, dialMCPGo(t, e.url, openToken, ""), "submit_journal_entry", journalEntry("q-1"))
	if keys, _ := e.rdb.Keys(context.Background(), "rate:sapq:{policy:*}:submissions").Result(); len(keys) != 2 {
		t.Errorf("quota keys %v, want one per caller", keys)
	}
}

// A reload swaps the directory while calls are in flight: none of them
// fails, a caller added is admitted at once and one removed is refused.
func TestCallersReloadDropsNoRequest(t *testing.T) {
	e := policyEnv(t)
	ap := dialMCPGo(t, e.url, apToken, "")
	base, err := mcpfront.ParseCallers([]byte(callersJSON()), "a")
	if err != nil {
		t.Fatal(err)
	}
	var f mcpfront.CallersFile
	json.Unmarshal([]byte(callersJSON()), &f)
	f.Callers = append(f.Callers, mcpfront.CallerEntry{Name: "new-agent", TokenSHA256: sha("new-token-9d"), Role: mcpfront.RoleAgent})
	raw, _ := json.Marshal(f)
	grown, err := mcpfront.ParseCallers(raw, "b")
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var swaps sync.WaitGroup
	swaps.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			next := base
			if i%2 == 0 {
				next = grown
			}
			if err := e.srv.SetCallers(next); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var calls sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		calls.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := ap.callErr(ctx, "get_posting", map[string]any{"job_id": fmt.Sprintf("missing-%d", i)})
			if err == nil && !strings.Contains(r.Text, "not_found") {
				err = errors.New(r.Text)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	calls.Wait()
	close(stop)
	swaps.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call during reloads: %v", err)
	}

	if err := e.srv.SetCallers(grown); err != nil {
		t.Fatal(err)
	}
	submit(t, dialMCPGo(t, e.url, "new-token-9d", ""), "submit_journal_entry", journalEntry("new-1"))
	if err := e.srv.SetCallers(base); err != nil {
		t.Fatal(err)
	}
	resp := post(t, e.url, "new-token-9d", strings.NewReader(initialize), int64(len(initialize)))
	if resp.StatusCode != 401 {
		t.Fatalf("removed caller: status %d", resp.StatusCode)
	}
}

func TestCallersFileErrorsNameTheField(t *testing.T) {
	secret := "s3cr3t-token-in-the-file"
	raw := fmt.Sprintf(`{"callers": [
  {"name": "a b", "token_sha256": %q, "role": "boss"},
  {"name": "dup", "token_sha256": %q, "role": "agent"},
  {"name": "dup", "token_sha256": %q, "role": "agent", "policy": {
     "kinds": ["purchase_order"], "company_codes": ["10100"],
     "max_amount_per_day": {"EUR": "1e3", "eur": "5"}, "approval_threshold": {}, "submissions_per_minute": -2}},
  {"name": "nobody", "role": "agent"},
  {"name": "x", "token_sha256": %q, "role": "agent", "polcy": {}}
]}`, secret, sha("t1"), sha("t1"), sha("t2"))
	_, err := mcpfront.ParseCallers([]byte(raw), "callers.json")
	if err == nil || !strings.Contains(err.Error(), "callers[4].polcy: unknown field") {
		t.Fatalf("shape error: %v", err)
	}
	raw = strings.Replace(raw, `"polcy"`, `"policy"`, 1)
	_, err = mcpfront.ParseCallers([]byte(raw), "callers.json")
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"callers.json",
		"callers[0].name: must be 1-64 letters",
		"callers[0].token_sha256: must be 64 hex digits",
		"callers[0].role: must be agent or operator",
		`callers[2].name: caller "dup" appears more than once`,
		`callers[2].token_sha256: is the same token as caller "dup"'s`,
		`callers[2].policy.kinds[0]: unknown kind "purchase_order"`,
		"callers[2].policy.company_codes[0]: must be an SAP company code",
		"callers[2].policy.max_amount_per_day.EUR: must be a decimal string",
		"callers[2].policy.max_amount_per_day.eur: is not an ISO 4217 currency code",
		"callers[2].policy.approval_threshold: is empty",
		"callers[2].policy.submissions_per_minute: must be between 0",
		"callers[3]: needs token_sha256",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, sha("t1")) {
		t.Errorf("error quotes a token or its digest:\n%s", msg)
	}
}

// The posting guide explains the tools, the states and the contract, with
// the caller's own limits.
func TestPostingGuide(t *testing.T) {
	e := policyEnv(t)
	for _, version := range []string{"", legacyVersion} {
		sc := dialSDK(t, e.url, apToken, version)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		prompts, err := sc.cs.ListPrompts(ctx, nil)
		if err != nil || len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != "posting_guide" {
			t.Fatalf("prompts %+v %v", prompts, err)
		}
		res, err := sc.cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "posting_guide"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var text string
		for _, m := range res.Messages {
			if tc, ok := m.Content.(*sdk.TextContent); ok {
				text += tc.Text
			}
		}
		for _, want := range []string{
			`caller "ap-agent"`, "submit_supplier_invoice", "SAME idempotency_key", "Never invent a new key",
			"queued:", "running:", "retrying:", "succeeded (final)", "failed (final)", "cancelled (final)", "outcome_unknown",
			"company codes you may post in: 1010, 1710", "most per posting: 2000.00 EUR, 2500.00 USD",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("guide (%s) lacks %q", version, want)
			}
		}
		if strings.Contains(text, "submit_journal_entry") {
			t.Errorf("guide names a tool ap-agent may not use")
		}
	}
}
