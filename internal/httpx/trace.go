package httpx

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/internal/tracing"
)

// Trace continues the caller's W3C trace context (traceparent, tracestate;
// tracing.Extract ignores a malformed or oversized one and the request
// starts a trace of its own) in a server span around next, so that what the
// request appends records the span's trace context and what it logs carries
// its ids. It goes outside Middleware, whose request line then names the
// trace; Metrics names the span by its route and status once the mux has
// matched one.
//
// Why not otelhttp: it would wrap the response writer a second time (the
// status recorder is here already) and measure requests again in metrics
// of its own, beside http_requests_total; what is left is one Start call.
func Trace(t trace.Tracer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracing.Start(tracing.Extract(r.Context(), r.Header), t, "HTTP "+MethodLabel(r.Method),
			trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// annotateSpan gives a recording server span its route and status (a 5xx
// marks it failed). Unsampled and no-op spans cost nothing here.
func annotateSpan(r *http.Request, route, method string, status int) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	if route != "unmatched" {
		span.SetName(route) // the pattern, method included: "POST /v1/orders"
	}
	span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
