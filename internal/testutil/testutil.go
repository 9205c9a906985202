// Package testutil holds the small pieces that tests of several packages
// share: a buffer safe for concurrent writers and a transport that adds a
// bearer token.
package testutil

import (
	"bytes"
	"net/http"
	"sync"
)

// SyncBuffer collects output written from several goroutines (a logger, a
// command's stdout) while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bearer is an http.RoundTripper that sends Token as a bearer token, the
// way an MCP client configured with a token does.
type Bearer struct {
	Token string
	Next  http.RoundTripper
}

func (b Bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.Token)
	return b.Next.RoundTrip(r)
}
