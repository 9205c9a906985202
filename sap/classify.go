package sap

import (
	"net/http"
	"regexp"
	"strings"
)

// rule is one row of the classification table. A row matches a failed call
// when one of its codes or texts matches an error message SAP returned, or,
// for status-only rows, when the HTTP status is one of statuses.
type rule struct {
	category Category
	reason   string           // why the row has its category; documentation only
	codes    []string         // SAP message class/number, "MC/601"
	texts    []*regexp.Regexp // patterns of the message text
	statuses []int
	// retryAfter restricts a status row to answers that carried Retry-After.
	retryAfter bool
}

// rules is THE classification table. classify reads it in three passes:
//
//  1. A 500, 502 or 504 is an unknown outcome whatever the body says: the
//     server or a gateway failed, and SAP may have committed first. A
//     look-up is cheap; a resend after a wrong guess is a duplicate posting.
//  2. SAP message codes, then message texts: SAP reports locks and data
//     errors with the same HTTP status (400 for OData, 200 with severity 3
//     for SOAP). A code is exact, so every row's codes are tried before any
//     row's texts; among codes, locks win, for a lock stops SAP before it
//     posts anything and a retry is safe.
//  3. The HTTP status.
var rules = []rule{
	{
		category: Transient,
		reason:   "object locked by another user or process; nothing was posted",
		codes:    []string{"VL/045", "56/393", "M3/897", "ME/006", "V1/042", "MC/601"},
		// The client asks for English texts (sap-language), so these match
		// SAP's own wording; the German ones catch a system that ignores
		// the request and answers in its logon language.
		texts: []*regexp.Regexp{
			regexp.MustCompile(`(?i)\blocked by\b`),
			regexp.MustCompile(`(?i)\bbeing processed by\b`),
			regexp.MustCompile(`(?i)\bblocked by user\b`),
			regexp.MustCompile(`(?i)\bgesperrt\b`),
			regexp.MustCompile(`(?i)\bwird gerade .*bearbeitet\b`),
		},
	},
	{
		// VF/016: SAP bills an order only once; the billing document that
		// bills it may be this posting's, from a call whose answer was lost.
		// "Already reversed" likewise: the reversal SAP holds may be this
		// reversal's own; the look-up of the original tells.
		category: Duplicate,
		reason:   "SAP already holds an equal document; it may be this posting's own, from a call whose answer was lost",
		codes:    []string{"M8/108", "VF/016"},
		texts: []*regexp.Regexp{
			regexp.MustCompile(`(?i)\balready (been )?(entered|exists?|posted|created|billed|invoiced|reversed|cancell?ed)\b`),
		},
	},
	{
		category: Permanent,
		// M7/021: the stock does not cover a goods issue; M7/053: the
		// posting period of inventory management is closed.
		reason: "SAP rejected the business data (period closed, unbalanced, unknown master data, stock short)",
		codes: []string{
			"F5/201", "F5/702", "F5/703", "F5/102", "F5/104", "F5/507", "F5/165",
			"FH/004", "M7/502", "KI/248", "M7/021", "M7/053",
		},
	},
	{
		category: Transient,
		reason:   "throttled; the request was refused, not processed",
		statuses: []int{http.StatusTooManyRequests},
	},
	{
		// 408: the server gave up waiting for the request itself; 423: the
		// resource is locked; 425: the server will not risk processing a
		// replayable request yet. None of them processed anything.
		category: Transient,
		reason:   "refused before processing (request timeout, locked, too early)",
		statuses: []int{http.StatusRequestTimeout, http.StatusLocked, http.StatusTooEarly},
	},
	{
		// A 503 that says when to come back is a refusal. Without
		// Retry-After it may come from a gateway that lost the backend
		// mid-request, and falls through to unknown.
		category:   Transient,
		reason:     "temporarily unavailable, asked to come back later; the request was refused, not processed",
		statuses:   []int{http.StatusServiceUnavailable},
		retryAfter: true,
	},
	{
		category: Permanent,
		reason:   "authentication or authorisation failed",
		statuses: []int{http.StatusUnauthorized, http.StatusForbidden},
	},
	{
		category: Unknown,
		reason:   "server or gateway failed; SAP may have committed before the failure",
		statuses: []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout},
	},
}

// classify returns the category of a failed call that got an answer with the
// given HTTP status, Retry-After (present or not) and SAP messages. Only messages of severity error (or
// without a severity) count: warnings in the same answer say nothing about
// why it failed.
func classify(status int, retryAfter bool, msgs []Message) Category {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return Unknown
	}
	for _, match := range []func(rule, Message) bool{rule.matchesCode, rule.matchesText} {
		for _, r := range rules {
			for _, m := range msgs {
				if isFailureSeverity(m.Severity) && match(r, m) {
					return r.category
				}
			}
		}
	}
	for _, r := range rules {
		for _, s := range r.statuses {
			if s == status && (retryAfter || !r.retryAfter) {
				return r.category
			}
		}
	}
	switch {
	case status >= 200 && status < 300:
		// Only business failures reported in a 2xx body (SOAP log with
		// severity 3) get here: SAP processed the request and refused it.
		return Permanent
	case status >= 400 && status < 500:
		return Permanent
	default:
		// Other 5xx, unexpected 1xx/3xx: we cannot tell what happened.
		return Unknown
	}
}

// CodeCategory is what SAP's message code alone says: the category of the
// first row that lists it, or 0. A worker uses it for a code that came with an
// answer classified by its status instead (a permanent data error inside an
// HTTP 500 is an unknown outcome until a look-up proves nothing was posted).
func CodeCategory(code string) Category {
	m := Message{Code: code}
	for _, r := range rules {
		if r.matchesCode(m) {
			return r.category
		}
	}
	return 0
}

func (r rule) matchesCode(m Message) bool {
	for _, c := range r.codes {
		if strings.EqualFold(m.Code, c) {
			return true
		}
	}
	return false
}

func (r rule) matchesText(m Message) bool {
	for _, t := range r.texts {
		if t.MatchString(m.Text) {
			return true
		}
	}
	return false
}

func isFailureSeverity(s string) bool {
	switch strings.ToLower(s) {
	case "", "error", "abort", "fatal":
		return true
	}
	return false
}
