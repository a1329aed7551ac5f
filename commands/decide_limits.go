package commands

import (
	"fmt"

	"github.com/orderflow/orderflow/order"
)

// lifecycleReserve is how many events an order may still need after its
// last item change: placed and paid, then shipped and delivered, or
// cancelled and refunded.
const lifecycleReserve = 4

// checkEventLimit is the rule every command shares: no stream passes
// order.MaxEvents. Item changes stop lifecycleReserve events earlier, so
// that an order edited up to the cap can still be placed, paid, shipped and
// delivered, or cancelled: the cap never strands an order mid-life.
func checkEventLimit(s order.State, c Command, n int) error {
	limit, what := int64(order.MaxEvents), "events"
	switch c.(type) {
	case CreateOrder, AddItem, RemoveItem, ChangeShippingAddress:
		limit, what = order.MaxEvents-lifecycleReserve, "events of item changes (the rest is kept for placing, paying, shipping and delivering or cancelling)"
	}
	if s.Version+int64(n) <= limit {
		return nil
	}
	return ruleErr(RuleEventLimit, fmt.Sprintf("the order has %d events and this command adds %d; an order holds at most %d %s",
		s.Version, n, limit, what))
}
