package sim

import (
	"maps"
	"strings"
)

// CompanyCode is the customising of one company code that postings are checked against.
type CompanyCode struct {
	// Currency is the company code (local) currency, e.g. "EUR".
	Currency string
	// ChartOfAccounts is the operative chart of accounts, e.g. "YCOA"; G/L accounts are
	// checked against it (message F5/507).
	ChartOfAccounts string
	// ControllingArea is the controlling area the company code is assigned to, e.g.
	// "A000"; cost centers are checked against it (message KI/248).
	ControllingArea string
	// PayablesAccount and ReceivablesAccount are the reconciliation accounts
	// of suppliers' and customers' lines.
	PayablesAccount, ReceivablesAccount string
}

// MasterData is the customising and master data the simulator validates postings
// against. The sets are plain maps so that tests can add entries before calling New:
//
//	md := sim.DefaultMasterData()
//	md.Suppliers["1010"]["17300099"] = true
//	srv := sim.New(sim.Options{MasterData: md})
//
// New copies it, so changes made afterwards have no effect.
type MasterData struct {
	// CompanyCodes by company code ("1010").
	CompanyCodes map[string]CompanyCode
	// GLAccounts by chart of accounts, then G/L account.
	GLAccounts map[string]map[string]bool
	// CostCenters by controlling area, then cost center.
	CostCenters map[string]map[string]bool
	// Suppliers by company code, then supplier: in SAP a supplier must be extended to a
	// company code before invoices can be posted there (message F5/104).
	Suppliers map[string]map[string]bool
	// Customers by company code, then customer (message F5/102).
	Customers map[string]map[string]bool

	// Logistics: materials, plants with their storage locations, the stock
	// each plant and storage location holds at start, and sales areas.
	Materials map[string]Material
	// Plants by plant ("1010"), with the company code they belong to and
	// their storage locations.
	Plants map[string]Plant
	// Stock is the unrestricted stock at start, by material, plant and
	// storage location: "TG11/1010/101A". Goods movements change it.
	Stock map[string]string
	// SalesAreas lists sales organisation/distribution channel/division
	// ("1010/10/00"), with the company code each sales organisation belongs to.
	SalesAreas map[string]SalesArea
	// SalesCustomers are the customers (sold-to parties) of each sales area.
	SalesCustomers map[string]map[string]bool
}

// Material is a material's master record.
type Material struct {
	// BaseUnit is the unit stock is kept in, e.g. "PC"; quantities of
	// goods movements and sales orders are in it.
	BaseUnit string
	// Price is the material's price per base unit, for sales orders, as a
	// decimal string in the sales area's currency.
	Price string
	// Plants the material is extended to.
	Plants []string
}

// Plant is a plant's customising.
type Plant struct {
	CompanyCode      string
	StorageLocations []string
	// WarehouseStorageLocations are the storage locations a warehouse
	// manages: SAP posts a goods movement of one, but its answer names the
	// delivery it created for the warehouse (L9/514) and no material
	// document.
	WarehouseStorageLocations []string
}

// SalesArea is a sales area's customising.
type SalesArea struct {
	CompanyCode, Currency string
	// OrderTypes are the sales document types allowed in the sales area
	// (nil: OR, the standard order, only).
	OrderTypes []string
}

// DefaultMasterData returns a fresh copy of the simulator's default data, modelled on
// an S/4HANA best-practice system: company codes 1010 (EUR) and 1710 (USD) on chart
// YCOA and controlling area A000; plant 1010 with storage locations 101A and 101B;
// trading goods TG11 and TG12; sales area 1010/10/00 selling to customers 10100001
// and 10100002.
func DefaultMasterData() *MasterData {
	return &MasterData{
		CompanyCodes: map[string]CompanyCode{
			"1010": {Currency: "EUR", ChartOfAccounts: "YCOA", ControllingArea: "A000", PayablesAccount: "21100000", ReceivablesAccount: "12100000"},
			"1710": {Currency: "USD", ChartOfAccounts: "YCOA", ControllingArea: "A000", PayablesAccount: "21100000", ReceivablesAccount: "12100000"},
		},
		GLAccounts: map[string]map[string]bool{
			"YCOA": set("61003000", "65008000", "11001000", "21100000", "12100000", "11002000"),
		},
		CostCenters: map[string]map[string]bool{
			"A000": set("10101101", "10101102"),
		},
		Suppliers: map[string]map[string]bool{
			"1010": set("17300001", "17300002"),
			"1710": set("17300001", "17300002"),
		},
		Customers: map[string]map[string]bool{
			"1010": set("10100001", "10100002"),
			"1710": set("10100001"),
		},
		Materials: map[string]Material{
			"TG11": {BaseUnit: "PC", Price: "25.00", Plants: []string{"1010"}},
			"TG12": {BaseUnit: "PC", Price: "40.00", Plants: []string{"1010"}},
		},
		Plants: map[string]Plant{
			"1010": {CompanyCode: "1010", StorageLocations: []string{"101A", "101B"}},
		},
		Stock: map[string]string{
			"TG11/1010/101A": "500",
			"TG12/1010/101A": "200",
		},
		SalesAreas: map[string]SalesArea{
			"1010/10/00": {CompanyCode: "1010", Currency: "EUR"},
		},
		SalesCustomers: map[string]map[string]bool{
			"1010/10/00": set("10100001", "10100002"),
		},
	}
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func (md *MasterData) clone() *MasterData {
	cloneSets := func(in map[string]map[string]bool) map[string]map[string]bool {
		out := make(map[string]map[string]bool, len(in))
		for k, v := range in {
			out[k] = maps.Clone(v)
		}
		return out
	}
	return &MasterData{
		CompanyCodes:   maps.Clone(md.CompanyCodes),
		GLAccounts:     cloneSets(md.GLAccounts),
		CostCenters:    cloneSets(md.CostCenters),
		Suppliers:      cloneSets(md.Suppliers),
		Customers:      cloneSets(md.Customers),
		Materials:      maps.Clone(md.Materials),
		Plants:         maps.Clone(md.Plants),
		Stock:          maps.Clone(md.Stock),
		SalesAreas:     maps.Clone(md.SalesAreas),
		SalesCustomers: cloneSets(md.SalesCustomers),
	}
}

func (md *MasterData) companyCode(cc string) (CompanyCode, bool) {
	c, ok := md.CompanyCodes[cc]
	return c, ok
}

func (md *MasterData) hasGLAccount(chart, account string) bool {
	return containsAlpha(md.GLAccounts[chart], account)
}

func (md *MasterData) hasCostCenter(area, cc string) bool {
	return containsAlpha(md.CostCenters[area], cc)
}

func (md *MasterData) hasCustomer(companyCode, customer string) bool {
	return containsAlpha(md.Customers[companyCode], customer)
}

func (md *MasterData) hasSupplier(companyCode, supplier string) bool {
	return containsAlpha(md.Suppliers[companyCode], supplier)
}

// containsAlpha looks key up the way SAP's ALPHA conversion exit compares numeric
// keys: "0017300001" and "17300001" are the same supplier.
func containsAlpha(m map[string]bool, key string) bool {
	if m[key] {
		return true
	}
	k := alpha(key)
	for candidate := range m {
		if alpha(candidate) == k {
			return true
		}
	}
	return false
}

func alpha(s string) string {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return s
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}
