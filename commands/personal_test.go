package commands

import (
	"testing"

	"github.com/orderflow/orderflow/order"
)

func TestPersonalData(t *testing.T) {
	change := ChangeShippingAddress{ShippingAddress: "1 Main Street\nSpringfield"}
	erased := append(append([]order.Event{}, draft...), order.PersonalDataErased{ErasedAt: t0})
	run(t, []decideCase{
		{name: "a draft's address changes", given: draft, cmd: change,
			want: []order.Event{order.ShippingAddressChanged{ShippingAddress: change.ShippingAddress, ChangedAt: now}}},
		{name: "a paid order's address changes", given: paidOrder, cmd: change,
			want: []order.Event{order.ShippingAddressChanged{ShippingAddress: change.ShippingAddress, ChangedAt: now}}},
		{name: "a shipped order's address is fixed", given: shippedOrd, cmd: change, wantRule: RuleAddressChangeAfterShipment},
		{name: "a cancelled order's address is fixed", given: cancelled, cmd: change, wantRule: RuleAddressChangeAfterShipment},
		{name: "an erased order gets no address again",
			given: []order.Event{order.OrderCreated{OrderID: id, CustomerID: "c-1", Currency: "EUR", Email: "pii:v1:k:x", CreatedAt: t0}, order.PersonalDataErased{ErasedAt: t0}},
			cmd:   change, wantRule: RulePersonalDataErased},
		{name: "an empty address is no change", given: draft, cmd: ChangeShippingAddress{}, wantVal: true},
		{name: "an email with a display name is refused", cmd: CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR", Email: "Ada <a@example.com>"}, wantVal: true},
		{name: "a customer id that is an email is refused", cmd: CreateOrder{OrderID: id, CustomerID: "a@example.com", Currency: "EUR"}, wantVal: true},
		{name: "an order is created with its personal data", cmd: CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR", Email: "a@example.com", ShippingAddress: "1 Main Street"},
			want: []order.Event{order.OrderCreated{OrderID: id, CustomerID: "c-1", Currency: "EUR", Email: "a@example.com", ShippingAddress: "1 Main Street", CreatedAt: now}}},
		{name: "an erasure is recorded on any order", given: delivered, cmd: ErasePersonalData{},
			want: []order.Event{order.PersonalDataErased{ErasedAt: now}}},
		{name: "an erasure of an order without data is still recorded", given: erased, cmd: ErasePersonalData{},
			want: []order.Event{order.PersonalDataErased{ErasedAt: now}}},
	})
}
