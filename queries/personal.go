package queries

import (
	"context"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/order"
)

// open opens the personal fields of a page of summaries in place, with one
// query for their customers' keys: the plaintext, or order.Erased where
// the key was destroyed (internal/pii/DESIGN.md).
func (a *API) open(ctx context.Context, page ...Summary) error {
	if a.opts.Keys == nil {
		return nil
	}
	values := make([]pii.Value, 0, 2*len(page))
	for i := range page {
		s := &page[i]
		id, err := ulid.ParseStrict(s.OrderID)
		if err != nil {
			return err
		}
		for field, v := range map[string]*string{order.FieldEmail: s.Email, order.FieldShippingAddress: s.ShippingAddress} {
			if v != nil {
				values = append(values, pii.Value{Stream: id, Field: field, Text: v})
			}
		}
	}
	return a.opts.Keys.Open(ctx, values...)
}
