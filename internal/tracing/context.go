package tracing

import (
	"context"
	"crypto/rand"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C trace-context header names, used on HTTP requests and as Kafka
// headers.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// MaxHeaderLen bounds what Extract reads of either header. A version-00
// traceparent is 55 characters; 512 is the tracestate length the W3C
// recommendation asks every vendor to propagate. Whatever goes into an
// event's metadata stays there: the store is append-only.
const MaxHeaderLen = 512

var w3c = propagation.TraceContext{}

// Extract returns ctx with the remote span context of the request headers
// h. A traceparent that is malformed, longer than MaxHeaderLen or sent more
// than once is ignored (the request starts a trace of its own); a
// tracestate that is invalid or longer than MaxHeaderLen is dropped and the
// traceparent kept, as the recommendation says.
func Extract(ctx context.Context, h http.Header) context.Context {
	parents := h.Values(HeaderTraceParent)
	if len(parents) != 1 || len(parents[0]) > MaxHeaderLen {
		return ctx
	}
	c := propagation.MapCarrier{HeaderTraceParent: parents[0]}
	if states := h.Values(HeaderTraceState); len(states) == 1 && len(states[0]) <= MaxHeaderLen {
		c[HeaderTraceState] = states[0]
	}
	return w3c.Extract(ctx, c)
}

// Start starts a span named name with t, and makes sure the returned context
// carries a valid span context: the no-op provider starts none for a
// request without a parent, so Start gives it a fresh unsampled root (a
// random trace id and span id), which is what the event metadata, the Kafka
// headers, the frames and the logs then name.
func Start(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := t.Start(ctx, name, opts...)
	if span.SpanContext().IsValid() {
		return ctx, span
	}
	var cfg trace.SpanContextConfig
	_, _ = rand.Read(cfg.TraceID[:]) // crypto/rand.Read never fails (Go 1.24)
	_, _ = rand.Read(cfg.SpanID[:])
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
	return ctx, trace.SpanFromContext(ctx)
}

// Header returns the traceparent and tracestate of ctx's span context, or
// two empty strings when it has none: the values an event's metadata
// records. They are formatted from the parsed span context, never copied
// from a request.
func Header(ctx context.Context) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	return c[HeaderTraceParent], c[HeaderTraceState]
}

// Parse returns the span context a stored traceparent and tracestate
// describe (remote), or an invalid one when traceparent is empty or does
// not parse (events appended before tracing have none).
func Parse(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{HeaderTraceParent: traceparent}
	if tracestate != "" {
		c[HeaderTraceState] = tracestate
	}
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), c))
}

// TraceID is the trace id a stored traceparent names, in lower-case hex, or
// "" without a valid one.
func TraceID(traceparent string) string {
	if sc := Parse(traceparent, ""); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
