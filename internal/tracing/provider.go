package tracing

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The exporters New knows, by their OTEL_TRACES_EXPORTER names.
const (
	ExporterNone = "none"
	ExporterOTLP = "otlp"
)

// ServiceName is the service.name of orderflow's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const ServiceName = "orderflow"

// instrumentation names orderflow's tracer.
const instrumentation = "github.com/orderflow/orderflow"

// Provider is the process's tracer provider: the no-op one, or the SDK's
// exporting to OTLP.
type Provider struct {
	provider trace.TracerProvider
	shutdown func(context.Context) error
}

// Off is the no-op provider: no span is recorded, ids still flow (Start).
func Off() *Provider {
	return &Provider{provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
}

// New returns the provider of exporter (ExporterNone or ExporterOTLP). The
// OTLP exporter speaks HTTP/protobuf and is configured by the standard
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// _HEADERS, _TIMEOUT, _COMPRESSION); the sampler by OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (default: parentbased_always_on); the resource by
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, over attrs. Spans are
// batched; an export that fails is logged (log) and dropped, never retried
// into the request path.
func New(ctx context.Context, exporter string, log *slog.Logger, attrs ...attribute.KeyValue) (*Provider, error) {
	switch exporter {
	case ExporterNone:
		return Off(), nil
	case ExporterOTLP:
	default:
		return nil, fmt.Errorf("trace exporter %q: want %s or %s", exporter, ExporterNone, ExporterOTLP)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(append([]attribute.KeyValue{attribute.String("service.name", ServiceName)}, attrs...)...),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// The SDK reports export failures to OpenTelemetry's one global error
	// handler; this process has one provider, so it is ours.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: exporting spans failed", "err", err) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{provider: tp, shutdown: tp.Shutdown}, nil
}

// Tracer is orderflow's tracer of this provider.
func (p *Provider) Tracer() trace.Tracer { return p.provider.Tracer(instrumentation) }

// Shutdown flushes the spans not yet exported (bounded by ctx) and stops
// the exporter.
func (p *Provider) Shutdown(ctx context.Context) error { return p.shutdown(ctx) }
