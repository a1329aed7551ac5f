package hub

import (
	"container/list"
	"context"
	"encoding/json"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
)

// orderCreated is the event that names an order's customer. The hub reads
// only this field, so it needs no dependency on the order package's codecs.
const orderCreated = "OrderCreated"

// customers maps order id → customer id for customer:<id> channels. Only
// OrderCreated carries the customer, so the map is filled from those events
// as they pass and, on a miss, from the store (version 1 of the order).
//
// Bounded: at most size entries, least recently used evicted first. A small
// LRU is written here rather than imported because it is 40 lines and a
// dependency would be larger than the code. Safe for concurrent use (the
// ingest goroutine and readers recovering customer channels).
type customers struct {
	size   int
	onLoad func() // counts store look-ups

	mu    sync.Mutex
	ll    *list.List // front = most recent; values are *custEntry
	items map[ulid.ULID]*list.Element
}

type custEntry struct {
	order    ulid.ULID
	customer string
}

func newCustomers(size int, onLoad func()) *customers {
	return &customers{size: size, onLoad: onLoad, ll: list.New(), items: make(map[ulid.ULID]*list.Element)}
}

// observe remembers the customer of an OrderCreated event.
func (c *customers) observe(e eventstore.RecordedEvent) {
	if e.Type != orderCreated {
		return
	}
	if cid, ok := customerIDOf(e); ok {
		c.add(e.StreamID, cid)
	}
}

// of returns the customer of e's order ("" if the order has none, or its
// first event is not an OrderCreated); a miss reads store (the live store
// for fan-out, the recovery store for replays).
func (c *customers) of(ctx context.Context, store Store, e eventstore.RecordedEvent) (string, error) {
	if e.Type == orderCreated {
		cid, _ := customerIDOf(e)
		return cid, nil
	}
	if cid, ok := c.get(e.StreamID); ok {
		return cid, nil
	}
	c.onLoad()
	evs, err := store.ReadStream(ctx, eventstore.Stream{ID: e.StreamID, Type: e.StreamType}, 1, 1)
	if err != nil {
		return "", err
	}
	cid := ""
	if len(evs) == 1 && evs[0].Type == orderCreated {
		cid, _ = customerIDOf(evs[0])
	}
	c.add(e.StreamID, cid) // "" is cached too: such an order never gets a customer
	return cid, nil
}

func customerIDOf(e eventstore.RecordedEvent) (string, bool) {
	var d struct {
		CustomerID string `json:"customer_id"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return "", false
	}
	return d.CustomerID, true
}

func (c *customers) get(order ulid.ULID) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[order]
	if !ok {
		return "", false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*custEntry).customer, true
}

func (c *customers) add(order ulid.ULID, customer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[order]; ok {
		el.Value.(*custEntry).customer = customer
		c.ll.MoveToFront(el)
		return
	}
	c.items[order] = c.ll.PushFront(&custEntry{order: order, customer: customer})
	if c.ll.Len() > c.size {
		old := c.ll.Remove(c.ll.Back()).(*custEntry)
		delete(c.items, old.order)
	}
}
