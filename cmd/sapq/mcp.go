package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/sapq/sapq/mcpfront"
)

func runMCP(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	var e envDefaults
	var lf ledgerFlags
	lf.register(fs, &e)
	transport := fs.String("transport", env("MCP_TRANSPORT", "http"), "http (Streamable HTTP at /mcp) or stdio (env SAPQ_MCP_TRANSPORT)")
	addr := fs.String("addr", env("MCP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env SAPQ_MCP_ADDR)")
	caller := fs.String("caller", env("MCP_CALLER", "local"), "caller identity for stdio, whose jobs it sees (env SAPQ_MCP_CALLER)")
	if err := e.parse(fs, args, lf.checks()...); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	rdb, l, err := lf.open(ctx, log, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := newRegistry()
	opts := mcpfront.Options{Ledger: l, Logger: log, Metrics: reg}
	if *transport == "stdio" {
		srv, err := mcpfront.New(opts)
		if err != nil {
			return err
		}
		return srv.ServeStdio(ctx, os.Stdin, stdout, *caller)
	}
	if *transport != "http" {
		return fmt.Errorf("--transport must be http or stdio, got %q", *transport)
	}
	if opts.Tokens, err = loadTokens(); err != nil {
		return err
	}
	if opts.Tokens.Len() == 0 {
		return fmt.Errorf("no MCP tokens: set SAPQ_MCP_TOKENS=caller:token,... or SAPQ_MCP_TOKENS_FILE")
	}
	srv, err := mcpfront.New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var ready readiness
	ready.add("redis", pingRedis(rdb))
	mux := opsMux(reg, &ready)
	mux.Handle("/mcp", srv.HTTPHandler())
	log.Info("MCP server listening", "url", "http://"+ln.Addr().String()+"/mcp")
	return serve(ctx, ln, mux, func() { srv.Close(context.Background()) })
}

// loadTokens reads the MCP bearer tokens from SAPQ_MCP_TOKENS_FILE or
// SAPQ_MCP_TOKENS.
func loadTokens() (mcpfront.TokenSet, error) {
	if path := env("MCP_TOKENS_FILE", ""); path != "" {
		return mcpfront.LoadTokenFile(path)
	}
	return mcpfront.ParseTokens(env("MCP_TOKENS", ""))
}
