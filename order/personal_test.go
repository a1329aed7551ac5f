package order_test

import (
	"encoding/json"
	"testing"

	"github.com/orderflow/orderflow/order"
)

func TestOrderCreatedV1HasNoPersonalData(t *testing.T) {
	r := order.NewRegistry()
	v1 := json.RawMessage(`{"order_id":"01JNM0000000000000000000AB","customer_id":"c-1","currency":"EUR","created_at":"2026-01-02T03:04:05Z"}`)
	e, err := r.Decode(order.NameOrderCreated, 1, v1)
	if err != nil {
		t.Fatal(err)
	}
	if c := e.(order.OrderCreated); c.Email != "" || c.ShippingAddress != "" || c.CustomerID != "c-1" {
		t.Fatalf("decoded %#v", c)
	}
}

func TestTheFoldForgetsPersonalDataOnErasure(t *testing.T) {
	s := order.Fold(
		order.OrderCreated{CustomerID: "c-1", Currency: "EUR", Email: "pii:v1:k:e"},
		order.ShippingAddressChanged{ShippingAddress: "pii:v1:k:a"},
	)
	if s.Email != "pii:v1:k:e" || s.ShippingAddress != "pii:v1:k:a" {
		t.Fatalf("before erasure: %q %q", s.Email, s.ShippingAddress)
	}
	s.Apply(order.PersonalDataErased{})
	if s.Email != order.Erased || s.ShippingAddress != order.Erased || s.Version != 3 {
		t.Fatalf("after erasure: %q %q v%d", s.Email, s.ShippingAddress, s.Version)
	}
	if e := order.Fold(order.OrderCreated{CustomerID: "c-1"}, order.PersonalDataErased{}); e.Email != "" {
		t.Fatalf("an order without an email shows %q after erasure", e.Email)
	}
}
