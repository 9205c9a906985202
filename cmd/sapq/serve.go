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

// requireToken guards an endpoint for scripts (sapq dev's simulator
// control beyond loopback) with a bearer token.
func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if found && bearer != "" && subtle.ConstantTimeCompare([]byte(bearer), []byte(token)) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sapq"`)
		http.Error(w, "unauthorized: send Authorization: Bearer <token>", http.StatusUnauthorized)
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
