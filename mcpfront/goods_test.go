package mcpfront_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks/taskstest"
)

// A caller limited to plants may move goods only there: a goods movement
// names its plants per item, and the refusal names the item's field.
func TestGoodsMovementPlantsPolicy(t *testing.T) {
	const token = "wh-agent-token-4d2c"
	callers, err := mcpfront.ParseCallers([]byte(fmt.Sprintf(`{"callers": [
  {"name": "wh-agent", "token_sha256": %q, "role": "agent", "policy": {"kinds": ["goods_movement"], "plants": ["1710"]}}]}`, sha(token))), "callers.json")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, mcpfront.Options{Callers: callers, SAP: simDestinations(t)})
	c := dialMCPGo(t, e.url, token, "")
	gm := taskstest.GoodsMovement("wh-1")
	gm.Items[0].Plant = "1710"
	raw, _ := json.Marshal(gm)
	var args map[string]any
	json.Unmarshal(raw, &args)
	te, text := toolErrorMeta(t, c, "submit_goods_movement", args)
	if te.Code != "policy_violation" || te.Rule != "allowed_plants" ||
		!strings.Contains(text, "items[1].plant: you may not post in plant 1010; allowed: 1710 (rule allowed_plants)") {
		t.Fatalf("code %q rule %q:\n%s", te.Code, te.Rule, text)
	}
	if l := list(t, c, nil); len(l.Postings) != 0 {
		t.Fatalf("a refused goods movement was recorded: %+v", l)
	}
}
