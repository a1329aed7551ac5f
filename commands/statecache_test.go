package commands

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/order"
)

func TestTheStateCacheIsBoundedAndNeverGoesBack(t *testing.T) {
	t.Parallel()
	c := newStateCache(2)
	a, b, d := ulid.Make(), ulid.Make(), ulid.Make()
	at := func(v int64) order.State { return order.State{Version: v} }

	c.put(a, at(3))
	c.put(a, at(2)) // a loser of a race puts back an older state
	if st, _ := c.get(a); st.Version != 3 {
		t.Fatalf("an older state replaced a newer one: version %d", st.Version)
	}
	c.put(b, at(1))
	c.get(a) // a is now the most recently used
	c.put(d, at(1))
	if c.len() != 2 {
		t.Fatalf("%d entries, want the bound 2", c.len())
	}
	if _, ok := c.get(b); ok {
		t.Fatal("the least recently used entry was kept")
	}
	c.dropBelow(a, 3)
	if _, ok := c.get(a); !ok {
		t.Fatal("dropBelow dropped a state at the version the stream is known to have")
	}
	c.dropBelow(a, 4)
	if _, ok := c.get(a); ok {
		t.Fatal("dropBelow kept a state older than the stream")
	}
}

// The service keeps the states it decides on and appends, and its cache
// stays within its bound however many orders pass through.
func TestTheServiceCachesWhatItAppends(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	store := eventstore.New(db.Command)
	if err := store.EnsureAhead(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := NewService(Config{Store: store, Registry: order.NewRegistry(), CachedOrders: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ids []ulid.ULID
	for range 5 {
		id := ulid.Make()
		ids = append(ids, id)
		create := CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR", Items: []ItemInput{{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: 100}}}
		if _, err := s.Execute(ctx, Request{OrderID: id, Command: create}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Execute(ctx, Request{OrderID: id, Command: PlaceOrder{}}); err != nil {
			t.Fatal(err)
		}
		st, ok := s.states.get(id)
		if !ok || st.Version != 3 || st.Status != order.StatusPlaced {
			t.Fatalf("cached %+v %v after placing, want version 3 placed", st, ok)
		}
	}
	if n := s.states.len(); n != 3 {
		t.Fatalf("%d cached states, want the bound 3", n)
	}
	// An evicted order is read from the store again.
	if _, err := s.Execute(ctx, Request{OrderID: ids[0], Command: RecordPayment{AmountMinor: 100, Currency: "EUR", Reference: "p"}}); err != nil {
		t.Fatal(err)
	}
	if st, ok := s.states.get(ids[0]); !ok || st.Version != 4 {
		t.Fatalf("cached %+v %v after paying, want version 4", st, ok)
	}
}
