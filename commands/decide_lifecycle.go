package commands

import (
	"fmt"
	"time"

	"github.com/orderflow/orderflow/order"
)

// Decide emits PaymentRecorded when the payment matches the order exactly.
// Partial and over-payments are refused rather than recorded: this model has
// no balance to carry them.
func (c RecordPayment) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if s.Status != order.StatusPlaced {
		return nil, ruleErr(RulePaymentRequiresPlaced, fmt.Sprintf("only a placed order can be paid; this one is %s", s.Status))
	}
	if c.Currency != s.Currency {
		return nil, ruleErr(RulePaymentCurrencyMismatch, fmt.Sprintf("payment in %s for an order in %s", c.Currency, s.Currency))
	}
	if c.AmountMinor != s.TotalMinor {
		return nil, ruleErr(RulePaymentAmountMismatch, fmt.Sprintf("payment of %d for an order total of %d", c.AmountMinor, s.TotalMinor))
	}
	return []order.Event{order.PaymentRecorded{
		AmountMinor: c.AmountMinor, Currency: c.Currency, Reference: c.Reference, PaidAt: now.UTC(),
	}}, nil
}

// Decide emits OrderShipped for a paid order.
func (c ShipOrder) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if s.Status != order.StatusPaid {
		return nil, ruleErr(RuleShipRequiresPaid, fmt.Sprintf("only a paid order can ship; this one is %s", s.Status))
	}
	return []order.Event{order.OrderShipped{
		Carrier: c.Carrier, TrackingNumber: c.TrackingNumber, ShippedAt: now.UTC(),
	}}, nil
}

// Decide emits OrderDelivered for a shipped order.
func (c DeliverOrder) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if s.Status != order.StatusShipped {
		return nil, ruleErr(RuleDeliverRequiresShipped, fmt.Sprintf("only a shipped order can be delivered; this one is %s", s.Status))
	}
	return []order.Event{order.OrderDelivered{DeliveredAt: now.UTC()}}, nil
}

// Decide emits OrderCancelled, plus RefundRecorded of the total when the
// order was paid. Both go in one append, so no reader ever sees a cancelled
// paid order without its refund.
func (c CancelOrder) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	switch s.Status {
	case order.StatusCancelled:
		return nil, ruleErr(RuleAlreadyCancelled, "the order is already cancelled")
	case order.StatusShipped, order.StatusDelivered:
		return nil, ruleErr(RuleCancelAfterShipment, fmt.Sprintf("a %s order cannot be cancelled", s.Status))
	}
	at := now.UTC()
	events := []order.Event{order.OrderCancelled{Reason: c.Reason, CancelledAt: at}}
	if s.Status == order.StatusPaid {
		events = append(events, order.RefundRecorded{
			AmountMinor: s.TotalMinor, Currency: s.Currency, Reason: c.Reason, RefundedAt: at,
		})
	}
	return events, nil
}
