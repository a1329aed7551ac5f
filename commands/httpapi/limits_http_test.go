package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// fill appends item changes (the mug removed and added again) to order id
// directly through the store until the stream holds n events, as a long
// editing session or a stream from before the cap would.
func (a *api) fill(id string, n int64) {
	a.t.Helper()
	store, reg := eventstore.New(a.db.Command), order.NewRegistry()
	stream := eventstore.Stream{ID: ulid.MustParse(id), Type: order.StreamType}
	ctx := context.Background()
	v, err := store.StreamVersion(ctx, stream)
	if err != nil {
		a.t.Fatal(err)
	}
	for v < n {
		batch := make([]eventstore.EventData, min(n-v, eventstore.MaxAppend))
		for i := range batch {
			var e order.Event = order.ItemAdded{SKU: mug.SKU, Name: mug.Name, Quantity: mug.Quantity, UnitPriceMinor: mug.UnitPriceMinor}
			if (v+int64(i))%2 == 0 {
				e = order.ItemRemoved{SKU: mug.SKU}
			}
			name, schema, data, err := reg.Encode(e)
			if err != nil {
				a.t.Fatal(err)
			}
			batch[i] = eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: schema, Data: data}
		}
		res, err := store.Append(ctx, stream, eventstore.Exact(v), batch)
		if err != nil {
			a.t.Fatal(err)
		}
		v = res.ToVersion
	}
}

func TestTheEventCapIsARuleViolation(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	pay := map[string]any{"amount_minor": 2500, "currency": "EUR", "reference": "psp-1"}

	t.Run("item changes stop at the cap less what the rest of the order's life needs", func(t *testing.T) {
		id := a.create(mug) // version 2: the mug is on the order
		a.fill(id, order.MaxEvents-4)
		before := a.rows()
		r := a.post("/v1/orders/"+id+"/items", plate)
		r.want(t, http.StatusConflict, "rule-violation")
		if p := r.problem(t); p.Rule != "order-event-limit-exceeded" {
			t.Errorf("rule = %q, want order-event-limit-exceeded", p.Rule)
		}
		a.unchanged(before)
		for _, step := range []struct {
			path string
			body any
		}{{"/place", ""}, {"/payments", pay}, {"/ship", map[string]any{"carrier": "DHL", "tracking_number": "T1"}}, {"/deliver", ""}} {
			a.post("/v1/orders/"+id+step.path, step.body).want(t, http.StatusOK, "")
		}
		if evs := a.envelopes(id); len(evs) != 1000 {
			t.Errorf("the delivered order has %d events on its first page, want 1000", len(evs))
		}
	})
	t.Run("a stream past the cap refuses every command without folding it", func(t *testing.T) {
		id := a.create(mug)
		a.fill(id, order.MaxEvents+1)
		before := a.rows()
		r := a.post("/v1/orders/"+id+"/place", "")
		r.want(t, http.StatusConflict, "rule-violation")
		if p := r.problem(t); p.Rule != "order-event-limit-exceeded" {
			t.Errorf("rule = %q, want order-event-limit-exceeded", p.Rule)
		}
		a.unchanged(before)
	})
}
