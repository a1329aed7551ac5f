package eventstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Envelope is the public JSON form of a recorded event: the Kafka message
// value, an export line and an item of the history API. It is a contract with
// analysts' tools; fields are only ever added.
type Envelope struct {
	EventID       string          `json:"event_id"`
	StreamID      string          `json:"stream_id"`
	StreamType    string          `json:"stream_type"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      Metadata        `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Position      int64           `json:"position"`
}

// ToEnvelope converts a recorded event to its public form.
func (e RecordedEvent) ToEnvelope() Envelope {
	return Envelope{
		EventID:       e.ID.String(),
		StreamID:      e.StreamID.String(),
		StreamType:    e.StreamType,
		Version:       e.Version,
		Type:          e.Type,
		SchemaVersion: e.SchemaVersion,
		Data:          e.Data,
		Metadata:      e.Metadata,
		RecordedAt:    e.RecordedAt.UTC(),
		Position:      e.Position,
	}
}

// MarshalEnvelope encodes e as its public JSON envelope.
func MarshalEnvelope(e RecordedEvent) ([]byte, error) { return json.Marshal(e.ToEnvelope()) }

// UnmarshalEnvelope decodes a public JSON envelope.
func UnmarshalEnvelope(b []byte) (RecordedEvent, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return RecordedEvent{}, fmt.Errorf("decode envelope: %w", err)
	}
	id, err := ulid.ParseStrict(env.EventID)
	if err != nil {
		return RecordedEvent{}, fmt.Errorf("envelope event_id: %w", err)
	}
	sid, err := ulid.ParseStrict(env.StreamID)
	if err != nil {
		return RecordedEvent{}, fmt.Errorf("envelope stream_id: %w", err)
	}
	if env.Version < 1 || env.Type == "" || env.Position < 1 {
		return RecordedEvent{}, fmt.Errorf("envelope %s: version, type and position are required", env.EventID)
	}
	return RecordedEvent{
		ID: id, StreamID: sid, StreamType: env.StreamType, Version: env.Version, Type: env.Type,
		SchemaVersion: env.SchemaVersion, Data: env.Data, Metadata: env.Metadata,
		RecordedAt: env.RecordedAt, Position: env.Position,
	}, nil
}
