package envelope

import (
	"fmt"
	"strconv"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/tracing"
)

// Kafka headers of every message on the events topic. The value is the
// public envelope (eventstore.Envelope); the headers let routers and tools
// filter without decoding it.
const (
	HeaderType       = "type"
	HeaderEventID    = "event_id"
	HeaderStreamType = "stream_type"
	HeaderVersion    = "version"
	HeaderPosition   = "position"
	// HeaderCorrelationID is set only when the event has one. It is not
	// signed: the signed envelope carries it too (metadata.correlation_id).
	HeaderCorrelationID = "correlation_id"
	// HeaderTraceParent and HeaderTraceState are the W3C trace context the
	// event recorded at append, set only when it has one, for tracing-aware
	// tools. Not signed either: copies of metadata.traceparent and
	// metadata.tracestate, which consumers read from the signed envelope.
	HeaderTraceParent = tracing.HeaderTraceParent
	HeaderTraceState  = tracing.HeaderTraceState
	// HeaderSignature is "v1:<key id>:<MAC>" (doc.go).
	HeaderSignature = "signature"
)

// signedHeaders are the headers the MAC covers, in the order of the input.
var signedHeaders = [...]string{HeaderType, HeaderEventID, HeaderStreamType, HeaderVersion, HeaderPosition}

// Message is e as the relay publishes it, before it is signed: the stream
// id as key (one order, one partition), the JSON envelope as value, the
// headers above, and the time it was recorded.
func Message(e eventstore.RecordedEvent) (kafkago.Message, error) {
	v, err := eventstore.MarshalEnvelope(e)
	if err != nil {
		return kafkago.Message{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	h := make([]kafkago.Header, 0, len(signedHeaders)+4)
	h = append(h,
		kafkago.Header{Key: HeaderType, Value: []byte(e.Type)},
		kafkago.Header{Key: HeaderEventID, Value: []byte(e.ID.String())},
		kafkago.Header{Key: HeaderStreamType, Value: []byte(e.StreamType)},
		kafkago.Header{Key: HeaderVersion, Value: strconv.AppendInt(nil, e.Version, 10)},
		kafkago.Header{Key: HeaderPosition, Value: strconv.AppendInt(nil, e.Position, 10)},
	)
	if e.Metadata.CorrelationID != "" {
		h = append(h, kafkago.Header{Key: HeaderCorrelationID, Value: []byte(e.Metadata.CorrelationID)})
	}
	if e.Metadata.TraceParent != "" {
		h = append(h, kafkago.Header{Key: HeaderTraceParent, Value: []byte(e.Metadata.TraceParent)})
	}
	if e.Metadata.TraceState != "" {
		h = append(h, kafkago.Header{Key: HeaderTraceState, Value: []byte(e.Metadata.TraceState)})
	}
	return kafkago.Message{Key: []byte(e.StreamID.String()), Value: v, Headers: h, Time: e.RecordedAt}, nil
}
