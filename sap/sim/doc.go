// Package sim simulates the two SAP S/4HANA services sapq posts to, closely enough
// that the real client in package sap runs against it unchanged. It is the server
// side of the wire: it shares no code with the client.
//
// Served (see the path constants): the OData V2 service API_SUPPLIERINVOICE_PROCESS_SRV
// (deep insert and reads of A_SupplierInvoice, reads of A_SupplierInvoiceItemGLAcct),
// the read-only OData V2 service API_GLACCOUNTLINEITEM (GLAccountLineItem) and the
// SOAP 1.1 service JournalEntryCreateRequestConfirmation_In. For sales: the OData V2
// service API_SALES_ORDER_SRV (deep insert and reads of A_SalesOrder, reads of
// A_SalesOrderItem; creates are not de-duplicated, as in SAP), the OData V4 service
// api_billingdocument (action CreateFromSDDocument, V4 errors and sap-messages) and
// the OData V2 service API_BILLING_DOCUMENT_SRV (reads of A_BillingDocument and
// A_BillingDocumentItem, function import Cancel); see billingdocument.go for what
// billing models and simplifies. For inventory: the OData V2 service
// API_MATERIAL_DOCUMENT_SRV (deep insert and reads of A_MaterialDocumentHeader,
// reads of A_MaterialDocumentItem, function import Cancel), with stock per
// material, plant and storage location; see materialdocument.go.
//
// Control endpoints for tests and operators live under /sim/ and need no
// authentication:
//
//	GET  /sim/faults        current faults (JSON, see Faults)
//	POST /sim/faults        replace the faults; unknown fields are rejected; answers the new faults
//	GET  /sim/ledger        {"documents":[{"kind","document","fiscal_year","company_code","reference","posted_at"}]}
//	GET  /sim/stats         counters (see Stats)
//	POST /sim/csrf/expire   invalidate every CSRF token issued so far
//
// The same is available to Go tests as methods of Server.
//
// Faithful to S/4HANA:
//   - Basic authentication of a communication user, the sap-client parameter, and a
//     401 with SAP's realm on failure.
//   - The CSRF dance: a token fetched with "X-CSRF-Token: Fetch" is bound to the
//     SAP_SESSIONID_<SID>_<client> session cookie; a modifying OData request without
//     both gets 403 "X-CSRF-Token: Required". SOAP uses no token.
//   - OData V2 JSON: {"d":...} envelopes, /Date(ms)/ dates, decimals as strings,
//     __metadata and __deferred, 201 with Location and a sap-message header, and
//     errors as {"error":{code,message,innererror{errordetails}}} carrying real T100
//     message classes and numbers (F5/201, F5/702, F5/104, F5/507, F5/165, KI/248,
//     M8/108, MC/601).
//   - SOAP business errors as HTTP 200 with a severity 3 log, AccountingDocument
//     0000000000 and TypeIDs such as 609(RW) and 201(F5); malformed requests as a
//     SOAP Client fault with HTTP 500. Only the body's root element is namespace
//     qualified; qualified children are refused, as SAP's deserializer does.
//   - A SOAP request MessageHeader/UUID is processed once: a repeat is answered
//     with the original response and posts nothing.
//   - Document numbers from number ranges (supplier invoices 5105600001 per fiscal
//     year, journal entries 0100000001 per company code and fiscal year), fiscal
//     year = calendar year of the posting date, and posting periods open only for
//     the current and the previous month.
//   - SAP's duplicate invoice check (company code, supplier, supplier's invoice
//     number, gross amount, document date).
//   - SAP's enqueue: a posting locks the accounts it books on (the invoicing
//     party; a journal entry's customers and suppliers) while it is processed.
//     A posting that meets such a lock is counted (Stats.LockCollisions) and,
//     with Options.EnqueueLocks, refused with MC/601 as SAP does.
//
// Simplified:
//   - Master data is a small in-memory set (see MasterData); no tax is calculated
//     (supplier invoice items must add up to the gross amount); no currency
//     translation; only G/L items are supported (no PO-referenced invoice items, no
//     DebtorItem/CreditorItem in journal entries).
//   - $filter supports only eq comparisons joined by and; $orderby is ignored and
//     answers are always JSON ($format=json is accepted, $metadata is a stub).
//   - Only responses of SOAP requests that posted something are kept for replay: a
//     rejected request rolled back and can be sent again with the same UUID.
//   - Payload properties the simulator does not model are ignored.
//
// Faults (see Faults) can be injected into posting requests to exercise a client's
// retry and reconciliation logic: 503 before posting, lock errors, 429 throttling,
// latency, and "ambiguous" outcomes where the document is posted but the answer is
// lost (connection closed, or 504 from a gateway).
package sim
