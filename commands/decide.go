// Package commands is the command side's application: the order decisions
// and the Service that executes them. It says what a command did (Outcome:
// Created or Changed, Replayed) and knows nothing of HTTP; its HTTP port is
// commands/httpapi.
//
// A decision is a pure function: the order's folded state, a command and the
// current time in, events or an error out. It does no I/O and never reads
// the clock, so the same inputs always decide the same way, and the caller
// owns the transaction: load the stream, fold it (order.Fold), decide, append
// the events expecting the state's version. A concurrent writer makes that
// append fail with a version conflict and the caller retries the decision on
// fresh state.
//
// Every decision checks in the same order, and stops at the first tier that
// fails, so nothing is ever partially decided:
//
//  1. the input alone (Validate): a *ValidationError listing every field
//     problem;
//  2. existence: ErrOrderNotFound for any command but CreateOrder on an order
//     without events, ErrOrderExists for CreateOrder on one that has them;
//  3. the rules of the order's life cycle, then the one rule every command
//     shares, the cap on an order's events (order.MaxEvents): a *RuleError
//     with a stable kebab-case Rule id.
//
// Only then are events built, all at once, with timestamps from now (UTC).
package commands

import (
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

// Command is any order command: a plain struct that can check its own input
// and decide against a state.
type Command interface {
	Validate() error
	Decide(s order.State, now time.Time) ([]order.Event, error)
}

// ItemInput is one line of a CreateOrder or an AddItem.
type ItemInput struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}

// CreateOrder starts a draft order, optionally with its first items.
// OrderID is not read from the body: the API generates it (an
// Idempotency-Key is what makes a retried creation safe).
//
// Email and ShippingAddress are optional personal data; the service seals
// them with the customer's key before they are stored.
type CreateOrder struct {
	OrderID         ulid.ULID   `json:"-"`
	CustomerID      string      `json:"customer_id"`
	Currency        string      `json:"currency"`
	Email           string      `json:"email,omitempty"`
	ShippingAddress string      `json:"shipping_address,omitempty"`
	Items           []ItemInput `json:"items,omitempty"`
}

// AddItem adds units of a SKU to a draft order. Adding a SKU already on the
// order adds to its quantity when name and unit price are the same as the
// line's; a different name or price is a conflict (remove the line and add
// it again to change them), so a retried or duplicated request can never
// silently reprice a line.
type AddItem ItemInput

// RemoveItem removes the whole line of a SKU from a draft order.
type RemoveItem struct {
	SKU string `json:"sku"`
}

// PlaceOrder freezes the items of a draft and fixes its total.
type PlaceOrder struct{}

// RecordPayment records payment of a placed order's exact total.
type RecordPayment struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference"`
}

// ShipOrder hands a paid order to a carrier.
type ShipOrder struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// DeliverOrder records delivery of a shipped order.
type DeliverOrder struct{}

// CancelOrder cancels an order that has not shipped. Cancelling a paid order
// also records a refund of its total.
type CancelOrder struct {
	Reason string `json:"reason"`
}

// decide is the whole decision: c's own (its input, the order's existence,
// the life cycle) and then the rule every command shares, that a stream
// never passes order.MaxEvents (RuleEventLimit; see checkEventLimit).
func decide(s order.State, c Command, now time.Time) ([]order.Event, error) {
	evs, err := c.Decide(s, now)
	if err != nil {
		return nil, err
	}
	if err := checkEventLimit(s, c, len(evs)); err != nil {
		return nil, err
	}
	return evs, nil
}

// existing is tier 1 and 2 for every command but CreateOrder.
func existing(s order.State, c Command) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if !s.Exists() {
		return ErrOrderNotFound
	}
	return nil
}

// Decide emits OrderCreated and one ItemAdded per item.
func (c CreateOrder) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, fmt.Errorf("create order %s: %w", c.OrderID, ErrOrderExists)
	}
	events := make([]order.Event, 0, 1+len(c.Items))
	events = append(events, order.OrderCreated{
		OrderID: c.OrderID, CustomerID: c.CustomerID, Currency: c.Currency,
		Email: c.Email, ShippingAddress: c.ShippingAddress, CreatedAt: now.UTC(),
	})
	for _, it := range c.Items {
		events = append(events, order.ItemAdded(it))
	}
	return events, nil
}

// Decide emits OrderPlaced with the checked total.
func (c PlaceOrder) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if s.Status != order.StatusDraft {
		return nil, ruleErr(RulePlaceRequiresDraft, fmt.Sprintf("only a draft order can be placed; this one is %s", s.Status))
	}
	if len(s.Items) == 0 {
		return nil, ruleErr(RulePlaceRequiresItems, "an order needs at least one item to be placed")
	}
	// Recomputed with checks rather than trusting the running total, which
	// saturates: the fixed total must be exact.
	total, err := order.SumLines(s.Items)
	if err != nil {
		return nil, ruleErr(RuleTotalOverflow, err.Error())
	}
	return []order.Event{order.OrderPlaced{TotalMinor: total, ItemCount: len(s.Items), PlacedAt: now.UTC()}}, nil
}
