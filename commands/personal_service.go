package commands

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/order"
)

// ErrNoKeys means a command carries personal data and the service has no
// keys to seal it with (a configuration error, answered 500).
var ErrNoKeys = errors.New("personal data cannot be stored: no data keys configured")

// seal returns evs with every personal field sealed with the customer's
// data key, bound to the order and the field: the decisions see plaintext,
// the store, the cache and everything downstream only ciphertext.
func (s *Service) seal(ctx context.Context, st order.State, evs []order.Event) ([]order.Event, error) {
	out := evs
	for i, e := range evs {
		var err error
		switch e := e.(type) {
		case order.OrderCreated:
			if e.Email == "" && e.ShippingAddress == "" {
				continue
			}
			err = s.sealWith(ctx, e.CustomerID, e.OrderID, func(k pii.DataKey) (err error) {
				if e.Email, err = k.Seal(e.OrderID, order.FieldEmail, e.Email); err != nil {
					return err
				}
				e.ShippingAddress, err = k.Seal(e.OrderID, order.FieldShippingAddress, e.ShippingAddress)
				return err
			})
			out = replace(out, evs, i, e)
		case order.ShippingAddressChanged:
			err = s.sealWith(ctx, st.CustomerID, st.ID, func(k pii.DataKey) (err error) {
				e.ShippingAddress, err = k.Seal(st.ID, order.FieldShippingAddress, e.ShippingAddress)
				return err
			})
			out = replace(out, evs, i, e)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// replace sets out[i] = e, copying evs first so that the caller's slice is
// never written through.
func replace(out, evs []order.Event, i int, e order.Event) []order.Event {
	if &out[0] == &evs[0] {
		out = append([]order.Event(nil), evs...)
	}
	out[i] = e
	return out
}

func (s *Service) sealWith(ctx context.Context, customerID string, orderID ulid.ULID, fn func(pii.DataKey) error) error {
	if s.keys == nil {
		return ErrNoKeys
	}
	k, err := s.keys.ForCustomer(ctx, customerID)
	if err != nil {
		return fmt.Errorf("order %s: %w", orderID, err)
	}
	return fn(k)
}

// recordPersonal notes a new order that holds personal data in its
// customer's list, for a later erasure (pii.Keys.RecordOrder).
func (s *Service) recordPersonal(ctx context.Context, evs []order.Event) error {
	for _, e := range evs {
		if c, ok := e.(order.OrderCreated); ok && (c.Email != "" || c.ShippingAddress != "") {
			return s.keys.RecordOrder(ctx, c.CustomerID, c.OrderID)
		}
	}
	return nil
}

// erasePage is how many of a customer's orders an erasure marks per round.
const erasePage = 100

// Erasure is what ErasePersonalData did.
type Erasure struct {
	CustomerID string `json:"customer_id"`
	// KeyDestroyed is false when the customer had no data key (never had
	// personal data, or was erased before).
	KeyDestroyed bool `json:"key_destroyed"`
	// OrdersMarked counts the orders that got PersonalDataErased.
	OrdersMarked int `json:"orders_marked"`
}

// ErasePersonalData forgets a customer: it destroys the data key (from then
// on no reader opens the customer's personal data), then appends
// PersonalDataErased to each order noted for the customer, a page at a
// time; a failure part-way leaves the rest for a retry. An order at its
// event cap gets no event and is erased all the same.
func (s *Service) ErasePersonalData(ctx context.Context, customerID string, req Request) (Erasure, error) {
	if s.keys == nil {
		return Erasure{}, ErrNoKeys
	}
	out := Erasure{CustomerID: customerID}
	var err error
	out.KeyDestroyed, err = s.keys.Erase(ctx, customerID, func(ctx context.Context, tx pgx.Tx, destroyed bool) error {
		return audit.Record(ctx, tx, audit.Entry{Actor: cmp.Or(req.Metadata.Actor, "unknown"), Action: audit.PersonalDataErased,
			Target: customerID, Detail: map[string]any{"key_destroyed": destroyed, "request_id": req.Metadata.RequestID}})
	})
	if err != nil {
		return out, err
	}
	for {
		ids, err := s.keys.Orders(ctx, customerID, erasePage)
		if err != nil || len(ids) == 0 {
			return out, err
		}
		for _, id := range ids {
			r := req
			r.OrderID, r.Command = id, ErasePersonalData{}
			_, err := s.Execute(ctx, r)
			var rule *RuleError
			switch {
			case err == nil:
				out.OrdersMarked++
			case errors.Is(err, ErrOrderNotFound), errors.As(err, &rule) && rule.Rule == RuleEventLimit:
			default:
				return out, fmt.Errorf("erase personal data of order %s: %w", id, err)
			}
		}
		if err := s.keys.ForgetOrders(ctx, ids); err != nil {
			return out, err
		}
	}
}
