package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
)

func TestEveryKindHasAGenerator(t *testing.T) {
	for _, kind := range tasks.Kinds {
		if !slices.ContainsFunc(kinds, func(s kindSpec) bool { return s.kind == kind }) {
			t.Errorf("kind %s has no entry in kinds: sapq chaos would not submit it", kind)
		}
	}
	for _, s := range kinds {
		spec, ok := tasks.SpecOf(s.kind)
		if !ok || s.tool != spec.Tool {
			t.Errorf("kind %s is submitted with tool %q, want its spec's %q", s.kind, s.tool, spec.Tool)
		}
	}
}

// TestGeneratedPostingsAreAccepted: every posting the harness makes passes
// sapq's validation, so that only SAP can refuse the flawed ones; sound
// ones use only the simulator's master data, open periods and open sales
// orders, flawed ones break exactly what their flaw says.
func TestGeneratedPostingsAreAccepted(t *testing.T) {
	md := sim.DefaultMasterData()
	for _, now := range []time.Time{
		time.Now(),
		time.Date(2027, time.March, 1, 0, 0, 0, 0, time.UTC),       // first of a month
		time.Date(2028, time.February, 29, 23, 59, 0, 0, time.UTC), // leap day, end of month
		time.Date(2027, time.January, 15, 12, 0, 0, 0, time.UTC),   // the closed period is in the year before
	} {
		g := newGenerator(7, now)
		today := now.UTC().Format(time.DateOnly)
		month := now.UTC().Format("2006-01")
		closed := time.Date(now.Year(), now.Month()-3, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
		billedOrders := map[string]bool{}
		keys := 0
		for _, spec := range kinds {
			for _, flaw := range append([]Flaw{Sound}, spec.flaws...) {
				for i := range 50 {
					keys++
					key := "k-" + string(spec.kind) + "-" + flaw.String() + "-" + string(rune('a'+i%26))
					p := spec.make(g, key, flaw)
					raw, err := json.Marshal(p)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := tasks.Decode(spec.kind, raw); err != nil {
						t.Fatalf("%s %s: sapq refuses the generated posting: %v\n%s", spec.kind, flaw, err, raw)
					}
					f := facts(t, p)
					if f.key != key {
						t.Errorf("%s: key %q, want %q", spec.kind, f.key, key)
					}
					if f.companyCode != "" {
						if cc, ok := md.CompanyCodes[f.companyCode]; !ok || cc.Currency != f.currency {
							t.Errorf("%s: company code %s in %s is not in the simulator's master data", spec.kind, f.companyCode, f.currency)
						}
					}
					switch {
					case flaw == ClosedPeriod:
						if !strings.HasPrefix(f.postingDate, closed) {
							t.Errorf("%s closed period: posting date %s, want one in %s", spec.kind, f.postingDate, closed)
						}
					case f.postingDate == "" && !f.dateOptional:
						t.Errorf("%s %s: no posting date", spec.kind, flaw)
					case f.postingDate != "" && (!strings.HasPrefix(f.postingDate, month) || f.postingDate > today):
						t.Errorf("%s %s: posting date %s is not in %s up to %s", spec.kind, flaw, f.postingDate, month, today)
					}
					cc := md.CompanyCodes[f.companyCode]
					missing := 0
					for _, acct := range f.accounts {
						if !md.GLAccounts[cc.ChartOfAccounts][acct] {
							missing++
						}
					}
					if want := map[Flaw]int{UnknownGLAccount: 1}[flaw]; missing != want {
						t.Errorf("%s %s: %d G/L accounts missing from the master data, want %d: %v", spec.kind, flaw, missing, want, f.accounts)
					}
					missing = 0
					for _, m := range f.materials {
						if _, ok := md.Materials[m]; !ok {
							missing++
						}
					}
					if want := map[Flaw]int{UnknownMaterial: 1}[flaw]; missing != want {
						t.Errorf("%s %s: %d materials missing from the master data, want %d: %v", spec.kind, flaw, missing, want, f.materials)
					}
					if f.salesArea != "" && !md.SalesCustomers[f.salesArea][f.soldTo] {
						t.Errorf("%s: sold-to party %s not in sales area %s", spec.kind, f.soldTo, f.salesArea)
					}
					for _, c := range f.costCenters {
						if c != "" && !md.CostCenters[cc.ControllingArea][c] {
							t.Errorf("%s: cost center %s not in the master data", spec.kind, c)
						}
					}
					if f.supplier != "" && !md.Suppliers[f.companyCode][f.supplier] {
						t.Errorf("%s: supplier %s not in company code %s", spec.kind, f.supplier, f.companyCode)
					}
					for _, o := range f.salesOrders {
						if flaw == UnknownSalesOrder {
							if o != missingSalesOrder {
								t.Errorf("%s %s: bills order %s, want the missing one", spec.kind, flaw, o)
							}
							continue
						}
						if billedOrders[o] {
							t.Errorf("%s: order %s billed by two keys", spec.kind, o)
						}
						billedOrders[o] = true
					}
				}
			}
		}
		// Every order billed is one the simulator holds from the start.
		for o := range billedOrders {
			if n, err := strconv.Atoi(o); err != nil || n < 1 || n > OpenSalesOrders(keys) {
				t.Errorf("billed order %s is not among the %d open orders", o, OpenSalesOrders(keys))
			}
		}
	}
}

// postingFacts is what the test checks of a posting of any kind; a new
// kind adds a case to facts.
type postingFacts struct {
	key, companyCode, currency, postingDate, supplier string
	dateOptional                                      bool
	accounts, costCenters, materials, salesOrders     []string
	salesArea, soldTo                                 string
}

func facts(t *testing.T, p tasks.Posting) postingFacts {
	switch p := p.(type) {
	case *tasks.SupplierInvoice:
		f := postingFacts{key: p.Key, companyCode: p.CompanyCode, currency: p.Currency, postingDate: p.PostingDate, supplier: p.Supplier}
		for _, it := range p.Items {
			f.accounts = append(f.accounts, it.GLAccount)
			f.costCenters = append(f.costCenters, it.CostCenter)
		}
		return f
	case *tasks.JournalEntry:
		f := postingFacts{key: p.Key, companyCode: p.CompanyCode, currency: p.Currency, postingDate: p.PostingDate}
		for _, it := range p.Items {
			f.accounts = append(f.accounts, it.GLAccount)
			f.costCenters = append(f.costCenters, it.CostCenter)
		}
		return f
	case *tasks.SalesOrder:
		// A sales order posts nothing to the books: no posting date.
		f := postingFacts{key: p.Key, dateOptional: true, salesArea: p.SalesOrganization + "/" + p.DistributionChannel + "/" + p.Division, soldTo: p.SoldToParty}
		for _, it := range p.Items {
			f.materials = append(f.materials, it.Material)
		}
		return f
	case *tasks.GoodsMovement:
		// No company code: the plant's is SAP's to know (cost centers are
		// checked in TestGeneratedGoodsMovementsKeepTheStock).
		f := postingFacts{key: p.Key, postingDate: p.PostingDate}
		for _, it := range p.Items {
			f.materials = append(f.materials, it.Material)
		}
		return f
	case *tasks.BillingDocument:
		// The billing date is optional (SAP takes today) and is the
		// invoice's posting date.
		return postingFacts{key: p.Key, postingDate: p.BillingDate, dateOptional: true, salesOrders: p.SalesDocuments}
	case *tasks.ReversePosting:
		// The reversal's posting date is optional (SAP takes the
		// original's); the original is named at run time.
		if p.JobID != laterJobID || p.Original != nil {
			t.Errorf("%s: a planned reversal names job %q, original %+v", p.Key, p.JobID, p.Original)
		}
		return postingFacts{key: p.Key, postingDate: p.PostingDate, dateOptional: true}
	}
	t.Fatalf("no facts for %T: add a case", p)
	return postingFacts{}
}

func TestInvoiceNumbersAreDistinct(t *testing.T) {
	g := newGenerator(42, time.Now())
	seen := map[string]bool{}
	for i := range 20000 {
		n := g.invoiceNumber(fmt.Sprint("key-", i))
		if len(n) > tasks.LenInvoiceReference || strings.ToUpper(n) != n {
			t.Fatalf("invoice number %q: must be upper case and at most %d characters", n, tasks.LenInvoiceReference)
		}
		if seen[n] {
			t.Fatalf("invoice number %q drawn twice", n)
		}
		seen[n] = true
	}
	if newGenerator(43, time.Now()).invoiceNumber("k") == g.invoiceNumber("k") {
		t.Error("two runs give a key the same invoice number")
	}
}

// Sound goods issues of a plan never take more than the simulator holds at
// start, whatever order the run posts them in (receipts not counted), and
// use its plant, storage locations and cost centers; a StockDeficit issue
// takes more than any run could bring in.
func TestGeneratedGoodsMovementsKeepTheStock(t *testing.T) {
	md := sim.DefaultMasterData()
	g := newGenerator(11, time.Now())
	issued := map[string]decimal.Decimal{}
	kinds := map[string]int{}
	warehouse := 0
	for i := range 5000 {
		flaw := Sound
		if i%50 == 0 {
			flaw = StockDeficit
		}
		gm := g.goodsMovement(fmt.Sprint("gm-", i), flaw).(*tasks.GoodsMovement)
		kinds[gm.GoodsMovementCode]++
		if slices.ContainsFunc(gm.Items, func(it tasks.GoodsMovementItem) bool { return plant+"/"+it.StorageLocation == warehouseStorageLocation }) {
			warehouse++
		}
		deficit := false
		mine := map[string]decimal.Decimal{}
		for _, it := range gm.Items {
			plant := md.Plants[it.Plant]
			if !slices.Contains(plant.StorageLocations, it.StorageLocation) || !slices.Contains(md.Materials[it.Material].Plants, it.Plant) {
				t.Fatalf("%s: item %+v is not in the simulator's master data", gm.Key, it)
			}
			if it.CostCenter != "" && !md.CostCenters[md.CompanyCodes[plant.CompanyCode].ControllingArea][it.CostCenter] {
				t.Fatalf("%s: cost center %s not in the master data", gm.Key, it.CostCenter)
			}
			if it.MovementType != "201" {
				continue
			}
			q := decimal.RequireFromString(it.Quantity)
			if it.Quantity == deficitQuantity {
				deficit = true
				continue
			}
			mine[stockKey(it)] = mine[stockKey(it)].Add(q)
		}
		if deficit != (flaw == StockDeficit) {
			t.Fatalf("%s (%s): deficit item %t", gm.Key, flaw, deficit)
		}
		if !deficit { // SAP refuses a deficit posting as a whole
			for k, q := range mine {
				issued[k] = issued[k].Add(q)
			}
		}
	}
	for k, q := range issued {
		if start := decimal.RequireFromString(md.Stock[k]); q.GreaterThan(start) {
			t.Errorf("sound issues take %s of %s, which holds %s at start", q, k, start)
		}
	}
	if warehouse == 0 || warehouse > 5000/warehouseEvery {
		t.Errorf("%d movements of the warehouse's storage location, want a few", warehouse)
	}
	if kinds["01"] == 0 || kinds["03"] == 0 || kinds["05"] == 0 {
		t.Errorf("movements by code %v: want receipts for purchase orders, issues and other receipts", kinds)
	}
}

func stockKey(it tasks.GoodsMovementItem) string {
	return it.Material + "/" + it.Plant + "/" + it.StorageLocation
}
