// Package taskstest builds valid postings for tests, in the spirit of River's
// rivertest: one place that knows what a good posting looks like, so tests
// state only what they change.
package taskstest

import (
	"strings"
	"time"

	"github.com/sapq/sapq/tasks"
)

// Today is the current date as YYYY-MM-DD: always inside the SAP
// simulator's open posting periods.
func Today() string { return time.Now().UTC().Format("2006-01-02") }

// SupplierInvoice returns a valid two-line supplier invoice in company code
// 1010 for supplier 17300001, with the key, upper-cased as SAP keeps it,
// doubling as the supplier's invoice number so that each key is a distinct
// document.
func SupplierInvoice(key string) *tasks.SupplierInvoice {
	ref := strings.ToUpper(key)
	if len(ref) > tasks.LenInvoiceReference {
		ref = ref[len(ref)-tasks.LenInvoiceReference:]
	}
	return &tasks.SupplierInvoice{
		Key:              key,
		CompanyCode:      "1010",
		Supplier:         "17300001",
		InvoiceReference: ref,
		DocumentDate:     Today(),
		PostingDate:      Today(),
		Currency:         "EUR",
		GrossAmount:      "1190.00",
		HeaderText:       "Office supplies",
		Items: []tasks.SupplierInvoiceItem{
			{GLAccount: "61003000", Amount: "1000.00", CostCenter: "10101101", TaxCode: "V1", Text: "Paper"},
			{GLAccount: "65008000", Amount: "190.00", CostCenter: "10101102", Text: "Toner"},
		},
	}
}

// JournalEntry returns a valid balanced two-line journal entry in company
// code 1010.
func JournalEntry(key string) *tasks.JournalEntry {
	return &tasks.JournalEntry{
		Key:          key,
		CompanyCode:  "1010",
		DocumentDate: Today(),
		PostingDate:  Today(),
		Currency:     "EUR",
		Reference:    "ACCR-2026-11",
		HeaderText:   "Accrual",
		Items: []tasks.JournalEntryItem{
			{GLAccount: "61003000", Amount: "250.00", CostCenter: "10101101", Text: "Accrued consulting"},
			{GLAccount: "21100000", Amount: "-250.00", Text: "Accrued liabilities"},
		},
	}
}

// SalesOrder returns a valid two-item standard order in sales area
// 1010/10/00 for customer 10100001 (materials TG11 and TG12), with the key
// as the customer's reference.
func SalesOrder(key string) *tasks.SalesOrder {
	ref := key
	if len(ref) > 35 {
		ref = ref[len(ref)-35:]
	}
	return &tasks.SalesOrder{
		Key:                   key,
		SalesOrderType:        "OR",
		SalesOrganization:     "1010",
		DistributionChannel:   "10",
		Division:              "00",
		SoldToParty:           "10100001",
		CustomerReference:     ref,
		RequestedDeliveryDate: time.Now().UTC().AddDate(0, 0, 7).Format("2006-01-02"),
		Items: []tasks.SalesOrderItem{
			{Material: "TG11", Quantity: "10", Unit: "PC"},
			{Material: "TG12", Quantity: "2", Unit: "PC"},
		},
	}
}

// BillingDocument returns a valid billing posting of the given sales
// orders, dated today, with SAP choosing the billing type.
func BillingDocument(key string, salesOrders ...string) *tasks.BillingDocument {
	return &tasks.BillingDocument{Key: key, SalesDocuments: salesOrders, BillingDate: Today()}
}

// GoodsMovement returns a valid two-item goods receipt without purchase
// order (code 05, movement type 501) of materials TG11 and TG12 into plant
// 1010, storage location 101A, dated today.
func GoodsMovement(key string) *tasks.GoodsMovement {
	return &tasks.GoodsMovement{
		Key:               key,
		GoodsMovementCode: "05",
		PostingDate:       Today(),
		DocumentDate:      Today(),
		Reference:         "DN-4711",
		HeaderText:        "receipt",
		Items: []tasks.GoodsMovementItem{
			{Material: "TG11", Plant: "1010", StorageLocation: "101A", MovementType: "501", Quantity: "10", Unit: "PC", Text: "pallet 1"},
			{Material: "TG12", Plant: "1010", StorageLocation: "101A", MovementType: "501", Quantity: "2", Unit: "PC"},
		},
	}
}

// GoodsIssue returns a valid goods issue (code 03, movement type 201) of
// quantity pieces of material from plant 1010, storage location 101A, to
// cost center 10101101, dated today.
func GoodsIssue(key, material, quantity string) *tasks.GoodsMovement {
	return &tasks.GoodsMovement{
		Key:               key,
		GoodsMovementCode: "03",
		PostingDate:       Today(),
		DocumentDate:      Today(),
		Items: []tasks.GoodsMovementItem{
			{Material: material, Plant: "1010", StorageLocation: "101A", MovementType: "201", Quantity: quantity, Unit: "PC", CostCenter: "10101101"},
		},
	}
}
