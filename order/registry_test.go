package order_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// allEvents holds one populated value of every event type.
func allEvents() []order.Event {
	return []order.Event{
		order.OrderCreated{OrderID: ulid.MustParse("01JNM0000000000000000000AB"), CustomerID: "c-1", Currency: "EUR", Email: "pii:v1:k:x", ShippingAddress: "pii:v1:k:y", CreatedAt: t0},
		order.ShippingAddressChanged{ShippingAddress: "pii:v1:k:z", ChangedAt: t0},
		order.PersonalDataErased{ErasedAt: t0},
		order.ItemAdded{SKU: "sku-1", Name: "Mug", Quantity: 2, UnitPriceMinor: 1250},
		order.ItemRemoved{SKU: "sku-1"},
		order.OrderPlaced{TotalMinor: 2500, ItemCount: 1, PlacedAt: t0.Add(time.Minute)},
		order.PaymentRecorded{AmountMinor: 2500, Currency: "EUR", Reference: "psp-9", PaidAt: t0.Add(2 * time.Minute)},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0001", ShippedAt: t0.Add(time.Hour)},
		order.OrderDelivered{DeliveredAt: t0.Add(48 * time.Hour)},
		order.OrderCancelled{Reason: "changed mind", CancelledAt: t0.Add(3 * time.Minute)},
		order.RefundRecorded{AmountMinor: 2500, Currency: "EUR", Reason: "changed mind", RefundedAt: t0.Add(3 * time.Minute)},
	}
}

func TestRegistryRoundTripsEveryEvent(t *testing.T) {
	r := order.NewRegistry()
	for _, e := range allEvents() {
		t.Run(e.EventName(), func(t *testing.T) {
			name, v, data, err := r.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if cur, _ := r.SchemaVersion(name); name != e.EventName() || v != cur {
				t.Fatalf("Encode named it %s v%d, want %s v%d", name, v, e.EventName(), cur)
			}
			got, err := r.Decode(name, v, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip changed the event:\n got %#v\nwant %#v", got, e)
			}
		})
	}
}

func TestEncodeUsesStableNamesVersionsAndSnakeCase(t *testing.T) {
	r := order.NewRegistry()
	name, v, data, err := r.Encode(&order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 5})
	if err != nil {
		t.Fatal(err)
	}
	if name != "ItemAdded" || v != 2 || string(data) != `{"sku":"a","name":"A","quantity":1,"unit_price_minor":5}` {
		t.Fatalf("Encode = %s v%d %s", name, v, data)
	}
	if _, v, _, _ := r.Encode(order.OrderCreated{}); v != 2 {
		t.Fatalf("OrderCreated schema version = %d, want 2", v)
	}
}

type strayEvent struct{}

func (strayEvent) EventName() string { return order.NameOrderPlaced }

type unknownEvent struct{}

func (unknownEvent) EventName() string { return "Unknown" }

func TestEncodeRefusesEventsItDoesNotOwn(t *testing.T) {
	r := order.NewRegistry()
	for name, e := range map[string]order.Event{
		"an unregistered name":                 unknownEvent{},
		"another type under a registered name": strayEvent{},
		"a nil event":                          nil,
		"a nil pointer to a registered type":   (*order.OrderPlaced)(nil),
	} {
		if _, _, _, err := r.Encode(e); !errors.Is(err, order.ErrUnknownEvent) {
			t.Errorf("%s: err = %v, want ErrUnknownEvent", name, err)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		version int
		data    string
		want    error
	}{
		{name: "an unknown type is refused", typ: "OrderTeleported", version: 1, data: `{}`, want: order.ErrUnknownEvent},
		{name: "an unknown field is refused", typ: "ItemRemoved", version: 1, data: `{"sku":"a","colour":"red"}`, want: order.ErrInvalidEventData},
		{name: "a field in the wrong case is refused", typ: "ItemRemoved", version: 1, data: `{"SKU":"a"}`, want: order.ErrInvalidEventData},
		{name: "a missing field is refused", typ: "OrderDelivered", version: 1, data: `{}`, want: order.ErrInvalidEventData},
		{name: "trailing data is refused", typ: "ItemRemoved", version: 1, data: `{"sku":"a"} {}`, want: order.ErrInvalidEventData},
		{name: "null is not an object", typ: "ItemRemoved", version: 1, data: `null`, want: order.ErrInvalidEventData},
		{name: "a wrongly typed value is refused", typ: "ItemAdded", version: 2, data: `{"sku":"a","name":"A","quantity":"1","unit_price_minor":5}`, want: order.ErrInvalidEventData},
		{name: "a schema version from the future is refused", typ: "ItemRemoved", version: 2, data: `{"sku":"a"}`, want: order.ErrSchemaVersion},
		{name: "schema version zero is refused", typ: "ItemRemoved", version: 0, data: `{"sku":"a"}`, want: order.ErrSchemaVersion},
		{name: "v1 data labelled v2 is refused", typ: "ItemAdded", version: 2, data: `{"sku":"a","name":"A","quantity":1,"price_minor":5}`, want: order.ErrInvalidEventData},
	}
	r := order.NewRegistry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := r.Decode(tt.typ, tt.version, json.RawMessage(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %v", e, err, tt.want)
			}
		})
	}
}

func TestDecodeUpcastsItemAddedV1(t *testing.T) {
	r := order.NewRegistry()
	e, err := r.Decode(order.NameItemAdded, 1, json.RawMessage(`{"sku":"a","name":"A","quantity":3,"price_minor":9007199254740993}`))
	if err != nil {
		t.Fatal(err)
	}
	// 2^53+1 survives: the upcast moves raw JSON and never goes through float64.
	want := order.ItemAdded{SKU: "a", Name: "A", Quantity: 3, UnitPriceMinor: 9007199254740993}
	if e != want {
		t.Fatalf("Decode = %#v, want %#v", e, want)
	}
}

func BenchmarkDecodeItemAdded(b *testing.B) {
	r := order.NewRegistry()
	data := json.RawMessage(`{"sku":"sku-1","name":"Mug","quantity":2,"unit_price_minor":1250}`)
	for b.Loop() {
		if _, err := r.Decode(order.NameItemAdded, 2, data); err != nil {
			b.Fatal(err)
		}
	}
}
