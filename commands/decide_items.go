package commands

import (
	"fmt"
	"time"

	"github.com/orderflow/orderflow/order"
)

// Decide emits ItemAdded after checking the order can take the line.
func (c AddItem) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if err := requireDraft(s); err != nil {
		return nil, err
	}
	qty := c.Quantity
	if line, ok := s.Item(c.SKU); ok {
		if line.Name != c.Name || line.UnitPriceMinor != c.UnitPriceMinor {
			return nil, ruleErr(RuleItemConflict, fmt.Sprintf(
				"sku %s is on the order as %q at %d; remove it first to change name or price",
				c.SKU, line.Name, line.UnitPriceMinor))
		}
		// Both are at most MaxQuantity, so the sum cannot overflow.
		if qty = line.Quantity + c.Quantity; qty > MaxQuantity {
			return nil, ruleErr(RuleItemQuantityLimit, fmt.Sprintf(
				"sku %s would reach quantity %d; at most %d", c.SKU, qty, MaxQuantity))
		}
	} else if len(s.Items) >= MaxItems {
		return nil, ruleErr(RuleItemLimit, fmt.Sprintf("an order holds at most %d distinct skus", MaxItems))
	}
	// The merged line and the new total must both stay representable; the
	// total is recomputed from the lines because the state's running total
	// saturates instead of failing.
	lines := append(removeLine(s.Items, c.SKU), order.Line{SKU: c.SKU, Quantity: qty, UnitPriceMinor: c.UnitPriceMinor})
	if _, err := order.SumLines(lines); err != nil {
		return nil, ruleErr(RuleTotalOverflow, fmt.Sprintf("adding sku %s: %v", c.SKU, err))
	}
	return []order.Event{order.ItemAdded(c)}, nil
}

// Decide emits ItemRemoved for a SKU on a draft order.
func (c RemoveItem) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	if err := requireDraft(s); err != nil {
		return nil, err
	}
	if _, ok := s.Item(c.SKU); !ok {
		return nil, fmt.Errorf("remove sku %s: %w", c.SKU, ErrItemNotFound)
	}
	return []order.Event{order.ItemRemoved{SKU: c.SKU}}, nil
}

func requireDraft(s order.State) error {
	if s.Status != order.StatusDraft {
		return ruleErr(RuleItemsRequireDraft, fmt.Sprintf("items can change only while the order is a draft; it is %s", s.Status))
	}
	return nil
}

// removeLine returns a new slice without sku's line; items is not modified.
func removeLine(items []order.Line, sku string) []order.Line {
	out := make([]order.Line, 0, len(items)+1)
	for _, l := range items {
		if l.SKU != sku {
			out = append(out, l)
		}
	}
	return out
}
