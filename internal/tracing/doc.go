// Package tracing is orderflow's W3C trace context and OpenTelemetry
// plumbing: one trace from the HTTP request that caused an event to the
// read models and dashboards it reaches.
//
// # What is recorded where
//
// The api role continues the caller's traceparent (or starts a trace when
// there is none, or it is malformed, oversized or sent twice: Extract) and
// every event the request appends stores the request span's traceparent
// and tracestate in its metadata (eventstore.Metadata). That is the record:
// it is written for every event, sampled or not and exporter on or off, so
// an event found in the store, on the topic or on a dashboard names its
// trace whatever the tracing backend kept. From there:
//
//   - the relay copies them into the Kafka headers traceparent and
//     tracestate, unsigned copies of the signed envelope's metadata (as
//     correlation_id is: streams/envelope);
//   - the projector opens one span per batch and projection, linked to the
//     trace context of each event of the batch (OpenTelemetry's messaging
//     convention for batch processing: a batch has many parents), read from
//     the signed envelope, never from the headers;
//   - the hub puts the event's trace id into every event frame, live and
//     recovered (trace_id).
//
// Nothing downstream trusts a header: the stored value is re-formatted from
// the parsed span context, so what a client sent is never echoed as it came.
//
// # Off by default, at no cost
//
// Without OTEL_TRACES_EXPORTER=otlp the provider is OpenTelemetry's no-op
// one: no span is recorded or exported. The ids still flow: a request that
// continues a trace keeps the caller's span context, and one that starts
// a trace gets a fresh, unsampled root (Start), so the event metadata, the
// headers, the frames and the logs carry a trace id either way. With the
// exporter on, spans are batched to OTLP over HTTP, configured by the
// standard OTEL_* variables (endpoint, headers, timeout, sampler, service
// name and resource attributes). The batch processor's queue is bounded
// (OTEL_BSP_MAX_QUEUE_SIZE, 2048 spans) and drops new spans when full: a
// slow or unreachable collector never makes a request wait.
//
// # Logs
//
// LogHandler adds trace_id and span_id to every record logged with a
// context that carries a span context.
package tracing
