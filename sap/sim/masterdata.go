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
}

// DefaultMasterData returns a fresh copy of the simulator's default data, modelled on
// an S/4HANA best-practice system: company codes 1010 (EUR) and 1710 (USD) on chart
// YCOA and controlling area A000.
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
		CompanyCodes: maps.Clone(md.CompanyCodes),
		GLAccounts:   cloneSets(md.GLAccounts),
		CostCenters:  cloneSets(md.CostCenters),
		Suppliers:    cloneSets(md.Suppliers),
		Customers:    cloneSets(md.Customers),
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
