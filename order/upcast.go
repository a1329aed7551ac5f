package order

import (
	"encoding/json"
	"fmt"
)

// UpcastFunc turns the JSON of one schema version into the JSON of the next.
// A step is pure and touches only what changed between the two versions, so
// a chain of steps brings any stored version to the current one.
type UpcastFunc func(data json.RawMessage) (json.RawMessage, error)

type upcastKey struct {
	eventType   string
	fromVersion int
}

func (r *Registry) addUpcast(eventType string, fromVersion int, step UpcastFunc) {
	k := upcastKey{eventType, fromVersion}
	if _, dup := r.upcasts[k]; dup {
		panic(fmt.Errorf("order: upcast %s v%d: %w", eventType, fromVersion, errDuplicateRegistration))
	}
	r.upcasts[k] = step
}

// Upcast returns data converted from schemaVersion to the current version of
// eventType, applying the registered steps v→v+1 in turn, and that version.
// Data already at the current version is returned as it is. A version that is
// newer than this code knows is an error, not a guess: it was written by a
// newer deployment, and folding it as an older shape could lose fields.
func (r *Registry) Upcast(eventType string, schemaVersion int, data json.RawMessage) (json.RawMessage, int, error) {
	c, ok := r.codecs[eventType]
	if !ok {
		return nil, 0, fmt.Errorf("upcast %q: %w", eventType, ErrUnknownEvent)
	}
	if schemaVersion < 1 || schemaVersion > c.version {
		return nil, 0, fmt.Errorf("upcast %s v%d (current v%d): %w", eventType, schemaVersion, c.version, ErrSchemaVersion)
	}
	for v := schemaVersion; v < c.version; v++ {
		step, ok := r.upcasts[upcastKey{eventType, v}]
		if !ok {
			return nil, 0, fmt.Errorf("upcast %s v%d→v%d: no step registered: %w", eventType, v, v+1, ErrSchemaVersion)
		}
		next, err := step(data)
		if err != nil {
			return nil, 0, fmt.Errorf("upcast %s v%d→v%d: %w", eventType, v, v+1, err)
		}
		data = next
	}
	return data, c.version, nil
}

// upcastItemAddedV1 renames price_minor (schema v1) to unit_price_minor (v2).
// The value is moved as raw JSON, so no number is re-parsed or rounded.
func upcastItemAddedV1(data json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: ItemAdded v1 is not a JSON object", ErrInvalidEventData)
	}
	price, ok := fields["price_minor"]
	if !ok {
		return nil, fmt.Errorf("%w: ItemAdded v1 has no price_minor", ErrInvalidEventData)
	}
	if _, clash := fields["unit_price_minor"]; clash {
		return nil, fmt.Errorf("%w: ItemAdded v1 already has unit_price_minor", ErrInvalidEventData)
	}
	delete(fields, "price_minor")
	fields["unit_price_minor"] = price
	return json.Marshal(fields)
}

// upcastOrderCreatedV1 gives an order created before personal data existed
// (schema v1) none: email and shipping_address "".
func upcastOrderCreatedV1(data json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: OrderCreated v1 is not a JSON object", ErrInvalidEventData)
	}
	for _, f := range PersonalFields {
		if _, clash := fields[f]; clash {
			return nil, fmt.Errorf("%w: OrderCreated v1 already has %s", ErrInvalidEventData, f)
		}
		fields[f] = json.RawMessage(`""`)
	}
	return json.Marshal(fields)
}
