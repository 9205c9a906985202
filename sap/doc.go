// Package sap is sapq's client for posting business documents into SAP S/4HANA
// and for looking them up again.
//
// sapq's promise is that every document reaches SAP exactly once. The client
// cannot make SAP idempotent, but it can tell the worker precisely what it
// knows after each call, and that is what the package is built around: every
// failure is an *Error whose Category says
//
//   - Transient: SAP did not post anything (lock, throttling, request never
//     sent); retry with backoff.
//   - Permanent: SAP rejected the data (or the credentials); retrying cannot
//     help, a human has to fix it.
//   - Unknown: the request may have been processed (timeout, connection lost,
//     5xx from a gateway); look the document up with FindSupplierInvoice or
//     FindJournalEntry before sending it again.
//
// Classification is by SAP message class/number and text first and by HTTP
// status second (see classify.go), because SAP reports locks and validation
// errors with the same status (400 for OData, 200 for SOAP).
//
// Supplier invoices go through OData V2 (API_SUPPLIERINVOICE_PROCESS_SRV, deep
// insert with CSRF token and session cookie); journal entries go through the
// synchronous SOAP service JournalEntryCreateRequestConfirmation_In, whose
// MessageHeader/UUID lets SAP itself drop repeats. One Client is safe for use
// by many goroutines.
//
// A Client logs on with Basic authentication or OAuth 2.0 client credentials
// (Config.OAuth: the token is cached, renewed before it expires and once
// more when SAP refuses it), and may trust a company's own CA (LoadCAFile).
// Destinations holds one Client per SAP system and routes postings among
// them (tasks.Routes), from a destinations file or a single system.
package sap
