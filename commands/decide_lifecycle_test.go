package commands

import (
	"testing"

	"github.com/orderflow/orderflow/order"
)

func lifecycleCases() []decideCase {
	pay := RecordPayment{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1"}
	ship := ShipOrder{Carrier: "DHL", TrackingNumber: "T1"}
	cancel := CancelOrder{Reason: "changed mind"}
	return []decideCase{
		{name: "placing a draft fixes the total of its lines", given: []order.Event{created, mug,
			order.ItemAdded{SKU: "cup", Name: "Cup", Quantity: 3, UnitPriceMinor: 100}},
			cmd: PlaceOrder{}, want: []order.Event{order.OrderPlaced{TotalMinor: 2800, ItemCount: 2, PlacedAt: now}}},
		{name: "placing an order without items is refused", given: emptyDraft,
			cmd: PlaceOrder{}, wantRule: RulePlaceRequiresItems},
		{name: "placing an order whose items were all removed is refused",
			given: []order.Event{created, mug, order.ItemRemoved{SKU: "mug"}},
			cmd:   PlaceOrder{}, wantRule: RulePlaceRequiresItems},
		{name: "placing a total that does not fit in int64 is refused, never wrapped",
			given: []order.Event{created, order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 1 << 62},
				order.ItemAdded{SKU: "b", Name: "B", Quantity: 2, UnitPriceMinor: 1 << 62}},
			cmd: PlaceOrder{}, wantRule: RuleTotalOverflow},
		{name: "placing an order twice is refused", given: placedOrder,
			cmd: PlaceOrder{}, wantRule: RulePlaceRequiresDraft},
		{name: "placing an order that does not exist is not found",
			cmd: PlaceOrder{}, wantErr: ErrOrderNotFound},

		{name: "paying a placed order its total in its currency records the payment", given: placedOrder,
			cmd: pay, want: []order.Event{order.PaymentRecorded{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1", PaidAt: now}}},
		{name: "paying a draft is refused", given: draft, cmd: pay, wantRule: RulePaymentRequiresPlaced},
		{name: "paying twice is refused", given: paidOrder, cmd: pay, wantRule: RulePaymentRequiresPlaced},
		{name: "paying in another currency is refused", given: placedOrder,
			cmd: RecordPayment{AmountMinor: 2500, Currency: "USD", Reference: "r"}, wantRule: RulePaymentCurrencyMismatch},
		{name: "paying less than the total is refused", given: placedOrder,
			cmd: RecordPayment{AmountMinor: 2499, Currency: "EUR", Reference: "r"}, wantRule: RulePaymentAmountMismatch},
		{name: "paying more than the total is refused", given: placedOrder,
			cmd: RecordPayment{AmountMinor: 2501, Currency: "EUR", Reference: "r"}, wantRule: RulePaymentAmountMismatch},
		{name: "paying an order that does not exist is not found", cmd: pay, wantErr: ErrOrderNotFound},

		{name: "shipping a paid order records carrier and tracking", given: paidOrder, cmd: ship,
			want: []order.Event{order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1", ShippedAt: now}}},
		{name: "shipping an unpaid order is refused", given: placedOrder, cmd: ship, wantRule: RuleShipRequiresPaid},
		{name: "shipping twice is refused", given: shippedOrd, cmd: ship, wantRule: RuleShipRequiresPaid},
		{name: "shipping an order that does not exist is not found", cmd: ship, wantErr: ErrOrderNotFound},

		{name: "delivering a shipped order records delivery", given: shippedOrd, cmd: DeliverOrder{},
			want: []order.Event{order.OrderDelivered{DeliveredAt: now}}},
		{name: "delivering an order not shipped is refused", given: paidOrder,
			cmd: DeliverOrder{}, wantRule: RuleDeliverRequiresShipped},
		{name: "delivering twice is refused", given: delivered, cmd: DeliverOrder{}, wantRule: RuleDeliverRequiresShipped},
		{name: "delivering an order that does not exist is not found", cmd: DeliverOrder{}, wantErr: ErrOrderNotFound},

		{name: "cancelling a draft emits only OrderCancelled", given: draft, cmd: cancel,
			want: []order.Event{order.OrderCancelled{Reason: "changed mind", CancelledAt: now}}},
		{name: "cancelling a placed order emits only OrderCancelled", given: placedOrder, cmd: cancel,
			want: []order.Event{order.OrderCancelled{Reason: "changed mind", CancelledAt: now}}},
		{name: "cancelling a paid order also refunds its total", given: paidOrder, cmd: cancel,
			want: []order.Event{
				order.OrderCancelled{Reason: "changed mind", CancelledAt: now},
				order.RefundRecorded{AmountMinor: 2500, Currency: "EUR", Reason: "changed mind", RefundedAt: now},
			}},
		{name: "cancelling a shipped order is refused", given: shippedOrd, cmd: cancel, wantRule: RuleCancelAfterShipment},
		{name: "cancelling a delivered order is refused", given: delivered, cmd: cancel, wantRule: RuleCancelAfterShipment},
		{name: "cancelling twice is refused", given: cancelled, cmd: cancel, wantRule: RuleAlreadyCancelled},
		{name: "cancelling an order that does not exist is not found", cmd: cancel, wantErr: ErrOrderNotFound},
		{name: "cancelling without a reason is a validation error", given: draft, cmd: CancelOrder{}, wantVal: true},
	}
}

func allCases() []decideCase {
	return append(append(append(createCases(), itemCases()...), lifecycleCases()...), limitCases()...)
}

func TestCreateOrder(t *testing.T) { run(t, createCases()) }
func TestItems(t *testing.T)       { run(t, itemCases()) }
func TestLifecycle(t *testing.T)   { run(t, lifecycleCases()) }

func TestEveryRuleIsTested(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range allCases() {
		seen[c.wantRule] = true
	}
	for _, r := range allRules {
		if !seen[r] {
			t.Errorf("rule %s has no test case", r)
		}
	}
}
