package order

import (
	"time"

	"github.com/oklog/ulid/v2"
)

// Event is a fact about one order. EventName returns the stable name stored
// as the event type; it is a constant per struct, never derived by
// reflection, so renaming a Go type can never change stored data.
type Event interface {
	EventName() string
}

// Stable event names. They are stored in the event table and published to
// Kafka: never change one.
const (
	NameOrderCreated    = "OrderCreated"
	NameItemAdded       = "ItemAdded"
	NameItemRemoved     = "ItemRemoved"
	NameOrderPlaced     = "OrderPlaced"
	NamePaymentRecorded = "PaymentRecorded"
	NameOrderShipped    = "OrderShipped"
	NameOrderDelivered  = "OrderDelivered"
	NameOrderCancelled  = "OrderCancelled"
	NameRefundRecorded  = "RefundRecorded"
	// NameShippingAddressChanged and NamePersonalDataErased carry and
	// forget personal data (personal.go).
	NameShippingAddressChanged = "ShippingAddressChanged"
	NamePersonalDataErased     = "PersonalDataErased"
)

// OrderCreated starts an order in status draft. Email and ShippingAddress
// are personal data, stored sealed ("" when the order has none); schema v1
// had neither (see upcast.go).
type OrderCreated struct {
	OrderID         ulid.ULID `json:"order_id"`
	CustomerID      string    `json:"customer_id"`
	Currency        string    `json:"currency"`
	Email           string    `json:"email"`
	ShippingAddress string    `json:"shipping_address"`
	CreatedAt       time.Time `json:"created_at"`
}

// ShippingAddressChanged replaces the order's shipping address (personal
// data, stored sealed).
type ShippingAddressChanged struct {
	ShippingAddress string    `json:"shipping_address"`
	ChangedAt       time.Time `json:"changed_at"`
}

// PersonalDataErased records that the customer's personal data was
// forgotten: its key is destroyed, and the fold shows every personal field
// as Erased from here on.
type PersonalDataErased struct {
	ErasedAt time.Time `json:"erased_at"`
}

// ItemAdded adds Quantity units of SKU. When the SKU is already on the order
// (same name and price, as the decision guarantees) the quantities add up.
// Schema v1 called UnitPriceMinor "price_minor"; see upcast.go.
type ItemAdded struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}

// ItemRemoved removes the whole line of SKU.
type ItemRemoved struct {
	SKU string `json:"sku"`
}

// OrderPlaced freezes the items and fixes the total the customer must pay.
type OrderPlaced struct {
	TotalMinor int64     `json:"total_minor"`
	ItemCount  int       `json:"item_count"`
	PlacedAt   time.Time `json:"placed_at"`
}

// PaymentRecorded records the payment of the full total.
type PaymentRecorded struct {
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Reference   string    `json:"reference"`
	PaidAt      time.Time `json:"paid_at"`
}

// OrderShipped hands a paid order to a carrier.
type OrderShipped struct {
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	ShippedAt      time.Time `json:"shipped_at"`
}

// OrderDelivered closes a shipped order.
type OrderDelivered struct {
	DeliveredAt time.Time `json:"delivered_at"`
}

// OrderCancelled ends an order before shipment.
type OrderCancelled struct {
	Reason      string    `json:"reason"`
	CancelledAt time.Time `json:"cancelled_at"`
}

// RefundRecorded accompanies OrderCancelled, in the same append, when a paid
// order is cancelled: the payment is owed back.
type RefundRecorded struct {
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Reason      string    `json:"reason"`
	RefundedAt  time.Time `json:"refunded_at"`
}

func (OrderCreated) EventName() string    { return NameOrderCreated }
func (ItemAdded) EventName() string       { return NameItemAdded }
func (ItemRemoved) EventName() string     { return NameItemRemoved }
func (OrderPlaced) EventName() string     { return NameOrderPlaced }
func (PaymentRecorded) EventName() string { return NamePaymentRecorded }
func (OrderShipped) EventName() string    { return NameOrderShipped }
func (OrderDelivered) EventName() string  { return NameOrderDelivered }
func (OrderCancelled) EventName() string  { return NameOrderCancelled }
func (RefundRecorded) EventName() string  { return NameRefundRecorded }
func (ShippingAddressChanged) EventName() string {
	return NameShippingAddressChanged
}
func (PersonalDataErased) EventName() string { return NamePersonalDataErased }
