package sap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustPool(t *testing.T) *x509.CertPool {
	t.Helper()
	return x509.NewCertPool()
}

// writeCAFile writes the certificate of a TLS test server as a PEM bundle.
func writeCAFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, append([]byte("# the company's own CA\n"), block...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// SAP served with a certificate that only the CA bundle vouches for: without
// the bundle nothing is sent (the handshake fails before any request), with
// it the client posts, and the token endpoint is trusted by the same bundle.
func TestCustomCABundle(t *testing.T) {
	f := newFakeSAP(t)
	f.invoice = created("5105600001", "2026", "1010")
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	ctx := context.Background()

	untrusting := f.client(func(cfg *Config) { cfg.BaseURL = srv.URL })
	_, err := untrusting.PostSupplierInvoice(ctx, testInvoice())
	assertError(t, err, Transient, 0, "")
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if !errors.As(err, &unknownCA) && !errors.As(err, &verify) {
		t.Errorf("err = %v, want a certificate verification error", err)
	}
	if fetches, _, posts := f.counts(); fetches+posts != 0 {
		t.Fatalf("SAP was reached %d times without a trusted certificate", fetches+posts)
	}

	pool, err := LoadCAFile(writeCAFile(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	trusting := f.client(func(cfg *Config) { cfg.BaseURL, cfg.RootCAs = srv.URL, pool })
	if doc, err := trusting.PostSupplierInvoice(ctx, testInvoice()); err != nil || doc.Number != "5105600001" {
		t.Fatalf("with the bundle: %v, %v", doc, err)
	}

	// OAuth: the token endpoint is served under the same CA.
	ts := &tokenServer{expiresIn: 3600, live: map[string]bool{}}
	ts.srv = httptest.NewTLSServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	f.tokens = ts
	oauth := f.client(func(cfg *Config) {
		cfg.BaseURL, cfg.RootCAs, cfg.Password = srv.URL, pool, ""
		cfg.OAuth = &OAuth{TokenURL: ts.srv.URL + "/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret}
	})
	if _, err := oauth.PostSupplierInvoice(ctx, testInvoice()); err != nil {
		t.Fatalf("OAuth with the bundle: %v", err)
	}
	if ts.count() != 1 {
		t.Errorf("%d token requests", ts.count())
	}
}

func TestLoadCAFileRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "not-a-bundle.pem")
	if err := os.WriteFile(noPEM, []byte("-----BEGIN NOTHING-----\nabc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.pem"), noPEM} {
		if _, err := LoadCAFile(path); err == nil {
			t.Errorf("LoadCAFile(%s) succeeded", path)
		} else if !strings.Contains(err.Error(), "CA bundle") {
			t.Errorf("LoadCAFile(%s): %v", path, err)
		}
	}
}
