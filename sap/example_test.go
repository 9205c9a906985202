package sap_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sapq/sapq/sap"
)

// A worker posts a supplier invoice and lets the error's category decide
// what happens to the job.
func ExampleClient_PostSupplierInvoice() {
	srv := exampleSAP() // stands in for https://my-s4.example.com
	defer srv.Close()

	client, err := sap.New(sap.Config{
		BaseURL:  srv.URL,
		User:     "SAPQ_COMM",
		Password: "secret",
		Timeout:  10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	// The reference is the posting's own: derived from who submitted it
	// under which key (tasks.Identity), stored by SAP with the invoice.
	const reference = "SQ5R2MVAYQ4KJ3TA"
	inv := sap.SupplierInvoice{
		AssignmentReference:           reference,
		CompanyCode:                   "1010",
		InvoicingParty:                "17300001",
		SupplierInvoiceIDByInvcgParty: "INV-2026-001",
		DocumentCurrency:              "EUR",
		DocumentDate:                  day,
		PostingDate:                   day,
		InvoiceGrossAmount:            decimal.RequireFromString("119.00"),
		Items: []sap.SupplierInvoiceGLItem{
			{GLAccount: "61003000", Amount: decimal.RequireFromString("119.00"), CostCenter: "10101101", TaxCode: "V1"},
		},
	}

	for attempt := 1; attempt <= 3; attempt++ {
		doc, err := client.PostSupplierInvoice(ctx, inv)
		if err == nil {
			fmt.Printf("posted %s/%s in attempt %d\n", doc.Number, doc.FiscalYear, attempt)
			return
		}
		switch sap.CategoryOf(err) {
		case sap.Transient:
			// Nothing was posted: retry after a backoff, but not sooner than
			// SAP (or its gateway) asked. A real worker re-enqueues the job
			// with this delay instead of looping.
			delay := max(time.Duration(attempt)*time.Second, sap.RetryAfterOf(err))
			fmt.Printf("retry in %s: %v\n", delay, err)
		case sap.Permanent:
			fmt.Println("fix the data:", err)
			return
		case sap.Unknown, sap.Duplicate:
			// SAP may have posted it: look before sending again.
			m, ferr := client.FindSupplierInvoice(ctx, inv.CompanyCode, reference)
			switch {
			case ferr != nil:
				fmt.Println("cannot read SAP, try again later without posting:", ferr)
				return
			case m.Found:
				fmt.Printf("already posted as %s/%s\n", m.Document.Number, m.Document.FiscalYear)
				return
			}
			// Not there: posting again is safe.
		}
	}
	// Output:
	// retry in 1s: sap: post supplier invoice: transient (HTTP 400): MC/601 Object requested is currently locked by user BATCH_01
	// posted 5105600001/2026 in attempt 2
}

// exampleSAP answers the first post with a lock error and the second with
// the created invoice.
func exampleSAP() *httptest.Server {
	posts := 0
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Header().Set("X-CSRF-Token", "token")
			return
		}
		if posts++; posts == 1 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"MC/601","message":{"lang":"en","value":"Object requested is currently locked by user BATCH_01"}}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"d":{"SupplierInvoice":"5105600001","FiscalYear":"2026","CompanyCode":"1010"}}`)
	}))
}

// CategoryOf works on wrapped errors too, and treats anything it does not
// know (context cancellation included) as "outcome unknown".
func ExampleCategoryOf() {
	err := fmt.Errorf("job 42: %w", &sap.Error{Category: sap.Transient, Op: "post journal entry", RetryAfter: 30 * time.Second})
	fmt.Println(sap.CategoryOf(err), sap.RetryAfterOf(err))
	fmt.Println(sap.CategoryOf(context.Canceled))
	fmt.Println(sap.CategoryOf(errors.New("something else")))
	// Output:
	// transient 30s
	// outcome_unknown
	// outcome_unknown
}
