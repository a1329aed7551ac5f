package eventstore

import (
	"encoding/json"
	"time"

	"github.com/oklog/ulid/v2"
)

// Stream names a stream: its ULID and a type (for example "order").
type Stream struct {
	ID   ulid.ULID
	Type string
}

// Metadata travels with every event. It is stored as JSON and copied into
// Kafka headers and logs; it never holds secrets.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	Actor         string `json:"actor,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the span that
	// appended the event (the request's), recorded whether or not the trace
	// is sampled, so that the event names its trace wherever it goes.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// EventData is an event to append. ID is chosen by the caller so that a retry
// of the same append is recognised and stores nothing twice.
type EventData struct {
	ID            ulid.ULID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID            ulid.ULID
	StreamID      ulid.ULID
	StreamType    string
	Version       int64
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	Position      int64
}

// AppendResult says where an append landed: the versions of its first and
// last event, and the global position of its last event.
type AppendResult struct {
	FromVersion int64
	ToVersion   int64
	Position    int64
	// Replayed is true when every event ID was already stored by an earlier
	// identical append; nothing was written this time.
	Replayed bool
}
