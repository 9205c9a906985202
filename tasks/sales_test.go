package tasks_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

func TestSalesFixturesDecode(t *testing.T) {
	for _, c := range []struct {
		kind tasks.Kind
		file string
	}{
		{tasks.KindSalesOrder, "../testdata/postings/sales_order.json"},
		{tasks.KindBillingDocument, "../testdata/postings/billing_document.json"},
	} {
		raw, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tasks.Decode(c.kind, raw); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
	}
	for _, p := range []tasks.Posting{taskstest.SalesOrder("so-1"), taskstest.BillingDocument("bd-1", "1", "2")} {
		if _, err := tasks.Decode(p.Kind(), encode(t, p)); err != nil {
			t.Errorf("%s: %v", p.Kind(), err)
		}
	}
}

func salesItem(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }

func TestInvalidSalesPostingsNameTheField(t *testing.T) {
	so, bd := taskstest.SalesOrder("k"), taskstest.BillingDocument("k", "1", "2")
	cases := []struct {
		name  string
		kind  tasks.Kind
		raw   string
		field string
		msg   string
	}{
		{"missing order type", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { delete(m, "sales_order_type") }), "sales_order_type", "is required"},
		{"lower-case order type", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["sales_order_type"] = "or" }), "sales_order_type", "upper-case"},
		{"long order type", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["sales_order_type"] = "ORDER" }), "sales_order_type", "at most 4"},
		{"long sales organization", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["sales_organization"] = "10100" }), "sales_organization", "at most 4"},
		{"long distribution channel", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["distribution_channel"] = "100" }), "distribution_channel", "at most 2"},
		{"long division", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["division"] = "000" }), "division", "at most 2"},
		{"long sold-to party", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["sold_to_party"] = "12345678901" }), "sold_to_party", "at most 10"},
		{"missing customer reference", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { delete(m, "customer_reference") }), "customer_reference", "is required"},
		{"long customer reference", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["customer_reference"] = strings.Repeat("r", 36) }), "customer_reference", "at most 35"},
		{"control character in customer reference", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["customer_reference"] = "PO\t1" }), "customer_reference", "printable"},
		{"bad delivery date", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["requested_delivery_date"] = "2026-02-30" }), "requested_delivery_date", "real calendar date"},
		{"no items", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { m["items"] = []any{} }), "items", "at least 1 line"},
		{"long material", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 0)["material"] = strings.Repeat("M", 41) }), "items[0].material", "at most 40"},
		{"zero quantity", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 1)["quantity"] = "0" }), "items[1].quantity", "greater than zero"},
		{"fraction of a piece", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 0)["quantity"] = "1.5" }), "items[0].quantity", "at most 0 decimals"},
		{"quantity as number", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 0)["quantity"] = 10 }), "items[0].quantity", "must be a string"},
		{"unknown unit", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 0)["unit"] = "BOX" }), "items[0].unit", "unit of measure"},
		{"price sent", tasks.KindSalesOrder, mutate(t, so, func(m map[string]any) { salesItem(m, 0)["price"] = "25.00" }), "items[0].price", "unknown field"},
		{"no sales documents", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{} }), "sales_documents", "at least 1 value"},
		{"missing sales documents", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { delete(m, "sales_documents") }), "sales_documents", "at least 1 value"},
		{"too many sales documents", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) {
			var docs []any
			for i := range tasks.MaxBillingSalesDocuments + 1 {
				docs = append(docs, strings.Repeat("1", 1+i%9)+string(rune('0'+i/9)))
			}
			m["sales_documents"] = docs
		}), "sales_documents", "at most 20 values"},
		{"sales document with letters", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{"1", "SO-2"} }), "sales_documents[1]", "only digits"},
		{"long sales document", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{"12345678901"} }), "sales_documents[0]", "at most 10 digits"},
		{"empty sales document", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{"1", ""} }), "sales_documents[1]", "is required"},
		{"sales document as number", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{"1", 2} }), "sales_documents[1]", "must be a string"},
		{"sales document twice", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["sales_documents"] = []any{"12", "3", "0000000012"} }), "sales_documents[2]", "second time (first at sales_documents[0])"},
		{"long billing type", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["billing_document_type"] = "F2XXX" }), "billing_document_type", "at most 4"},
		{"bad billing date", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["billing_date"] = "25.11.2026" }), "billing_date", "YYYY-MM-DD"},
		{"unknown billing field", tasks.KindBillingDocument, mutate(t, bd, func(m map[string]any) { m["amount"] = "10.00" }), "amount", "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := fieldErrors(t, c.kind, c.raw)
			for _, fe := range errs {
				if fe.Field == c.field && strings.Contains(fe.Message, c.msg) {
					return
				}
			}
			t.Fatalf("errors %v do not include %s: ...%s...", errs, c.field, c.msg)
		})
	}
}

// Optional fields may be left out: SAP proposes a delivery date, a billing
// type and a billing date.
func TestSalesOptionalFieldsMayBeOmitted(t *testing.T) {
	so := taskstest.SalesOrder("k")
	so.RequestedDeliveryDate = ""
	bd := taskstest.BillingDocument("k", "7")
	bd.BillingDate, bd.BillingDocumentType = "", ""
	for _, p := range []tasks.Posting{so, bd} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Kind(), err)
		}
	}
}

func TestSalesFacts(t *testing.T) {
	f := taskstest.SalesOrder("k").Facts()
	if len(f.Units) != 1 || f.Units[0] != (tasks.OrgUnit{Kind: tasks.UnitSalesOrganization, Field: "sales_organization", Value: "1010"}) {
		t.Errorf("sales order units %v, want its sales organization", f.Units)
	}
	if f.Currency != "" || !f.Amount.IsZero() {
		t.Errorf("sales order amount %s %s, want none: SAP prices it", f.Amount, f.Currency)
	}
	bd := taskstest.BillingDocument("k", "0000000012", "3")
	if got := bd.Facts().Objects; !slices.Equal(got, []string{"salesorder/3", "salesorder/12"}) {
		t.Errorf("billing objects %v, want the orders SAP locks, as SAP numbers them", got)
	}
	if got := bd.BilledDocuments(); !slices.Equal(got, []string{"3", "12"}) {
		t.Errorf("billed documents %v", got)
	}
}
