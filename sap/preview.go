package sap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Call is one HTTP request to SAP as the client builds it, described
// rather than sent: what an operator is shown before postings are sent
// again.
type Call struct {
	Method string
	// URL is the whole URL, sap-client and sap-language included.
	URL string
	// Header holds the request's own headers; credentials, the CSRF token
	// and cookies are left out.
	Header http.Header
	Body   []byte
}

// DescribePost returns the call Client.Post would make for r and s to the
// SAP system cfg names, and sends nothing. The call is built by the code
// that posts (the kind's mapping, its defaults, validation and encoding),
// which hands it to a transport that keeps it instead of sending it; that
// transport also answers the CSRF token fetch an OData post begins with.
// Only cfg's BaseURL, Client, Language and User are used: no credential is
// needed, and none appears in the Call. A posting the client refuses
// before sending (a field too long for SAP) returns that refusal.
func DescribePost(ctx context.Context, cfg Config, r Request, s Send) (Call, error) {
	rec := &recordingTransport{}
	c, err := New(Config{
		BaseURL: cfg.BaseURL, Client: cfg.Client, Language: cfg.Language, User: cfg.User,
		HTTPClient: &http.Client{Transport: rec},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return Call{}, err
	}
	_, err = c.Post(ctx, r, s)
	if rec.call != nil {
		return *rec.call, nil
	}
	if err == nil {
		err = errors.New("sap: the post built no request")
	}
	return Call{}, err
}

// errDescribed ends a described post where a real one would go out.
var errDescribed = errors.New("sap: described, not sent")

// recordingTransport keeps the first request that would change something
// in SAP and sends nothing.
type recordingTransport struct{ call *Call }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.Method == http.MethodGet && strings.EqualFold(req.Header.Get("X-Csrf-Token"), "Fetch") {
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"X-Csrf-Token": {"described"}},
			Body:       io.NopCloser(strings.NewReader("")),
			Request:    req,
		}, nil
	}
	if t.call != nil {
		return nil, errDescribed
	}
	var body []byte
	if req.Body != nil {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(req.Body); err != nil {
			return nil, err
		}
		body = buf.Bytes()
	}
	h := req.Header.Clone()
	for _, name := range []string{"Authorization", "X-Csrf-Token", "Cookie"} {
		h.Del(name)
	}
	t.call = &Call{Method: req.Method, URL: req.URL.String(), Header: h, Body: body}
	return nil, errDescribed
}
