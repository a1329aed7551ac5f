package order

import (
	"math"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
)

// Status is where an order is in its life cycle. The strings are a contract
// with the HTTP APIs and the read models: never change one.
type Status string

// An order moves draft → placed → paid → shipped → delivered, and may be
// cancelled from draft, placed or paid. The zero Status ("") means the order
// does not exist yet.
const (
	StatusDraft     Status = "draft"
	StatusPlaced    Status = "placed"
	StatusPaid      Status = "paid"
	StatusShipped   Status = "shipped"
	StatusDelivered Status = "delivered"
	StatusCancelled Status = "cancelled"
)

// Line is one SKU on an order.
type Line struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}

// State is the fold of one order's events. It is a value: Apply never writes
// through a slice that a copy of the State may share (see Apply), so callers
// can keep a State, copy it and evolve the copy.
type State struct {
	ID         ulid.ULID `json:"id"`
	CustomerID string    `json:"customer_id"`
	Currency   string    `json:"currency"`
	// Email and ShippingAddress are personal data: sealed values as the
	// events hold them, Erased after PersonalDataErased ("" when none).
	Email           string `json:"email,omitempty"`
	ShippingAddress string `json:"shipping_address,omitempty"`
	Status          Status `json:"status"`
	// Items in the order their SKU was first added.
	Items []Line `json:"items"`
	// TotalMinor is the running sum of Items while in draft, and the total
	// fixed by OrderPlaced from then on.
	TotalMinor       int64  `json:"total_minor"`
	PaidMinor        int64  `json:"paid_minor"`
	PaymentReference string `json:"payment_reference,omitempty"`
	RefundedMinor    int64  `json:"refunded_minor"`
	Carrier          string `json:"carrier,omitempty"`
	TrackingNumber   string `json:"tracking_number,omitempty"`
	CancelReason     string `json:"cancel_reason,omitempty"`
	// Version is the number of events folded, which equals the stream
	// version of the last one: the expected version for the next append.
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	PlacedAt    time.Time `json:"placed_at,omitzero"`
	PaidAt      time.Time `json:"paid_at,omitzero"`
	ShippedAt   time.Time `json:"shipped_at,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	RefundedAt  time.Time `json:"refunded_at,omitzero"`
}

// Exists reports whether the order has been created.
func (s State) Exists() bool { return s.Version > 0 }

// Item returns the line of sku.
func (s State) Item(sku string) (Line, bool) {
	if i := s.itemIndex(sku); i >= 0 {
		return s.Items[i], true
	}
	return Line{}, false
}

func (s State) itemIndex(sku string) int {
	// A linear scan: an order holds at most a hundred lines, and a map would
	// make State a reference type that copies share.
	return slices.IndexFunc(s.Items, func(l Line) bool { return l.SKU == sku })
}

// Apply folds one event into s. It never fails: events are facts that a
// decision already accepted. Version counts every event, including types this
// version of the code does not know, so that it always equals the stream
// version used for optimistic concurrency. Events are values (as Registry.Decode
// returns them); pointers to events are folded like the values they point to.
func (s *State) Apply(e Event) {
	s.Version++
	switch e := deref(e).(type) {
	case OrderCreated:
		s.ID, s.CustomerID, s.Currency = e.OrderID, e.CustomerID, e.Currency
		s.Email, s.ShippingAddress = e.Email, e.ShippingAddress
		s.Status, s.CreatedAt = StatusDraft, e.CreatedAt
	case ShippingAddressChanged:
		s.ShippingAddress = e.ShippingAddress
	case PersonalDataErased:
		s.Email, s.ShippingAddress = erase(s.Email), erase(s.ShippingAddress)
	case ItemAdded:
		// Clone before writing: the backing array may be shared with a copy
		// of this State (for example the state a decision was given).
		items := slices.Clone(s.Items)
		if i := s.itemIndex(e.SKU); i >= 0 {
			items[i].Quantity += e.Quantity
		} else {
			items = append(items, Line{SKU: e.SKU, Name: e.Name, Quantity: e.Quantity, UnitPriceMinor: e.UnitPriceMinor})
		}
		s.Items = items
		s.TotalMinor = draftTotal(items)
	case ItemRemoved:
		if i := s.itemIndex(e.SKU); i >= 0 {
			s.Items = slices.Delete(slices.Clone(s.Items), i, i+1)
			s.TotalMinor = draftTotal(s.Items)
		}
	case OrderPlaced:
		s.Status, s.TotalMinor, s.PlacedAt = StatusPlaced, e.TotalMinor, e.PlacedAt
	case PaymentRecorded:
		s.Status, s.PaidAt, s.PaymentReference = StatusPaid, e.PaidAt, e.Reference
		s.PaidMinor = saturatingAdd(s.PaidMinor, e.AmountMinor)
	case OrderShipped:
		s.Status, s.ShippedAt = StatusShipped, e.ShippedAt
		s.Carrier, s.TrackingNumber = e.Carrier, e.TrackingNumber
	case OrderDelivered:
		s.Status, s.DeliveredAt = StatusDelivered, e.DeliveredAt
	case OrderCancelled:
		s.Status, s.CancelledAt, s.CancelReason = StatusCancelled, e.CancelledAt, e.Reason
	case RefundRecorded:
		s.RefundedAt = e.RefundedAt
		s.RefundedMinor = saturatingAdd(s.RefundedMinor, e.AmountMinor)
	}
}

// Fold returns the state after events, in order, starting from nothing.
func Fold(events ...Event) State {
	var s State
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

// deref turns a pointer to an event into the event value, so that both
// spellings fold and encode the same way. A nil pointer becomes a nil Event
// (folded as an unknown event, refused by Encode).
func deref(e Event) Event {
	switch p := e.(type) {
	case *OrderCreated:
		return val(p)
	case *ItemAdded:
		return val(p)
	case *ItemRemoved:
		return val(p)
	case *OrderPlaced:
		return val(p)
	case *PaymentRecorded:
		return val(p)
	case *OrderShipped:
		return val(p)
	case *OrderDelivered:
		return val(p)
	case *OrderCancelled:
		return val(p)
	case *RefundRecorded:
		return val(p)
	case *ShippingAddressChanged:
		return val(p)
	case *PersonalDataErased:
		return val(p)
	}
	return e
}

func val[T Event](p *T) Event {
	if p == nil {
		return nil
	}
	return *p
}

// draftTotal is the running total of a draft. Decisions reject any item that
// would overflow it, so saturation only happens for events this package's
// decisions did not produce; it keeps the fold total and never wraps negative.
func draftTotal(items []Line) int64 {
	t, err := SumLines(items)
	if err != nil {
		return math.MaxInt64
	}
	return t
}

func saturatingAdd(a, b int64) int64 {
	if t, err := AddMinor(a, b); err == nil {
		return t
	}
	return math.MaxInt64
}
