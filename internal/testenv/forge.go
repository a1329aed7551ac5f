package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
)

// Forge is the event a producer to the topic would write to forge a real
// order's history: valid, with the order's next version and the store's
// next position, and of type typ with data. It is not in the store.
// envelope.Message makes it the message the relay would have published;
// the test decides how it is signed.
func Forge(t testing.TB, store *eventstore.Store, stream eventstore.Stream, typ string, data any) eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	version, err := store.StreamVersion(ctx, stream)
	if err != nil {
		t.Fatalf("testenv: forge: %v", err)
	}
	head, err := store.HeadPosition(ctx)
	if err != nil {
		t.Fatalf("testenv: forge: %v", err)
	}
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("testenv: forge: %v", err)
	}
	return eventstore.RecordedEvent{
		ID: ulid.Make(), StreamID: stream.ID, StreamType: stream.Type, Version: version + 1,
		Type: typ, SchemaVersion: 1, Data: b, Metadata: eventstore.Metadata{Actor: "forger"},
		RecordedAt: time.Now().UTC(), Position: head + 1,
	}
}
