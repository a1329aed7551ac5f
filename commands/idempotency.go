package commands

import (
	"context"
	"time"

	"github.com/orderflow/orderflow/eventstore"
)

// IdempotencyRetention is how long keys are kept; the API promises 24 h.
const IdempotencyRetention = 48 * time.Hour

// ExpireIdempotencyKeys deletes keys older than IdempotencyRetention. The
// keys live in the event store (eventstore.RequestKey), written with their
// events; commands are the store's only keyed writers, so their retention is
// the store's.
func ExpireIdempotencyKeys(ctx context.Context, store *eventstore.Store, now time.Time) (int64, error) {
	return store.ExpireKeys(ctx, now.Add(-IdempotencyRetention))
}
