package projector

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/internal/tracing"
)

// batchSpan opens the span of one batch of one projection, linked to the
// trace context each of its events recorded at append: a batch has many
// parents, so it links them (OpenTelemetry's messaging convention) rather
// than choosing one. The links come from the signed envelopes, never from
// the unsigned traceparent headers, and unsampled contexts are linked too:
// the event names its trace whether or not the caller kept it. The SDK
// keeps OTEL_SPAN_LINK_COUNT_LIMIT links (128 by default) and counts the
// rest as dropped. Log lines of the batch carry the span's ids
// (tracing.LogHandler).
func (c *consumer) batchSpan(ctx context.Context) (context.Context, trace.Span) {
	ctx, span := tracing.Start(ctx, c.tracer, "project "+c.p.Name(), trace.WithSpanKind(trace.SpanKindConsumer))
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(attribute.String("orderflow.projection", c.p.Name()),
		attribute.Int("messaging.batch.message_count", len(c.ds)))
	for _, d := range c.ds {
		if sc := tracing.Parse(d.Event.Metadata.TraceParent, d.Event.Metadata.TraceState); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				attribute.String("orderflow.event_id", d.Event.ID.String()),
				attribute.Int64("orderflow.version", d.Event.Version),
			}})
		}
	}
	return ctx, span
}
