package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/orderflow/orderflow/internal/tracing"
)

// startTracing returns serve's tracer provider: the no-op one unless
// OTEL_TRACES_EXPORTER=otlp (internal/tracing). Spans name the roles of the
// process that made them.
func startTracing(ctx context.Context, c serveConfig, log *slog.Logger) (*tracing.Provider, error) {
	tp, err := tracing.New(ctx, c.traceExporter, log, attribute.String("orderflow.roles", c.roles))
	if err != nil {
		return nil, err
	}
	if c.traceExporter != tracing.ExporterNone {
		log.Info("tracing: exporting spans", "exporter", c.traceExporter)
	}
	return tp, nil
}

// tracingFlushTimeout bounds the export of the spans still batched at
// shutdown.
const tracingFlushTimeout = 5 * time.Second

// stopTracing flushes the spans still batched, within a bound of its own:
// ctx has ended by the time serve returns.
func stopTracing(ctx context.Context, tp *tracing.Provider, log *slog.Logger) {
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	if err := tp.Shutdown(flush); err != nil {
		log.Warn("tracing: flushing spans at shutdown", "err", err)
	}
}
