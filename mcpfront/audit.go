package mcpfront

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Decisions recorded in the audit log.
const (
	decisionAccepted = "accepted" // a submission was recorded
	decisionReplayed = "replayed" // a submission returned the job its key already had
	// decisionAwaitingApproval: a submission was recorded to wait for an
	// operator's approval; the rule says why.
	decisionAwaitingApproval = "awaiting_approval"
	decisionApproved         = "approved" // an operator approved a posting
	decisionRejected         = "rejected" // an operator rejected a posting
	decisionDryRun           = "dry_run"  // a submission with dry_run was checked; nothing recorded
	decisionOK               = "ok"       // a read or a cancellation succeeded
	decisionRefused          = "refused"  // refused: invalid, policy, quota, scope, conflict, not found
	decisionError            = "error"    // sapq failed (internal)
)

// auditNote is what a tool handler tells the audit log about one call. It
// names the job and the posting's essentials, never the payload, and never
// a token (the caller is named).
type auditNote struct {
	jobID, kind, key, companyCode, amount, currency string
	decision                                        string
	rule                                            string
}

type auditKey struct{}

// noteOf returns the call's audit note; a throwaway one outside a call.
func noteOf(ctx context.Context) *auditNote {
	if n, ok := ctx.Value(auditKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{}
}

// auditMiddleware writes one audit record per tool call that reaches a
// handler: who, which tool, which job, the decision and the rule, with the
// trace ID of the request.
func (s *Server) auditMiddleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		note := &auditNote{}
		// The tool call's span is a child of the HTTP request's; stdio and
		// in-process calls have none and start a trace. Its context goes
		// with the posting into the ledger, and so to the worker and SAP.
		ctx, span := s.tracer.Start(ctx, "tools/call "+req.Params.Name, trace.WithAttributes(attribute.String("mcp.tool", req.Params.Name)))
		defer span.End()
		res, err := next(context.WithValue(ctx, auditKey{}, note), req)
		if note.decision == "" {
			switch {
			case err != nil || res == nil:
				note.decision, note.rule = decisionError, "protocol_error"
			case res.IsError:
				note.decision, note.rule = decisionRefused, errorCodeOf(res)
				if note.rule == codeInternal {
					note.decision = decisionError
				}
			default:
				note.decision = decisionOK
			}
		}
		if note.decision == decisionError {
			span.SetStatus(codes.Error, note.rule)
		}
		if kind, ok := s.submitTools[req.Params.Name]; ok {
			s.metrics.submitted(kind, note)
		}
		s.writeAudit(ctx, req.Params.Name, note)
		return res, err
	}
}

// auditProtocolError records tool calls that mcp-go refused before any
// handler ran: an unknown tool, or one the caller may not use (the tool
// filter answers such calls as if the tool did not exist).
func (s *Server) auditProtocolError(ctx context.Context, _ any, method mcp.MCPMethod, message any, err error) {
	if method != mcp.MethodToolsCall {
		return
	}
	tool := ""
	if req, ok := message.(*mcp.CallToolRequest); ok {
		tool = req.Params.Name
	}
	rule := "protocol_error"
	if errors.Is(err, server.ErrToolNotFound) {
		rule = "tool_not_available"
	}
	s.writeAudit(ctx, truncate(tool, 64), &auditNote{decision: decisionRefused, rule: rule})
}

func (s *Server) writeAudit(ctx context.Context, tool string, n *auditNote) {
	if s.audit == nil {
		return
	}
	attrs := []slog.Attr{slog.String("tool", tool)}
	if c, ok := CallerFromContext(ctx); ok {
		attrs = append(attrs, slog.String("caller", c.Name), slog.String("role", string(c.Role)), slog.String("via", c.Via))
	} else {
		attrs = append(attrs, slog.String("caller", ""))
	}
	attrs = append(attrs, slog.String("decision", n.decision))
	if n.rule != "" {
		attrs = append(attrs, slog.String("rule", n.rule))
	}
	for _, kv := range [][2]string{{"job_id", n.jobID}, {"kind", n.kind}, {"idempotency_key", n.key}, {"company_code", n.companyCode}, {"amount", n.amount}, {"currency", n.currency}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	attrs = append(attrs, slog.String("trace_id", traceIDFrom(ctx)))
	s.audit.LogAttrs(ctx, slog.LevelInfo, "tool call", attrs...)
}

// traceIDFrom is the trace ID of the span in ctx: the request's, whose
// parent is the client's traceparent when it sent one, or the tool call's.
func traceIDFrom(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
