package auth

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// StreamReader is the part of the event store StoreOwners reads.
type StreamReader interface {
	ReadStream(ctx context.Context, stream eventstore.Stream, fromVersion int64, limit int) ([]eventstore.RecordedEvent, error)
}

// DefaultOwnersCache is how many orders' owners StoreOwners remembers.
const DefaultOwnersCache = 100_000

// StoreOwners answers OrderOwner from an order's first event (OrderCreated
// names the customer, order.CustomerOf reads it: one index probe of the
// stream), remembered in a bounded LRU: an order's customer never changes.
// An order that does not exist is not remembered: it may be created later.
type StoreOwners struct {
	store StreamReader
	cache *lru.Cache[ulid.ULID, string]
}

// NewStoreOwners returns owners read from store, caching size of them.
func NewStoreOwners(store StreamReader, size int) (*StoreOwners, error) {
	cache, err := lru.New[ulid.ULID, string](size)
	if err != nil {
		return nil, err
	}
	return &StoreOwners{store: store, cache: cache}, nil
}

// OrderOwner implements OrderOwners.
func (o *StoreOwners) OrderOwner(ctx context.Context, id ulid.ULID) (string, error) {
	if cid, ok := o.cache.Get(id); ok {
		return cid, nil
	}
	evs, err := o.store.ReadStream(ctx, eventstore.Stream{ID: id, Type: order.StreamType}, 1, 1)
	if err != nil {
		return "", fmt.Errorf("owner of %s: %w", id, err)
	}
	if len(evs) == 0 {
		return "", nil
	}
	cid, _ := order.CustomerOf(evs[0].Type, evs[0].Data)
	o.cache.Add(id, cid)
	return cid, nil
}
