package projections

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// Runtime applies events to projections with exactly-once effect.
type Runtime struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	registry *order.Registry
	log      *slog.Logger
	metrics  *metrics
}

// NewRuntime returns a runtime; metrics go to reg (never the global registry).
func NewRuntime(pool *pgxpool.Pool, store *eventstore.Store, registry *order.Registry, reg prometheus.Registerer, log *slog.Logger) (*Runtime, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Runtime{pool: pool, store: store, registry: registry, log: log, metrics: m}, nil
}

// Delivery is one event as a transport delivered it.
type Delivery struct {
	Event eventstore.RecordedEvent
	// Partition is the Kafka partition the event came from: that
	// partition's checkpoint advances in the batch's transaction.
	Partition int
}

// Rejection is a delivery a batch did not apply, and why.
type Rejection struct {
	Index int // into the batch
	Err   error
}

// noCheckpoint as a Delivery's Partition moves no Kafka checkpoint (rebuild
// catch-up reads the store, not Kafka).
const noCheckpoint = -1

// ApplyBatch applies ds to p in one transaction (see batch.go): every
// delivery is applied, skipped as already applied, or rejected. A rejection
// is a delivery whose event, or an earlier event of its order, cannot be
// decoded, or whose gap cannot be filled from the store; the rest of the
// batch commits regardless, and the caller retries the rejected ones alone
// with Handle (which fails them again, for the dead-letter queue). ds must
// hold each partition's deliveries in the order the partition delivered
// them. An error means nothing was applied: see Transient for what to do.
func (r *Runtime) ApplyBatch(ctx context.Context, p Projection, ds []Delivery) ([]Rejection, error) {
	start := time.Now()
	out, err := r.applyBatch(ctx, nil, p, ds)
	if err != nil {
		return nil, fmt.Errorf("projection %s: batch of %d events: %w", p.Name(), len(ds), err)
	}
	r.metrics.observe(p.Name(), out.res, len(ds), time.Since(start))
	return out.rejected, nil
}

// Handle applies one delivered event, from Kafka partition partition, in its
// own transaction. A rejection is an error.
func (r *Runtime) Handle(ctx context.Context, p Projection, partition int, ev eventstore.RecordedEvent) error {
	start := time.Now()
	var res applyResult
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		res, err = r.apply(ctx, tx, p, partition, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection %s: order %s version %d: %w", p.Name(), ev.StreamID, ev.Version, err)
	}
	r.metrics.observe(p.Name(), res, 1, time.Since(start))
	return nil
}

// apply applies one event inside tx: a batch of one, its rejection an error.
func (r *Runtime) apply(ctx context.Context, tx pgx.Tx, p Projection, partition int, ev eventstore.RecordedEvent) (applyResult, error) {
	out, err := r.applyBatch(ctx, tx, p, []Delivery{{Event: ev, Partition: partition}})
	if err == nil && len(out.rejected) > 0 {
		err = out.rejected[0].Err
	}
	return out.res, err
}

// applyResult counts what a batch did, for metrics.
type applyResult struct {
	applied, skipped, gapFilled, parked int
}
