package order_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

var orderID = ulid.MustParse("01JNM0000000000000000000AB")

func created() order.OrderCreated {
	return order.OrderCreated{OrderID: orderID, CustomerID: "c-1", Currency: "EUR", CreatedAt: t0}
}

func TestFoldFollowsTheLifeCycle(t *testing.T) {
	placedAt, paidAt := t0.Add(time.Minute), t0.Add(2*time.Minute)
	shippedAt, deliveredAt := t0.Add(time.Hour), t0.Add(48*time.Hour)
	s := order.Fold(
		created(),
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 100},
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 2, UnitPriceMinor: 250},
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 2, UnitPriceMinor: 100},
		order.OrderPlaced{TotalMinor: 800, ItemCount: 2, PlacedAt: placedAt},
		order.PaymentRecorded{AmountMinor: 800, Currency: "EUR", Reference: "psp-1", PaidAt: paidAt},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1", ShippedAt: shippedAt},
		order.OrderDelivered{DeliveredAt: deliveredAt},
	)
	want := order.State{
		ID: orderID, CustomerID: "c-1", Currency: "EUR", Status: order.StatusDelivered,
		Items: []order.Line{
			{SKU: "b", Name: "B", Quantity: 3, UnitPriceMinor: 100},
			{SKU: "a", Name: "A", Quantity: 2, UnitPriceMinor: 250},
		},
		TotalMinor: 800, PaidMinor: 800, PaymentReference: "psp-1",
		Carrier: "DHL", TrackingNumber: "T1", Version: 8,
		CreatedAt: t0, PlacedAt: placedAt, PaidAt: paidAt, ShippedAt: shippedAt, DeliveredAt: deliveredAt,
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Fold =\n%+v\nwant\n%+v", s, want)
	}
}

func TestFoldKeepsTheDraftTotalRunning(t *testing.T) {
	s := order.Fold(created(),
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 2, UnitPriceMinor: 250},
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 100},
	)
	if s.TotalMinor != 600 || s.Status != order.StatusDraft {
		t.Fatalf("draft total = %d status %q, want 600 draft", s.TotalMinor, s.Status)
	}
	s.Apply(order.ItemRemoved{SKU: "a"})
	if s.TotalMinor != 100 || len(s.Items) != 1 || s.Items[0].SKU != "b" {
		t.Fatalf("after removal: total %d items %+v", s.TotalMinor, s.Items)
	}
	s.Apply(order.ItemRemoved{SKU: "never-added"})
	if s.TotalMinor != 100 || len(s.Items) != 1 || s.Version != 5 {
		t.Fatalf("removing an unknown sku changed more than the version: %+v", s)
	}
	if l, ok := s.Item("b"); !ok || l.Quantity != 1 {
		t.Fatalf("Item(b) = %+v, %v", l, ok)
	}
	if _, ok := s.Item("a"); ok {
		t.Fatal("Item(a) found after removal")
	}
}

func TestFoldSaturatesInsteadOfWrappingOnForeignEvents(t *testing.T) {
	s := order.Fold(created(),
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: math.MaxInt64},
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 1},
	)
	if s.TotalMinor != math.MaxInt64 {
		t.Fatalf("overflowing draft total = %d, want saturation at MaxInt64", s.TotalMinor)
	}
}

func TestFoldRecordsCancellationAndRefund(t *testing.T) {
	at := t0.Add(time.Hour)
	s := order.Fold(created(),
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 500},
		order.OrderPlaced{TotalMinor: 500, ItemCount: 1, PlacedAt: t0},
		order.PaymentRecorded{AmountMinor: 500, Currency: "EUR", Reference: "r", PaidAt: t0},
		order.OrderCancelled{Reason: "fraud", CancelledAt: at},
		order.RefundRecorded{AmountMinor: 500, Currency: "EUR", Reason: "fraud", RefundedAt: at},
	)
	if s.Status != order.StatusCancelled || s.CancelReason != "fraud" || !s.CancelledAt.Equal(at) ||
		s.RefundedMinor != 500 || !s.RefundedAt.Equal(at) || s.Version != 6 {
		t.Fatalf("state after paid cancellation: %+v", s)
	}
}

func TestApplyOnACopyLeavesTheOriginalUntouched(t *testing.T) {
	base := order.Fold(created(),
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 5},
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 5},
	)
	snapshot := order.Fold(created(),
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 5},
		order.ItemAdded{SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 5},
	)
	for _, e := range []order.Event{
		order.ItemAdded{SKU: "a", Name: "A", Quantity: 7, UnitPriceMinor: 5},
		order.ItemRemoved{SKU: "a"},
		order.ItemAdded{SKU: "c", Name: "C", Quantity: 1, UnitPriceMinor: 5},
	} {
		next := base // a copy, as every reader's "before" state is
		next.Apply(e)
	}
	if !reflect.DeepEqual(base, snapshot) {
		t.Fatalf("Apply on a copy wrote through to the original:\n got %+v\nwant %+v", base, snapshot)
	}
}

type futureEvent struct{}

func (futureEvent) EventName() string { return "OrderGiftWrapped" }

func TestApplyCountsEveryEventAndFoldsPointersLikeValues(t *testing.T) {
	c := created()
	byValue := order.Fold(c, order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 5}, futureEvent{})
	byPointer := order.Fold(&c, &order.ItemAdded{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 5}, futureEvent{})
	if !reflect.DeepEqual(byValue, byPointer) {
		t.Fatalf("pointer fold differs:\n%+v\n%+v", byValue, byPointer)
	}
	if byValue.Version != 3 {
		t.Fatalf("Version = %d, want 3: an unknown event still takes a stream version", byValue.Version)
	}
	if s := order.Fold((*order.ItemAdded)(nil)); s.Version != 1 || len(s.Items) != 0 {
		t.Fatalf("nil pointer fold: %+v", s)
	}
}

func TestStatusStringsAreStable(t *testing.T) {
	got := []order.Status{order.StatusDraft, order.StatusPlaced, order.StatusPaid,
		order.StatusShipped, order.StatusDelivered, order.StatusCancelled}
	want := []string{"draft", "placed", "paid", "shipped", "delivered", "cancelled"}
	for i := range got {
		if string(got[i]) != want[i] {
			t.Errorf("status %d = %q, want %q", i, got[i], want[i])
		}
	}
	if (order.State{}).Exists() || !order.Fold(created()).Exists() {
		t.Error("Exists must be false only before OrderCreated")
	}
	b, err := json.Marshal(order.Fold(created()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"status":"draft"`) || strings.Contains(string(b), "placed_at") {
		t.Fatalf("state JSON %s: want status draft and no zero placed_at", b)
	}
}
