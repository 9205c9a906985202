package sap

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Category tells a worker what it may do after a failed SAP call.
type Category int

const (
	// Transient means nothing was posted: retry with backoff.
	Transient Category = iota + 1
	// Permanent means SAP rejected the request: fix the data, do not retry.
	Permanent
	// Unknown means the request may have been processed: look the document
	// up before sending it again.
	Unknown
	// Duplicate means SAP refused the request because it already holds an
	// equal document (M8/108, "already exists"). That document may be the
	// one an earlier call of the same posting created (its answer lost, or
	// committed after the client gave up): look it up by the posting's
	// reference before concluding anything.
	Duplicate
)

// String returns the name used in logs and metrics labels.
func (c Category) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Unknown:
		return "outcome_unknown"
	case Duplicate:
		return "duplicate"
	default:
		return "Category(" + strconv.Itoa(int(c)) + ")"
	}
}

// Error is the error every Client method returns on failure.
type Error struct {
	Category   Category
	Op         string // "post supplier invoice", "find journal entry", "fetch csrf token", ...
	HTTPStatus int    // 0 when no response was received
	Code       string // SAP message class/number such as "F5/201", or ""
	Message    string // SAP's message text, or a description of the transport failure
	Messages   []Message
	RetryAfter time.Duration // from Retry-After, 0 when absent
	Err        error         // underlying transport error, if any
}

// Error renders e as "sap: <op>: <category> (HTTP <status>): <code> <message>: <cause>".
// It never contains credentials: the client scrubs them before building e.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sap: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Category.String())
	if e.HTTPStatus != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		b.WriteString(")")
	}
	if e.Code != "" || e.Message != "" {
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(e.Code + " " + e.Message))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport error, so errors.Is(err,
// context.DeadlineExceeded) works on timeouts.
func (e *Error) Unwrap() error { return e.Err }

// CategoryOf returns what a worker may do after err. A *Error anywhere in the
// chain gives its Category; anything else, including context cancellation and
// deadlines, is Unknown because nobody can tell whether SAP saw the request.
// CategoryOf(nil) is 0.
func CategoryOf(err error) Category {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) && e.Category != 0 {
		return e.Category
	}
	// context.Canceled, context.DeadlineExceeded and every other error: the
	// request may have reached SAP.
	return Unknown
}

// RetryAfterOf returns the delay SAP (or the gateway in front of it) asked for
// with Retry-After, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After value, either delta-seconds or an
// HTTP-date (RFC 9110 §10.2.3). Unparseable, negative and past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		switch {
		case secs <= 0:
			return 0
		case secs > maxSecs:
			return time.Duration(maxSecs) * time.Second
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
