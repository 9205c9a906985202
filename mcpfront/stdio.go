package mcpfront

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves one MCP client over newline-delimited JSON-RPC on in and
// out until in ends or ctx is cancelled. Every call runs as caller, which is
// fixed for the process (a stdio server is started by its one user).
//
// mcp-go reads whole lines without bound, so ServeStdio reads them first:
// a message longer than MaxRequestBytes is discarded as it streams in,
// answered with a JSON-RPC error, and the session carries on.
//
// mcp-go keeps stdio session state in a package-level variable, so at most
// one ServeStdio may run in a process at a time.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer, caller string) error {
	if !validCaller(caller) {
		return errors.New("mcpfront: ServeStdio needs a caller name of 1-64 letters, digits or . _ @ -")
	}
	// A caller named in the callers file brings its role and policy; any
	// other is an agent without limits (the person who started the process
	// is its one user). A reload of the callers file applies to stdio too.
	callerOf := func() *Caller {
		if c, ok := s.callers.Load().ByName(caller); ok {
			cc := *c
			cc.Via = "stdio"
			return &cc
		}
		return &Caller{Name: caller, Role: RoleAgent, Scopes: RoleAgent.Scopes(), Via: "stdio"}
	}
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.pumpLines(in, pw, w)) }()

	ss := server.NewStdioServer(s.mcp)
	ss.SetContextFunc(func(ctx context.Context) context.Context { return WithCaller(ctx, callerOf()) })
	ss.SetErrorLogger(slog.NewLogLogger(s.log.Handler(), slog.LevelError))
	err := ss.Listen(ctx, pr, w)
	// Unblock the pump if Listen ended first (ctx cancelled). A pump blocked
	// reading in stays so until in yields or closes, like any stdio reader.
	pr.CloseWithError(io.ErrClosedPipe)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// pumpLines copies complete lines from in to dst, replacing every line
// longer than the limit by a JSON-RPC error written to errOut. It returns
// nil at the end of in.
func (s *Server) pumpLines(in io.Reader, dst io.Writer, errOut io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	var line []byte
	oversized := false
	for {
		frag, err := br.ReadSlice('\n')
		if !oversized && int64(len(line)+len(frag)) > s.maxBytes+2 { // +2: a CRLF is not content
			oversized, line = true, line[:0]
		}
		if !oversized {
			line = append(line, frag...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if len(line) > 0 && !oversized {
				// A last message without a newline: terminate it for mcp-go.
				if _, werr := dst.Write(append(line, '\n')); werr != nil {
					return werr
				}
			}
			if oversized {
				s.stdioTooLarge(errOut)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case oversized:
			s.stdioTooLarge(errOut)
			oversized = false
		case s.checkMessage(line) != "":
			s.stdioRefused(errOut, s.checkMessage(line))
		default:
			if _, err := dst.Write(line); err != nil {
				return err
			}
		}
		line = line[:0]
	}
}

func (s *Server) stdioTooLarge(w io.Writer) {
	s.metrics.rejectedTooLarge()
	s.log.Warn("stdio message too large; discarded", "limit", s.maxBytes)
	// The id is unknown: the message was discarded unread.
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"message exceeds the limit of %d bytes and was discarded; nothing was recorded"}}`+"\n", s.maxBytes)
}

func (s *Server) stdioRefused(w io.Writer, msg string) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32600, "message": msg}})
	w.Write(append(body, '\n'))
}

// lockedWriter serialises whole-message writes from mcp-go and from the
// line pump onto one stream. mcp-go writes each message with one Write call.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
