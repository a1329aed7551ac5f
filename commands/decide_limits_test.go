package commands

import (
	"testing"

	"github.com/orderflow/orderflow/order"
)

// edited is a draft holding the mug after n further item changes (the mug
// removed and added again), so its version is 2+n.
func edited(n int) []order.Event {
	evs := []order.Event{created, mug}
	for i := range n {
		if i%2 == 0 {
			evs = append(evs, order.ItemRemoved{SKU: mug.SKU})
		} else {
			evs = append(evs, mug)
		}
	}
	return evs
}

// atItemLimit is a draft with the mug whose next item change would pass
// the item-change limit.
func atItemLimit() []order.Event { return edited(order.MaxEvents - lifecycleReserve - 2) }

func then(given []order.Event, more ...order.Event) []order.Event {
	return append(append([]order.Event{}, given...), more...)
}

func limitCases() []decideCase {
	cup := AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 100}
	full := atItemLimit()
	return []decideCase{
		{name: "an item change up to the item-change limit is allowed", given: full[:len(full)-1],
			cmd: AddItem(cup), want: []order.Event{order.ItemAdded(cup)}},
		{name: "an item addition past the item-change limit is refused", given: full,
			cmd: AddItem(cup), wantRule: RuleEventLimit},
		{name: "an item removal past the item-change limit is refused", given: full,
			cmd: RemoveItem{SKU: mug.SKU}, wantRule: RuleEventLimit},
		{name: "an order at the item-change limit can still be placed", given: full,
			cmd: PlaceOrder{}, want: []order.Event{order.OrderPlaced{TotalMinor: 2500, ItemCount: 1, PlacedAt: now}}},
		{name: "an order at the item-change limit can still be delivered, its last event the cap",
			given: then(full, placed, paid, shipped), cmd: DeliverOrder{},
			want: []order.Event{order.OrderDelivered{DeliveredAt: now}}},
		{name: "a paid order at the item-change limit can still be cancelled with its refund",
			given: then(full, placed, paid), cmd: CancelOrder{Reason: "r"},
			want: []order.Event{
				order.OrderCancelled{Reason: "r", CancelledAt: now},
				order.RefundRecorded{AmountMinor: 2500, Currency: "EUR", Reason: "r", RefundedAt: now},
			}},
		{name: "a command that would pass the cap is refused",
			given: then(edited(order.MaxEvents-5), placed, paid, shipped), cmd: DeliverOrder{}, wantRule: RuleEventLimit},
		{name: "the state's own rules come before the cap", given: full,
			cmd: paymentOf(2500), wantRule: RulePaymentRequiresPlaced},
	}
}

// paymentOf is a valid payment of amount in EUR.
func paymentOf(amount int64) RecordPayment {
	return RecordPayment{AmountMinor: amount, Currency: "EUR", Reference: "psp-1"}
}

func TestEventLimit(t *testing.T) {
	t.Parallel()
	if got := order.Fold(atItemLimit()...).Version; got != order.MaxEvents-lifecycleReserve {
		t.Fatalf("atItemLimit is at version %d, want %d", got, order.MaxEvents-lifecycleReserve)
	}
	run(t, limitCases())
}
