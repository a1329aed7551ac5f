package commands

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

// DefaultCachedOrders is how many order states a service keeps. A state is
// a few hundred bytes plus its lines (at most MaxItems), so the default
// holds typically a few MiB and at worst (every order at 100 lines) under
// 100 MiB.
const DefaultCachedOrders = 10_000

// stateCache keeps the states of recently used orders, each with the version
// it was folded to, so that a command on an order this process touched
// lately decides without reading the stream. It is a hint, never the truth:
// another process may have appended since, and the append's expected-version
// check judges every decision made on a cached state (see Service.attempt).
// Every entry is a state the store really had: a fold of committed events,
// or a state the process decided on plus the events it then appended at
// exactly that version. Bounded by entries, least recently used evicted.
//
// It pays when an order's commands reach the process that served the
// previous one: one api process, or several behind a balancer that routes
// by order. When another process wrote in between, a decision on the stale
// entry costs a refused append and a read of the stream's tail, one round
// trip more than reading the stream first.
//
// A nil *stateCache is a cache that keeps nothing.
type stateCache struct {
	mu  sync.Mutex
	lru *simplelru.LRU[ulid.ULID, order.State]
}

func newStateCache(size int) *stateCache {
	l, err := simplelru.NewLRU[ulid.ULID, order.State](size, nil)
	if err != nil {
		panic(err) // size is a positive constant or a test's
	}
	return &stateCache{lru: l}
}

func (c *stateCache) get(id ulid.ULID) (order.State, bool) {
	if c == nil {
		return order.State{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(id)
}

// put keeps st unless the entry is already at a later version: a goroutine
// that lost a race to another on the same order must not put back an older
// state than the winner's.
func (c *stateCache) put(id ulid.ULID, st order.State) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(id); ok && old.Version >= st.Version {
		return
	}
	c.lru.Add(id, st)
}

// dropBelow forgets the order's state if it is older than version: the
// stream is known to be at least there.
func (c *stateCache) dropBelow(id ulid.ULID, version int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(id); ok && old.Version < version {
		c.lru.Remove(id)
	}
}

// drop forgets the order's state: what happened to it is unknown.
func (c *stateCache) drop(id ulid.ULID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(id)
}

func (c *stateCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
