package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newTracing builds the process's tracer provider from the standard
// OpenTelemetry variables. Spans are always made, so that a posting's trace
// ID goes from the MCP request through the job to SAP and into the logs;
// they are exported only when asked for: OTEL_TRACES_EXPORTER=otlp (OTLP
// over HTTP, configured by the OTEL_EXPORTER_OTLP_* variables; implied by
// an OTLP endpoint) or console (stderr); none is the default. Sampling
// follows OTEL_TRACES_SAMPLER (default: the caller's decision, else all).
// shutdown flushes the spans still buffered.
func newTracing(ctx context.Context, service string) (_ trace.TracerProvider, shutdown func(), _ error) {
	exporter := os.Getenv("OTEL_TRACES_EXPORTER")
	if exporter == "" && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	var opts []sdktrace.TracerProviderOption
	switch exporter {
	case "", "none":
	case "otlp":
		for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
			if p := os.Getenv(name); p != "" && p != "http/protobuf" {
				return nil, nil, fmt.Errorf("configuration: %s=%q: sapq exports OTLP over HTTP only (http/protobuf)", name, p)
			}
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("configuration: OTEL_EXPORTER_OTLP_*: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	case "console":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	default:
		return nil, nil, fmt.Errorf("configuration: OTEL_TRACES_EXPORTER=%q: none, otlp or console", exporter)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "sapq-"+service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tp.Shutdown(ctx)
	}, nil
}

// traceHandler adds the trace and span IDs of the record's context to
// every record that does not name its trace itself (audit records do).
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = a.Key == "trace_id"
			return !named
		})
		if !named {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
