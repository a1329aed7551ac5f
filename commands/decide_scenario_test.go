package commands

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/order"
)

// TestAnOrderLivesThroughStoredEvents drives one order through its whole life
// the way the API does: decide on the fold of the stored events, store the
// decided events (encode + decode through the registry), repeat. It proves
// the decisions, the codec and the fold agree with one another.
func TestAnOrderLivesThroughStoredEvents(t *testing.T) {
	reg := order.NewRegistry()
	var stored []order.Event
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	step := func(c Command) {
		t.Helper()
		clock = clock.Add(time.Minute)
		events, err := decide(order.Fold(stored...), c, clock)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range events {
			name, v, data, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := reg.Decode(name, v, data)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, back)
		}
	}
	step(CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR",
		Items: []ItemInput{{SKU: "mug", Name: "Mug", Quantity: 1, UnitPriceMinor: 1250}}})
	step(AddItem{SKU: "mug", Name: "Mug", Quantity: 1, UnitPriceMinor: 1250})
	step(AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 300})
	step(RemoveItem{SKU: "cup"})
	step(PlaceOrder{})
	step(RecordPayment{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1"})
	step(CancelOrder{Reason: "out of stock"})

	s := order.Fold(stored...)
	if s.Status != order.StatusCancelled || s.TotalMinor != 2500 || s.RefundedMinor != 2500 || s.Version != 9 {
		t.Fatalf("final state: %+v", s)
	}
	if len(s.Items) != 1 || s.Items[0].Quantity != 2 {
		t.Fatalf("items: %+v", s.Items)
	}
	// The clock was in CET; stored timestamps are the same instants in UTC.
	if s.CancelledAt.Location() != time.UTC || !s.CancelledAt.Equal(clock) {
		t.Fatalf("CancelledAt = %v, want %v in UTC", s.CancelledAt, clock)
	}
}
