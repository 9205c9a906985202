package sap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sapq/sapq/sap/sim"
)

// TestTransportFailures covers answers that never (fully) arrive. What
// matters is whether the request can have reached SAP.
func TestTransportFailures(t *testing.T) {
	t.Run("hangs past timeout is unknown", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			<-r.Context().Done() // until the client gives up
		}
		// The timeout applies to the token fetch too: long enough for that
		// on a loaded machine, so only the POST can run out of time.
		_, err := f.client(func(cfg *Config) { cfg.Timeout = time.Second }).
			PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Unknown, 0, "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
		}
	})

	t.Run("connection closed without response is unknown", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}
		_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Unknown, 0, "")
	})

	t.Run("response broken off mid-body is unknown", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"d":{"SupplierInvoice":"51056`)
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
		_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Unknown, http.StatusCreated, "")
	})

	t.Run("caller cancels after sending is unknown", func(t *testing.T) {
		f := newFakeSAP(t)
		received := make(chan struct{})
		f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			close(received)
			<-r.Context().Done()
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-received; cancel() }()
		_, err := f.client().PostSupplierInvoice(ctx, testInvoice())
		assertError(t, err, Unknown, 0, "")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", err)
		}
	})

	t.Run("oversized response is unknown", func(t *testing.T) {
		f := newFakeSAP(t)
		f.invoice = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			w.WriteHeader(http.StatusCreated)
			w.Write(bytes.Repeat([]byte(" "), maxBodyBytes+10))
		}
		_, err := f.client().PostSupplierInvoice(context.Background(), testInvoice())
		assertError(t, err, Unknown, http.StatusCreated, "")
	})

	t.Run("connection refused is transient", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		c, err := New(Config{BaseURL: url, User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, err = c.PostSupplierInvoice(ctx, testInvoice())
		assertError(t, err, Transient, 0, "")
		_, err = c.PostJournalEntry(ctx, testJournalEntry())
		assertError(t, err, Transient, 0, "")
		_, err = c.FindJournalEntry(ctx, "1010", "SQ-000042")
		assertError(t, err, Transient, 0, "")
	})

	t.Run("a call cancelled before it left is transient", func(t *testing.T) {
		f := newFakeSAP(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.client().PostJournalEntry(ctx, testJournalEntry())
		assertError(t, err, Transient, 0, "")
		if _, _, posts := f.counts(); posts != 0 {
			t.Errorf("%d posts reached SAP", posts)
		}
	})

	t.Run("a token fetch that hangs past the timeout is transient and says the post was not sent", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Timeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PostSupplierInvoice(context.Background(), testInvoice())
		e := assertError(t, err, Transient, 0, "")
		if e.Op != opFetchCSRF || !strings.Contains(e.Message, "was not sent") || strings.Contains(e.Message, "may have received") {
			t.Errorf("Op %q, message %q", e.Op, e.Message)
		}
	})

	t.Run("token fetch failure is transient: the post was not sent", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gateway down", http.StatusBadGateway)
		}))
		defer srv.Close()
		c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PostSupplierInvoice(context.Background(), testInvoice())
		e := assertError(t, err, Transient, http.StatusBadGateway, "")
		if e.Op != opFetchCSRF {
			t.Errorf("Op = %q", e.Op)
		}
	})
}

func TestRequestLogging(t *testing.T) {
	f := newFakeSAP(t)
	f.invoice = created("5105600001", "2026", "1010")
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := f.client(func(cfg *Config) { cfg.Logger = logger })
	if _, err := c.PostSupplierInvoice(context.Background(), testInvoice()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"method=GET", "method=POST", "status=201", "path=/sap/opu/odata/sap/API_SUPPLIERINVOICE_PROCESS_SRV/A_SupplierInvoice", "duration="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{testPassword, "Authorization", "Basic ", "token-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

// roundTripFunc is a transport other than net/http's: it never reports
// getting a connection.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Without a transport that reports connections, a failure cannot be proved
// to have happened before sending, so it is an unknown outcome.
func TestUntracedTransportFailureIsUnknown(t *testing.T) {
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("stream reset by peer")
	})}
	c, err := New(Config{BaseURL: "http://sap.invalid", User: testUser, Password: testPassword, HTTPClient: hc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PostJournalEntry(context.Background(), testJournalEntry())
	assertError(t, err, Unknown, 0, "")
}

// TestConnectionsAreKept: calls made side by side reuse their connections
// instead of closing all but net/http's default two per host and dialing
// again (with TLS, a handshake per call): then each round closes eight of
// its ten connections and dials eight more (42 dials for 5 rounds). The
// transport puts a connection back in its pool after the caller has read
// the answer, so a round that starts at once may still dial one or two
// more; no connection may be closed, though.
func TestConnectionsAreKept(t *testing.T) {
	s := sim.New(sim.Options{User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
	var dialed, closed atomic.Int64
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			dialed.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, User: testUser, Password: testPassword, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const callers, rounds = 10, 5
	for round := range rounds {
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				ref := fmt.Sprintf("KEPT%d-%d", round, i)
				if _, err := c.FindJournalEntry(context.Background(), "1010", ref); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := closed.Load(); n > 0 {
		t.Errorf("%d of %d connections closed during %d rounds of %d calls side by side, want none", n, dialed.Load(), rounds, callers)
	}
	if n := dialed.Load(); n > 2*callers {
		t.Errorf("%d connections dialed for %d rounds of %d calls side by side, want at most %d", n, rounds, callers, 2*callers)
	}
}
