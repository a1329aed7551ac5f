package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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

// noCheckpoint tells apply not to move a Kafka checkpoint (rebuild catch-up
// reads the store, not Kafka).
const noCheckpoint = -1

// Handle applies one delivered event, from Kafka partition partition, in its
// own transaction.
func (r *Runtime) Handle(ctx context.Context, p Projection, partition int, ev eventstore.RecordedEvent) error {
	var res applyResult
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		res, err = r.apply(ctx, tx, p, partition, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection %s: order %s version %d: %w", p.Name(), ev.StreamID, ev.Version, err)
	}
	r.metrics.observe(p.Name(), res)
	return nil
}

// applyResult counts what apply did, for metrics.
type applyResult struct {
	applied, skipped, gapFilled int
}

// apply is the exactly-once step. The order's versions row is locked first,
// so two deliveries of one order (a rebalance can briefly hand a partition to
// two consumers) serialize; the loser sees the new version and skips.
func (r *Runtime) apply(ctx context.Context, tx pgx.Tx, p Projection, partition int, ev eventstore.RecordedEvent) (applyResult, error) {
	var (
		res     applyResult
		current int64
		raw     []byte
		state   order.State
	)
	id := pgtype.UUID{Bytes: ev.StreamID, Valid: true}
	// An order's first delivery has no row to lock: create it (version 0,
	// rolled back with the transaction on failure) so that a concurrent
	// first delivery waits on it and then sees the applied version, instead
	// of also finding no row and applying the same events again.
	if _, err := tx.Exec(ctx, `INSERT INTO `+versionsTable(p)+` (stream_id, version, state) VALUES ($1, 0, '{}')
		ON CONFLICT (stream_id) DO NOTHING`, id); err != nil {
		return res, fmt.Errorf("create version row: %w", err)
	}
	err := tx.QueryRow(ctx, `SELECT version, state FROM `+versionsTable(p)+` WHERE stream_id = $1 FOR UPDATE`, id).Scan(&current, &raw)
	if err != nil {
		return res, fmt.Errorf("read version: %w", err)
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return res, fmt.Errorf("decode stored state: %w", err)
	}

	if ev.Version <= current {
		res.skipped = 1 // a redelivery: already applied
		return res, r.checkpoint(ctx, tx, p, partition, ev)
	}
	todo := []eventstore.RecordedEvent{ev}
	if missing := ev.Version - current - 1; missing > 0 {
		// A gap: Kafka delivered a later version first (or an earlier one was
		// lost). The store has every committed version: fill it from there.
		earlier, err := r.store.ReadStream(ctx, eventstore.Stream{ID: ev.StreamID, Type: ev.StreamType}, current+1, int(missing))
		if err != nil {
			return res, fmt.Errorf("fill gap: %w", err)
		}
		if int64(len(earlier)) != missing {
			return res, fmt.Errorf("fill gap: store returned %d of %d events before version %d", len(earlier), missing, ev.Version)
		}
		todo = append(earlier, ev)
		res.gapFilled = len(earlier)
	}
	for _, rec := range todo {
		e, err := r.registry.Decode(rec.Type, rec.SchemaVersion, rec.Data)
		if err != nil {
			return res, fmt.Errorf("decode version %d: %w", rec.Version, err)
		}
		before := state
		state.Apply(e)
		if err := p.Apply(ctx, tx, Change{Before: before, After: state, Event: e, Recorded: rec}); err != nil {
			return res, fmt.Errorf("apply version %d: %w", rec.Version, err)
		}
		res.applied++
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		return res, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+versionsTable(p)+` (stream_id, version, state) VALUES ($1, $2, $3)
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state`,
		id, ev.Version, stateJSON); err != nil {
		return res, fmt.Errorf("record version: %w", err)
	}
	return res, r.checkpoint(ctx, tx, p, partition, ev)
}

func (r *Runtime) checkpoint(ctx context.Context, tx pgx.Tx, p Projection, partition int, ev eventstore.RecordedEvent) error {
	if partition == noCheckpoint {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (projection, partition, position, recorded_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (projection, partition) DO UPDATE
		SET position = greatest(projection_checkpoints.position, excluded.position),
		    recorded_at = CASE WHEN excluded.position > projection_checkpoints.position
		                       THEN excluded.recorded_at ELSE projection_checkpoints.recorded_at END,
		    updated_at = now()`,
		p.Name(), partition, ev.Position, ev.RecordedAt)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
