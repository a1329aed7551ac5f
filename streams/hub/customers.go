package hub

import (
	"context"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// customers maps order id → customer id for customer:<id> channels. Only
// the first event of an order (OrderCreated) names the customer, so the map
// is filled from those events as they pass and, on a miss, from the store
// (version 1 of the order). Bounded: an LRU of at most size entries. Safe
// for concurrent use (the ingest goroutine and readers recovering customer
// channels).
type customers struct {
	cache  *lru.Cache[ulid.ULID, string]
	onLoad func() // counts store look-ups
}

func newCustomers(size int, onLoad func()) (*customers, error) {
	cache, err := lru.New[ulid.ULID, string](size)
	if err != nil {
		return nil, err
	}
	return &customers{cache: cache, onLoad: onLoad}, nil
}

// observe remembers the customer of an order's first event.
func (c *customers) observe(e eventstore.RecordedEvent) {
	if cid, ok := order.CustomerOf(e.Type, e.Data); ok {
		c.cache.Add(e.StreamID, cid)
	}
}

// of returns the customer of e's order ("" if the order has none, or its
// first event names none); a miss reads store (the live store for fan-out,
// the recovery store for replays).
func (c *customers) of(ctx context.Context, store Store, e eventstore.RecordedEvent) (string, error) {
	if cid, ok := order.CustomerOf(e.Type, e.Data); ok {
		return cid, nil
	}
	if cid, ok := c.cache.Get(e.StreamID); ok {
		return cid, nil
	}
	c.onLoad()
	evs, err := store.ReadStream(ctx, eventstore.Stream{ID: e.StreamID, Type: e.StreamType}, 1, 1)
	if err != nil {
		return "", err
	}
	cid := ""
	if len(evs) == 1 {
		cid, _ = order.CustomerOf(evs[0].Type, evs[0].Data)
	}
	c.cache.Add(e.StreamID, cid) // "" is cached too: such an order never gets a customer
	return cid, nil
}

// ofOrder returns the customer of order id, "" when the order does not
// exist (or names none). An order that does not exist is not remembered:
// it may be created later, by anyone.
func (c *customers) ofOrder(ctx context.Context, store Store, id ulid.ULID) (string, error) {
	if cid, ok := c.cache.Get(id); ok {
		return cid, nil
	}
	c.onLoad()
	evs, err := store.ReadStream(ctx, eventstore.Stream{ID: id, Type: order.StreamType}, 1, 1)
	if err != nil || len(evs) == 0 {
		return "", err
	}
	cid, _ := order.CustomerOf(evs[0].Type, evs[0].Data)
	c.cache.Add(id, cid)
	return cid, nil
}
