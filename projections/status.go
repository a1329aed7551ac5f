package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/eventstore"
)

// Status is what `GET /v1/projections` and `orderflow projections status`
// show for one projection.
type Status struct {
	Name   string `json:"name"`
	State  string `json:"state"` // running, rebuilding or failed
	Detail string `json:"detail,omitempty"`
	// Position is the highest global position applied from Kafka.
	Position int64 `json:"position"`
	// LagEvents is the store's head minus Position. Partitions are applied
	// concurrently, so a few events below Position may still be in flight:
	// it is a close estimate, exact when the projection is idle.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is the age of the oldest event above Position, 0 when
	// caught up.
	LagSeconds float64   `json:"lag_seconds"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// Statuses reports every projection in ps.
func Statuses(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, ps []Projection, now time.Time) ([]Status, error) {
	head, err := store.HeadPosition(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		s := Status{Name: p.Name(), State: "running"}
		var updated *time.Time
		err := pool.QueryRow(ctx, `SELECT coalesce(max(position), 0), max(updated_at) FROM projection_checkpoints WHERE projection = $1`,
			p.Name()).Scan(&s.Position, &updated)
		if err != nil {
			return nil, fmt.Errorf("projection %s checkpoint: %w", p.Name(), err)
		}
		if updated != nil {
			s.UpdatedAt = *updated
		}
		err = pool.QueryRow(ctx, `SELECT state, detail FROM projection_state WHERE projection = $1`, p.Name()).Scan(&s.State, &s.Detail)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("projection %s state: %w", p.Name(), err)
		}
		s.LagEvents = max(head-s.Position, 0)
		if s.LagEvents > 0 {
			evs, err := store.ReadAll(ctx, s.Position, 1)
			if err != nil {
				return nil, err
			}
			if len(evs) == 1 {
				s.LagSeconds = max(now.Sub(evs[0].RecordedAt).Seconds(), 0)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// SetState records a projection's state (the projector marks itself failed
// when it stops on an error, and running when it starts).
func SetState(ctx context.Context, pool *pgxpool.Pool, name, state, detail string) error {
	return setState(ctx, pool, name, state, detail)
}

// All returns every projection, in the order they are listed to operators.
func All() []Projection {
	return []Projection{OrderSummary{}, CustomerStats{}, SalesDaily{}, StatusCounts{}}
}

// ByName is the projection named name.
func ByName(name string) (Projection, error) {
	names := make([]string, 0, 4)
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
		names = append(names, p.Name())
	}
	return nil, fmt.Errorf("unknown projection %q (want one of %v)", name, names)
}
