package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Sentinel errors of the codec, for callers that branch (a projector parks an
// event of an unknown type instead of retrying it forever).
var (
	ErrUnknownEvent          = errors.New("unknown event type")
	ErrSchemaVersion         = errors.New("unsupported schema version")
	ErrInvalidEventData      = errors.New("invalid event data")
	errDuplicateRegistration = errors.New("duplicate registration")
)

// Registry maps stable event names to codecs, current schema versions and
// upcast steps. Build it once with NewRegistry (in main) and pass it down; it
// is read-only afterwards and safe for concurrent use.
type Registry struct {
	codecs  map[string]codec
	upcasts map[upcastKey]UpcastFunc
}

type codec struct {
	version int
	decode  func(data []byte, fields map[string]bool) (Event, error)
	// fields is the exact set of JSON keys of the current schema, taken
	// once at registration from the encoding of the zero value.
	fields map[string]bool
	encode func(e Event) (json.RawMessage, bool, error)
}

// NewRegistry returns a registry of every order event at its current schema
// version, with the upcast steps from older versions.
func NewRegistry() *Registry {
	r := &Registry{codecs: map[string]codec{}, upcasts: map[upcastKey]UpcastFunc{}}
	register[OrderCreated](r, 2)
	register[ItemAdded](r, 2)
	register[ItemRemoved](r, 1)
	register[OrderPlaced](r, 1)
	register[PaymentRecorded](r, 1)
	register[OrderShipped](r, 1)
	register[OrderDelivered](r, 1)
	register[OrderCancelled](r, 1)
	register[RefundRecorded](r, 1)
	register[ShippingAddressChanged](r, 1)
	register[PersonalDataErased](r, 1)
	r.addUpcast(NameItemAdded, 1, upcastItemAddedV1)
	r.addUpcast(NameOrderCreated, 1, upcastOrderCreatedV1)
	return r
}

// register adds the codec of T. The name comes from T's EventName method (a
// constant), not from the Go type name.
func register[T Event](r *Registry, version int) {
	var zero T
	name := zero.EventName()
	if _, dup := r.codecs[name]; dup {
		panic(fmt.Errorf("order: register %s: %w", name, errDuplicateRegistration))
	}
	canonical, err := json.Marshal(zero)
	var keys map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(canonical, &keys)
	}
	if err != nil {
		panic(fmt.Errorf("order: register %s: %w", name, err))
	}
	fields := make(map[string]bool, len(keys))
	for k := range keys {
		fields[k] = true
	}
	r.codecs[name] = codec{version: version, decode: decodeAs[T], encode: encodeAs[T], fields: fields}
}

// SchemaVersion returns the current schema version of eventType.
func (r *Registry) SchemaVersion(eventType string) (int, bool) {
	c, ok := r.codecs[eventType]
	return c.version, ok
}

// Encode returns the stored form of e (a value or a pointer): its name,
// current schema version and JSON. It refuses an event whose name is registered to another Go type, so a
// stray type can never be stored under an order event's name.
func (r *Registry) Encode(e Event) (name string, schemaVersion int, data json.RawMessage, err error) {
	if e = deref(e); e == nil {
		return "", 0, nil, fmt.Errorf("encode nil event: %w", ErrUnknownEvent)
	}
	name = e.EventName()
	c, ok := r.codecs[name]
	if !ok {
		return "", 0, nil, fmt.Errorf("encode %s: %w", name, ErrUnknownEvent)
	}
	data, matched, err := c.encode(e)
	if !matched {
		return "", 0, nil, fmt.Errorf("encode %s: Go type %T is not the registered type: %w", name, e, ErrUnknownEvent)
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return name, c.version, data, nil
}

// Decode upcasts data from schemaVersion to the current version and decodes
// it strictly into the event value (OrderCreated, not *OrderCreated).
func (r *Registry) Decode(eventType string, schemaVersion int, data json.RawMessage) (Event, error) {
	up, _, err := r.Upcast(eventType, schemaVersion, data)
	if err != nil {
		return nil, err
	}
	c := r.codecs[eventType]
	e, err := c.decode(up, c.fields)
	if err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, err)
	}
	return e, nil
}

func encodeAs[T Event](e Event) (json.RawMessage, bool, error) {
	v, ok := e.(T)
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(v)
	return b, true, err
}

func decodeAs[T Event](data []byte, fields map[string]bool) (Event, error) {
	var v T
	if err := strictUnmarshal(data, &v, fields); err != nil {
		return nil, err
	}
	return v, nil
}

// strictUnmarshal decodes one JSON object into v and rejects anything that
// would otherwise be silently dropped or zeroed: unknown fields, fields whose
// name matches only case-insensitively (encoding/json would accept
// "Order_ID"), missing fields, and trailing data. Requiring every field is
// what makes schema versions honest: a new field means a new version and an
// upcast step that supplies it.
func strictUnmarshal(data []byte, v any, fields map[string]bool) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidEventData)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEventData, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the object", ErrInvalidEventData)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &got); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEventData, err)
	}
	for k := range got {
		if !fields[k] {
			return fmt.Errorf("%w: field %q is not a field of this event (names are case-sensitive)", ErrInvalidEventData, k)
		}
	}
	// Every key seen is a known field, so equal counts mean none is missing.
	if len(got) != len(fields) {
		for k := range fields {
			if _, ok := got[k]; !ok {
				return fmt.Errorf("%w: field %q is missing", ErrInvalidEventData, k)
			}
		}
	}
	return nil
}
