package sap

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// DescribePost shows what Post sends, byte for byte (but for the time a
// SOAP message was created), without sending it.
func TestDescribePostIsWhatPostSends(t *testing.T) {
	f := newFakeSAP(t)
	type received struct {
		method, url string
		header      http.Header
		body        []byte
	}
	var mu sync.Mutex
	var got []received
	keep := func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		got = append(got, received{r.Method, r.URL.String(), r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	f.invoice, f.soap = keep, keep
	client := f.client()
	created := regexp.MustCompile(`<CreationDateTime>[^<]*</CreationDateTime>`)
	for _, p := range []tasks.Posting{taskstest.SupplierInvoice("INV-DESCRIBE"), taskstest.JournalEntry("je-describe")} {
		t.Run(string(p.Kind()), func(t *testing.T) {
			req, err := NewRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			send := Send{Reference: "SQDESCRIBE234567", MessageUUID: "0195f3c2-7d41-5a3e-9c55-3f9c0e51a2b7"}
			described, err := DescribePost(context.Background(), Config{BaseURL: f.srv.URL, User: testUser}, req, send)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if len(got) != 0 {
				t.Fatalf("describing sent %d posts to SAP", len(got))
			}
			mu.Unlock()
			client.Post(context.Background(), req, send) // answered 503: what matters is what arrived
			mu.Lock()
			defer func() { got = nil; mu.Unlock() }()
			if len(got) != 1 {
				t.Fatalf("SAP received %d posts, want 1", len(got))
			}
			sent := got[0]
			if described.Method != sent.method || !strings.HasSuffix(described.URL, sent.url) || !strings.HasPrefix(described.URL, f.srv.URL) {
				t.Fatalf("described %s %s, sent %s %s", described.Method, described.URL, sent.method, sent.url)
			}
			for name, vals := range described.Header {
				if strings.Join(vals, ",") != strings.Join(sent.header.Values(name), ",") {
					t.Errorf("header %s: described %q, sent %q", name, vals, sent.header.Values(name))
				}
			}
			for _, secret := range []string{"Authorization", "X-Csrf-Token", "Cookie"} {
				if described.Header.Get(secret) != "" {
					t.Errorf("the description carries %s", secret)
				}
			}
			norm := func(b []byte) string { return created.ReplaceAllString(string(b), "<CreationDateTime/>") }
			if norm(described.Body) != norm(sent.body) {
				t.Fatalf("described body:\n%s\nsent body:\n%s", described.Body, sent.body)
			}
			if !strings.Contains(string(described.Body), send.Reference) {
				t.Fatalf("the described body lacks the reference:\n%s", described.Body)
			}
		})
	}
}

// A posting the client would refuse before sending is refused when
// described, too; and nothing reaches SAP.
func TestDescribePostRefusesWhatPostRefuses(t *testing.T) {
	f := newFakeSAP(t)
	inv := taskstest.SupplierInvoice("INV-DESCRIBE-BAD")
	req, err := NewRequest(inv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DescribePost(context.Background(), Config{BaseURL: f.srv.URL, User: testUser}, req, Send{Reference: strings.Repeat("X", 19)})
	if CategoryOf(err) != Permanent || !strings.Contains(err.Error(), "AssignmentReference") {
		t.Fatalf("DescribePost = %v, want the client's refusal of a reference too long", err)
	}
	if fetches, _, posts := f.counts(); fetches+posts != 0 {
		t.Fatalf("SAP saw %d fetches and %d posts", fetches, posts)
	}
}
