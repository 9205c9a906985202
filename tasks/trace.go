package tasks

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// traceContext is the W3C Trace Context propagator: a posting's trace
// travels as a traceparent header from the MCP request, in the job's
// record, to the SAP request.
var traceContext = propagation.TraceContext{}

// TraceParentOf returns the W3C traceparent of the span in ctx, or "" when
// ctx carries none.
func TraceParentOf(ctx context.Context) string {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// ContextWithTraceParent returns ctx continuing the trace a traceparent
// names (as a remote parent); ctx itself when it names none or is invalid.
func ContextWithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// InjectTraceParent sets the traceparent header of an outgoing request to
// the span in ctx.
func InjectTraceParent(ctx context.Context, header propagation.HeaderCarrier) {
	traceContext.Inject(ctx, header)
}

// ExtractTraceParent returns ctx continuing the trace of an incoming
// request's traceparent header, if it has a valid one.
func ExtractTraceParent(ctx context.Context, header propagation.HeaderCarrier) context.Context {
	return traceContext.Extract(ctx, header)
}
