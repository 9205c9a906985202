package tasks_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

func TestGoodsMovementFixturesDecode(t *testing.T) {
	for _, file := range []string{"../testdata/postings/goods_movement.json", "../testdata/postings/goods_movement.issue.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tasks.Decode(tasks.KindGoodsMovement, raw); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	for _, p := range []tasks.Posting{taskstest.GoodsMovement("gm-1"), taskstest.GoodsIssue("gi-1", "TG11", "3")} {
		if _, err := tasks.Decode(p.Kind(), encode(t, p)); err != nil {
			t.Errorf("%s: %v", p.Kind(), err)
		}
	}
}

func TestInvalidGoodsMovementsNameTheField(t *testing.T) {
	gm := taskstest.GoodsMovement("k")
	item := func(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }
	cases := []struct {
		name  string
		raw   string
		field string
		msg   string
	}{
		{"missing code", mutate(t, gm, func(m map[string]any) { delete(m, "goods_movement_code") }), "goods_movement_code", "is required (one of 01, 02, 03, 04, 05, 06)"},
		{"unknown code", mutate(t, gm, func(m map[string]any) { m["goods_movement_code"] = "07" }), "goods_movement_code", "must be one of 01"},
		{"code as number", mutate(t, gm, func(m map[string]any) { m["goods_movement_code"] = 5 }), "goods_movement_code", "must be a string"},
		{"missing posting date", mutate(t, gm, func(m map[string]any) { delete(m, "posting_date") }), "posting_date", "is required"},
		{"bad document date", mutate(t, gm, func(m map[string]any) { m["document_date"] = "2026-02-30" }), "document_date", "real calendar date"},
		{"long reference", mutate(t, gm, func(m map[string]any) { m["reference"] = strings.Repeat("R", 17) }), "reference", "at most 16"},
		{"lower-case reference", mutate(t, gm, func(m map[string]any) { m["reference"] = "dn-1" }), "reference", "upper case"},
		{"header text leaves no room for sapq's reference", mutate(t, gm, func(m map[string]any) { m["header_text"] = "Dock 2 receipt" }), "header_text", "at most 8"},
		{"no items", mutate(t, gm, func(m map[string]any) { m["items"] = []any{} }), "items", "at least 1 line"},
		{"missing material", mutate(t, gm, func(m map[string]any) { delete(item(m, 0), "material") }), "items[0].material", "is required"},
		{"missing plant", mutate(t, gm, func(m map[string]any) { delete(item(m, 1), "plant") }), "items[1].plant", "is required"},
		{"long plant", mutate(t, gm, func(m map[string]any) { item(m, 0)["plant"] = "10100" }), "items[0].plant", "at most 4"},
		{"long storage location", mutate(t, gm, func(m map[string]any) { item(m, 0)["storage_location"] = "101AB" }), "items[0].storage_location", "at most 4"},
		{"missing movement type", mutate(t, gm, func(m map[string]any) { delete(item(m, 0), "movement_type") }), "items[0].movement_type", "is required"},
		{"long movement type", mutate(t, gm, func(m map[string]any) { item(m, 0)["movement_type"] = "5011" }), "items[0].movement_type", "at most 3"},
		{"quantity as number", mutate(t, gm, func(m map[string]any) { item(m, 0)["quantity"] = 10 }), "items[0].quantity", "must be a string"},
		{"negative quantity", mutate(t, gm, func(m map[string]any) { item(m, 0)["quantity"] = "-1" }), "items[0].quantity", "greater than zero"},
		{"fraction of a piece", mutate(t, gm, func(m map[string]any) { item(m, 1)["quantity"] = "0.5" }), "items[1].quantity", "at most 0 decimals"},
		{"too many decimals in kg", mutate(t, gm, func(m map[string]any) { item(m, 1)["unit"], item(m, 1)["quantity"] = "KG", "1.2345" }), "items[1].quantity", "at most 3 decimals"},
		{"exponent", mutate(t, gm, func(m map[string]any) { item(m, 0)["quantity"] = "1e3" }), "items[0].quantity", "decimal string"},
		{"unknown unit", mutate(t, gm, func(m map[string]any) { item(m, 0)["unit"] = "BOX" }), "items[0].unit", "unit of measure"},
		{"purchase order with letters", mutate(t, gm, func(m map[string]any) { item(m, 0)["purchase_order"], item(m, 0)["purchase_order_item"] = "PO-1", "10" }), "items[0].purchase_order", "only digits"},
		{"purchase order without item", mutate(t, gm, func(m map[string]any) { item(m, 0)["purchase_order"] = "4500000001" }), "items[0].purchase_order_item", "is required with purchase_order"},
		{"item without purchase order", mutate(t, gm, func(m map[string]any) { item(m, 1)["purchase_order_item"] = "10" }), "items[1].purchase_order", "is required with purchase_order_item"},
		{"receipt for purchase order without one", mutate(t, gm, func(m map[string]any) {
			m["goods_movement_code"] = "01"
			item(m, 0)["purchase_order"], item(m, 0)["purchase_order_item"] = "4500000001", "10"
		}), "items[1].purchase_order", "goods_movement_code 01"},
		{"long batch", mutate(t, gm, func(m map[string]any) { item(m, 0)["batch"] = strings.Repeat("B", 11) }), "items[0].batch", "at most 10"},
		{"control character in text", mutate(t, gm, func(m map[string]any) { item(m, 0)["text"] = "a\tb" }), "items[0].text", "printable"},
		{"unknown item field", mutate(t, gm, func(m map[string]any) { item(m, 0)["receiving_storage_location"] = "101B" }), "items[0].receiving_storage_location", "unknown field"},
		{"price sent", mutate(t, gm, func(m map[string]any) { m["amount"] = "10.00" }), "amount", "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := fieldErrors(t, tasks.KindGoodsMovement, c.raw)
			for _, fe := range errs {
				if fe.Field == c.field && strings.Contains(fe.Message, c.msg) {
					return
				}
			}
			t.Fatalf("errors %v do not include %s: ...%s...", errs, c.field, c.msg)
		})
	}
}

// The header text's rule is what is left of SAP's 25 characters after
// sapq's reference and a space.
func TestGoodsMovementHeaderTextLeavesRoomForTheReference(t *testing.T) {
	for _, fr := range tasks.Rules(reflect.TypeOf(tasks.GoodsMovement{})) {
		if len(fr.Path) == 1 && fr.Path[0] == "header_text" {
			if fr.Rule.Max != tasks.MaxGoodsMovementHeaderText || tasks.MaxGoodsMovementHeaderText+tasks.LenSAPReference+1 != tasks.LenMaterialDocumentHeaderText {
				t.Fatalf("header_text holds %d characters; sapq's reference %d and a space leave %d of %d", fr.Rule.Max, tasks.LenSAPReference, tasks.MaxGoodsMovementHeaderText, tasks.LenMaterialDocumentHeaderText)
			}
			return
		}
	}
	t.Fatal("no header_text rule")
}

func TestGoodsMovementOptionalFieldsMayBeOmitted(t *testing.T) {
	gm := taskstest.GoodsMovement("k")
	gm.Reference, gm.HeaderText = "", ""
	for i := range gm.Items {
		gm.Items[i].StorageLocation, gm.Items[i].Text = "", ""
	}
	if err := gm.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestGoodsMovementFacts(t *testing.T) {
	gm := taskstest.GoodsMovement("k")
	gm.Items = append(gm.Items,
		tasks.GoodsMovementItem{Material: "TG11", Plant: "1010", StorageLocation: "101B", MovementType: "501", Quantity: "1", Unit: "PC"},
		tasks.GoodsMovementItem{Material: "TG11", Plant: "1710", StorageLocation: "171A", MovementType: "501", Quantity: "1", Unit: "PC"})
	f := gm.Facts()
	want := []tasks.OrgUnit{{Kind: tasks.UnitPlant, Field: "items[0].plant", Value: "1010"}, {Kind: tasks.UnitPlant, Field: "items[3].plant", Value: "1710"}}
	if !slices.Equal(f.Units, want) {
		t.Errorf("units %v, want each plant once, named by its first item %v", f.Units, want)
	}
	if got := f.Objects; !slices.Equal(got, []string{"material/1010/TG11", "material/1010/TG12", "material/1710/TG11"}) {
		t.Errorf("objects %v, want each material's plant data once", got)
	}
	if f.Currency != "" || !f.Amount.IsZero() || f.CompanyCode() != "" {
		t.Errorf("amount %s %s, company code %q: a goods movement moves no amount of its own and names no company code", f.Amount, f.Currency, f.CompanyCode())
	}
}
