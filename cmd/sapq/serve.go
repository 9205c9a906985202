package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serve runs h on ln until ctx ends, then shuts down gracefully. onShutdown
// functions run as the shutdown begins: long-lived streams (MCP's SSE) end
// there, or the server would wait for them.
func serve(ctx context.Context, ln net.Listener, h http.Handler, onShutdown ...func()) error {
	return serveWith(ctx, ln, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, onShutdown...)
}

// serveWith is serve with a server configured by the caller (timeouts).
func serveWith(ctx context.Context, ln net.Listener, srv *http.Server, onShutdown ...func()) error {
	for _, f := range onShutdown {
		srv.RegisterOnShutdown(f)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// isLoopback reports whether a listener is reachable from this host only.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

const uiCookie = "sapq_ui"

// requireToken guards a browser-facing handler (the Asynq UI, which has no
// authentication of its own). It accepts the token as a bearer header, as a
// cookie, or once as ?token= on a page, which sets the cookie and redirects
// to the same URL without it so the token does not linger in the address bar.
func requireToken(token string, next http.Handler) http.Handler {
	ok := func(given string) bool {
		return given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(token)) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query().Get("token"); q != "" && ok(q) {
			http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			u := *r.URL
			qs := u.Query()
			qs.Del("token")
			u.RawQuery = qs.Encode()
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(bearer) {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(uiCookie); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sapq-ui"`)
		http.Error(w, "unauthorized: open the UI with ?token=<token> or send Authorization: Bearer <token>", http.StatusUnauthorized)
	})
}

// opsMux serves /metrics, /healthz and /readyz, the endpoints every
// process that listens has.
func opsMux(reg *prometheus.Registry, ready *readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", ready)
	return mux
}
