package order

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Every reader of stored events goes through one of the two functions here:
// Apply for those that fold (the command side's load, the projections live
// and rebuilt, time travel), Current for those that show events (history,
// export). They differ in one rule only, for an event type this code does
// not know (written by a newer deployment, or by a writer that is not
// orderflow): a fold fails, because it cannot know what the event does to
// the order and a skipped fact would corrupt every state after it; a reader
// that shows events passes it through as stored, because showing a fact it
// cannot interpret is still true.

// Apply decodes a stored event (upcast to its current schema, strictly) and
// applies it to s, returning the decoded event. An unknown type, a newer
// schema version or data that does not decode is an error, and s is left
// unchanged.
func (r *Registry) Apply(s *State, eventType string, schemaVersion int, data json.RawMessage) (Event, error) {
	e, err := r.Decode(eventType, schemaVersion, data)
	if err != nil {
		return nil, err
	}
	s.Apply(e)
	return e, nil
}

// Current returns a stored event's data in the current schema of its type,
// and that version: upcast, decoded strictly and encoded again, so every
// reader sees one shape whatever version was stored. An unknown type is
// returned as stored (see above); a known type that does not decode is an
// error.
func (r *Registry) Current(eventType string, schemaVersion int, data json.RawMessage) (int, json.RawMessage, error) {
	e, err := r.Decode(eventType, schemaVersion, data)
	if errors.Is(err, ErrUnknownEvent) {
		return schemaVersion, data, nil
	}
	if err != nil {
		return 0, nil, err
	}
	_, version, current, err := r.Encode(e)
	if err != nil {
		return 0, nil, fmt.Errorf("re-encode %s: %w", eventType, err)
	}
	return version, current, nil
}
