package sap

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// csrfCache holds one CSRF token per OData service root. SAP binds a token
// to the session cookie in the Client's jar, so tokens and cookies live and
// die together; all goroutines sharing the Client share both.
type csrfCache struct {
	mu      sync.Mutex
	entries map[string]*csrfEntry
}

type csrfEntry struct {
	// lock is held (a value sent) while the token is read or fetched, so
	// that goroutines arriving together wait for one fetch instead of each
	// starting a session of its own. A channel rather than a mutex lets a
	// waiter give up when its context ends.
	lock  chan struct{}
	token string
}

func (c *csrfCache) entry(root string) *csrfEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]*csrfEntry)
	}
	e, ok := c.entries[root]
	if !ok {
		e = &csrfEntry{lock: make(chan struct{}, 1)}
		c.entries[root] = e
	}
	return e
}

// csrfToken returns the cached token of the service root, fetching one when
// there is none or when the cached one is stale (SAP rejected it). Passing the
// rejected token rather than a "force" flag means that of many goroutines
// rejected at once only the first refetches; the others get its new token.
func (c *Client) csrfToken(ctx context.Context, root, stale string) (string, error) {
	e := c.csrf.entry(root)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return "", c.scrub(&Error{Category: Transient, Op: opFetchCSRF,
			Message: "canceled while waiting for a CSRF token; nothing was sent", Err: ctx.Err()})
	}
	defer func() { <-e.lock }()

	if e.token != "" && e.token != stale {
		return e.token, nil
	}
	e.token = ""
	tok, err := c.fetchCSRF(ctx, root)
	if err != nil {
		return "", err
	}
	e.token = tok
	return tok, nil
}

const opFetchCSRF = "fetch csrf token"

// fetchCSRF asks SAP for a token with a GET of the service root. Its errors
// are never Unknown: the fetch changes nothing in SAP and the post it
// prepares has not been sent, so the worker may simply retry.
func (c *Client) fetchCSRF(ctx context.Context, root string) (string, error) {
	r, err := c.do(ctx, call{
		op:     opFetchCSRF,
		method: http.MethodGet,
		path:   root,
		header: http.Header{"X-Csrf-Token": {"Fetch"}, "Accept": {"application/json"}},
	})
	if err != nil {
		return "", notSent(err)
	}
	if r.status < 200 || r.status > 299 {
		return "", notSent(c.httpError(opFetchCSRF, r))
	}
	tok := r.header.Get("X-Csrf-Token")
	if tok == "" || strings.EqualFold(tok, "Required") {
		return "", c.scrub(&Error{Category: Transient, Op: opFetchCSRF, HTTPStatus: r.status,
			Message: "SAP returned no CSRF token"})
	}
	return tok, nil
}

// notSent downgrades Unknown to Transient for errors that happened before the
// post itself was sent, and says so: a transport error's own message
// ("SAP may have received the request") is about the token fetch, not the
// posting.
func notSent(err error) error {
	if e, ok := err.(*Error); ok && e.Category == Unknown {
		e.Category = Transient
		if e.HTTPStatus == 0 {
			e.Message = "could not fetch a CSRF token; the posting itself was not sent"
		}
	}
	return err
}

// csrfRequired reports whether a 403 is SAP rejecting the CSRF token (as
// opposed to a missing authorisation).
func csrfRequired(h http.Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get("X-Csrf-Token")), "Required")
}

// postOData sends a modifying OData request with a CSRF token and returns
// SAP's 2xx reply; any other status is SAP's error, classified (httpError).
// When SAP answers 403 with "X-CSRF-Token: Required" (token or session
// expired) it fetches a new token once and resends: a 403 is a refusal, so
// nothing was posted by the first attempt. A second 403 is an error.
func (c *Client) postOData(ctx context.Context, op, root, path string, query url.Values, body []byte) (*reply, error) {
	tok, err := c.csrfToken(ctx, root, "")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		r, err := c.do(ctx, call{
			op:     op,
			method: http.MethodPost,
			path:   path,
			query:  query,
			header: http.Header{
				"Content-Type": {"application/json"},
				"Accept":       {"application/json"},
				"X-Csrf-Token": {tok},
			},
			body: body,
		})
		if err != nil {
			return nil, err
		}
		if r.status != http.StatusForbidden || !csrfRequired(r.header) || attempt > 0 {
			if r.status < 200 || r.status > 299 {
				return nil, c.httpError(op, r)
			}
			return r, nil
		}
		if tok, err = c.csrfToken(ctx, root, tok); err != nil {
			return nil, err
		}
	}
}
