package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/tracing"
)

func TestTraceContinuesTheCallersTraceAndIgnoresAMalformedOne(t *testing.T) {
	t.Parallel()
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, traceparent string
		continued         bool
	}{
		{"a valid traceparent is continued", "00-" + callerTrace + "-00f067aa0ba902b7-01", true},
		{"a malformed traceparent starts a new trace", "00-" + callerTrace + "-00f067aa0ba902b7-zz", false},
		{"an oversized traceparent starts a new trace", "00-" + callerTrace + "-00f067aa0ba902b7-01" + strings.Repeat("-ab", 200), false},
		{"no traceparent starts a new trace", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spans := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			var logs bytes.Buffer
			log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			var recorded string
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
				recorded, _ = tracing.Header(r.Context())
				w.WriteHeader(http.StatusCreated)
			})
			measured, err := httpx.Metrics(prometheus.NewRegistry(), mux)
			if err != nil {
				t.Fatal(err)
			}
			h := httpx.Trace(tp.Tracer("test"), httpx.Middleware(log, measured))
			req := httptest.NewRequest(http.MethodPost, "/v1/orders", nil)
			if tt.traceparent != "" {
				req.Header.Set(tracing.HeaderTraceParent, tt.traceparent)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)

			got := spans.GetSpans()
			if len(got) != 1 {
				t.Fatalf("%d spans, want 1", len(got))
			}
			span := got[0]
			if span.Name != "POST /v1/orders" || span.SpanKind != trace.SpanKindServer {
				t.Errorf("span %q kind %v, want the route's server span", span.Name, span.SpanKind)
			}
			trace := span.SpanContext.TraceID().String()
			if continued := trace == callerTrace; continued != tt.continued {
				t.Errorf("trace %s continued the caller's: %v, want %v", trace, continued, tt.continued)
			}
			if tracing.TraceID(recorded) != trace || !strings.Contains(recorded, span.SpanContext.SpanID().String()) {
				t.Errorf("the handler records %q, want the server span %s/%s", recorded, trace, span.SpanContext.SpanID())
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("request log %q: %v", logs.String(), err)
			}
			if line["trace_id"] != trace {
				t.Errorf("request log line %s, want trace_id %s", logs.String(), trace)
			}
			if strings.Contains(logs.String(), "zz") || strings.Contains(logs.String(), "-ab-ab") {
				t.Errorf("the client's traceparent reached the log: %s", logs.String())
			}
		})
	}
}

// BenchmarkTrace is the cost Trace adds to a request, with the exporter off
// (the no-op provider: the ids alone) and on (the SDK, spans batched to an
// exporter that drops them), for a request with and without a traceparent.
func BenchmarkTrace(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tracing.Header(r.Context()) })
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name   string
		tracer trace.Tracer
	}{{"off", noop.NewTracerProvider().Tracer("")}, {"on", sdk.Tracer("")}} {
		for _, parent := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
			b.Run(fmt.Sprintf("exporter %s/traceparent %t", tc.name, parent != ""), func(b *testing.B) {
				h := httpx.Trace(tc.tracer, ok)
				req := httptest.NewRequest(http.MethodPost, "/v1/orders", nil)
				if parent != "" {
					req.Header.Set(tracing.HeaderTraceParent, parent)
				}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(nil, req)
				}
			})
		}
	}
}
