package commands

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

var (
	id  = ulid.MustParse("01JNM0000000000000000000AB")
	t0  = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

// Histories to decide against.
var (
	created  = order.OrderCreated{OrderID: id, CustomerID: "c-1", Currency: "EUR", CreatedAt: t0}
	mug      = order.ItemAdded{SKU: "mug", Name: "Mug", Quantity: 2, UnitPriceMinor: 1250}
	placed   = order.OrderPlaced{TotalMinor: 2500, ItemCount: 1, PlacedAt: t0}
	paid     = order.PaymentRecorded{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1", PaidAt: t0}
	shipped  = order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1", ShippedAt: t0}
	delivrd  = order.OrderDelivered{DeliveredAt: t0}
	canceled = order.OrderCancelled{Reason: "r", CancelledAt: t0}

	draft       = []order.Event{created, mug}
	emptyDraft  = []order.Event{created}
	placedOrder = []order.Event{created, mug, placed}
	paidOrder   = []order.Event{created, mug, placed, paid}
	shippedOrd  = []order.Event{created, mug, placed, paid, shipped}
	delivered   = []order.Event{created, mug, placed, paid, shipped, delivrd}
	cancelled   = []order.Event{created, mug, canceled}
)

type decideCase struct {
	name     string
	given    []order.Event
	cmd      Command
	want     []order.Event // when no error is expected
	wantErr  error         // a sentinel, matched with errors.Is
	wantRule string        // a RuleError's Rule
	wantVal  bool          // a *ValidationError
}

func run(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(order.Fold(tc.given...), tc.cmd, now)
			var rule *RuleError
			var val *ValidationError
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.wantRule != "":
				if !errors.As(err, &rule) || rule.Rule != tc.wantRule {
					t.Fatalf("err = %v, want rule %s", err, tc.wantRule)
				}
			case tc.wantVal:
				if !errors.As(err, &val) {
					t.Fatalf("err = %v, want a *ValidationError", err)
				}
			default:
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("events =\n%#v\nwant\n%#v", got, tc.want)
				}
				return
			}
			if got != nil {
				t.Fatalf("an error came with events %v: decisions must be all or nothing", got)
			}
		})
	}
}

func lines(n int) []order.Event {
	evs := []order.Event{created}
	for i := range n {
		evs = append(evs, order.ItemAdded{SKU: "sku-" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Name: "x", Quantity: 1, UnitPriceMinor: 1})
	}
	return evs
}

func createCases() []decideCase {
	items := []ItemInput{{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 100}, {SKU: "b", Name: "B", Quantity: 3, UnitPriceMinor: 0}}
	return []decideCase{
		{name: "creating an order emits OrderCreated stamped with now",
			cmd:  CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR"},
			want: []order.Event{order.OrderCreated{OrderID: id, CustomerID: "c-1", Currency: "EUR", CreatedAt: now}}},
		{name: "creating an order with items adds them in the given order",
			cmd: CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "JPY", Items: items},
			want: []order.Event{
				order.OrderCreated{OrderID: id, CustomerID: "c-1", Currency: "JPY", CreatedAt: now},
				order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 100},
				order.ItemAdded{SKU: "b", Name: "B", Quantity: 3, UnitPriceMinor: 0},
			}},
		{name: "creating an order that exists is refused", given: emptyDraft,
			cmd: CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR"}, wantErr: ErrOrderExists},
		{name: "invalid input is reported before existence", given: emptyDraft,
			cmd: CreateOrder{OrderID: id, Currency: "EUR"}, wantVal: true},
		{name: "creating with one invalid item emits nothing",
			cmd: CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR",
				Items: append(slices.Clone(items), ItemInput{SKU: "c", Name: "C", Quantity: 0})}, wantVal: true},
	}
}

func itemCases() []decideCase {
	return []decideCase{
		{name: "adding a new sku emits ItemAdded", given: draft,
			cmd:  AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 900},
			want: []order.Event{order.ItemAdded{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 900}}},
		{name: "adding an existing sku with the same name and price adds quantity", given: draft,
			cmd:  AddItem{SKU: "mug", Name: "Mug", Quantity: 3, UnitPriceMinor: 1250},
			want: []order.Event{order.ItemAdded{SKU: "mug", Name: "Mug", Quantity: 3, UnitPriceMinor: 1250}}},
		{name: "adding an existing sku at another price is a conflict", given: draft,
			cmd: AddItem{SKU: "mug", Name: "Mug", Quantity: 1, UnitPriceMinor: 999}, wantRule: RuleItemConflict},
		{name: "adding an existing sku under another name is a conflict", given: draft,
			cmd: AddItem{SKU: "mug", Name: "Big mug", Quantity: 1, UnitPriceMinor: 1250}, wantRule: RuleItemConflict},
		{name: "merging past the quantity limit is refused", given: draft,
			cmd: AddItem{SKU: "mug", Name: "Mug", Quantity: MaxQuantity - 1, UnitPriceMinor: 1250}, wantRule: RuleItemQuantityLimit},
		{name: "merging up to exactly the quantity limit is allowed", given: draft,
			cmd:  AddItem{SKU: "mug", Name: "Mug", Quantity: MaxQuantity - 2, UnitPriceMinor: 1250},
			want: []order.Event{order.ItemAdded{SKU: "mug", Name: "Mug", Quantity: MaxQuantity - 2, UnitPriceMinor: 1250}}},
		{name: "a 101st distinct sku is refused", given: lines(MaxItems),
			cmd: AddItem{SKU: "one-more", Name: "x", Quantity: 1, UnitPriceMinor: 1}, wantRule: RuleItemLimit},
		{name: "a 100th distinct sku is allowed", given: lines(MaxItems - 1),
			cmd:  AddItem{SKU: "one-more", Name: "x", Quantity: 1, UnitPriceMinor: 1},
			want: []order.Event{order.ItemAdded{SKU: "one-more", Name: "x", Quantity: 1, UnitPriceMinor: 1}}},
		{name: "more of an existing sku at the limit of distinct skus is allowed", given: lines(MaxItems),
			cmd:  AddItem{SKU: "sku-Aa", Name: "x", Quantity: 1, UnitPriceMinor: 1},
			want: []order.Event{order.ItemAdded{SKU: "sku-Aa", Name: "x", Quantity: 1, UnitPriceMinor: 1}}},
		{name: "an item that would overflow the order total is refused",
			given: []order.Event{created, order.ItemAdded{SKU: "gold", Name: "Gold", Quantity: 1, UnitPriceMinor: math.MaxInt64 - 10}},
			cmd:   AddItem{SKU: "tip", Name: "Tip", Quantity: 1, UnitPriceMinor: 11}, wantRule: RuleTotalOverflow},
		{name: "merged quantity that would overflow its line is refused",
			given: []order.Event{created, order.ItemAdded{SKU: "gold", Name: "Gold", Quantity: 1, UnitPriceMinor: math.MaxInt64 / 2}},
			cmd:   AddItem{SKU: "gold", Name: "Gold", Quantity: 2, UnitPriceMinor: math.MaxInt64 / 2}, wantRule: RuleTotalOverflow},
		{name: "adding to a placed order is refused", given: placedOrder,
			cmd: AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 1}, wantRule: RuleItemsRequireDraft},
		{name: "adding to a cancelled order is refused", given: cancelled,
			cmd: AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 1}, wantRule: RuleItemsRequireDraft},
		{name: "adding to an order that does not exist is not found",
			cmd: AddItem{SKU: "cup", Name: "Cup", Quantity: 1, UnitPriceMinor: 1}, wantErr: ErrOrderNotFound},
		{name: "an invalid item is a validation error", given: draft,
			cmd: AddItem{SKU: "cup", Name: "Cup", Quantity: MaxQuantity + 1, UnitPriceMinor: 1}, wantVal: true},
		{name: "removing a sku on the order emits ItemRemoved", given: draft,
			cmd: RemoveItem{SKU: "mug"}, want: []order.Event{order.ItemRemoved{SKU: "mug"}}},
		{name: "removing a sku not on the order is not found", given: draft,
			cmd: RemoveItem{SKU: "cup"}, wantErr: ErrItemNotFound},
		{name: "removing from a paid order is refused", given: paidOrder,
			cmd: RemoveItem{SKU: "mug"}, wantRule: RuleItemsRequireDraft},
		{name: "removing from an order that does not exist is not found",
			cmd: RemoveItem{SKU: "mug"}, wantErr: ErrOrderNotFound},
	}
}
