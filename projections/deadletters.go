package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
)

// The states of a dead letter.
const (
	Parked    = "parked"    // waiting: its order is parked for its projection
	Replayed  = "replayed"  // applied by a replay (or found applied already)
	Discarded = "discarded" // given up by an operator; its order stays where it was
)

// DeadLetter is a row of projection_dead_letters.
type DeadLetter struct {
	ID         int64      `json:"id"`
	Projection string     `json:"projection"`
	OrderID    *ulid.ULID `json:"order_id,omitempty"` // nil: the message was not an event
	Version    int64      `json:"version,omitempty"`
	EventType  string     `json:"event_type,omitempty"`
	Reason     string     `json:"reason"`
	ParkedAt   time.Time  `json:"parked_at"`
	State      string     `json:"state"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Envelope is the message's value as it came; only Get fills it.
	Envelope []byte `json:"-"`
}

// Errors of the dead-letter operations, for callers to branch on.
var (
	ErrDeadLetterNotFound = errors.New("no such dead letter")
	ErrNotAnEvent         = errors.New("the dead letter is not an event (no order to apply it to): discard it")
	ErrStillFails         = errors.New("the dead letter still fails")
	ErrInvalidFilter      = errors.New("invalid dead-letter filter")
)

// MaxDeadLetters bounds one page of ListDeadLetters.
const MaxDeadLetters = 1000

// DeadLetterFilter selects a page of dead letters, newest first. Zero
// values select everything parked.
type DeadLetterFilter struct {
	Projection string
	OrderID    *ulid.ULID
	State      string // Parked (default), Replayed, Discarded, or "all"
	Before     int64  // only ids below it: the next page
	Limit      int    // 1 to MaxDeadLetters; 0 means 50
}

const deadLetterColumns = `id, projection, order_id, version, event_type, reason, parked_at, state, resolved_at`

// ListDeadLetters returns the page f selects.
func ListDeadLetters(ctx context.Context, db Querier, f DeadLetterFilter) ([]DeadLetter, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.State == "" {
		f.State = Parked
	}
	if f.Limit < 1 || f.Limit > MaxDeadLetters || f.Before < 0 || !slices.Contains([]string{Parked, Replayed, Discarded, "all"}, f.State) {
		return nil, fmt.Errorf("%w: limit 1 to %d, before not negative, state parked, replayed, discarded or all", ErrInvalidFilter, MaxDeadLetters)
	}
	var order pgtype.UUID
	if f.OrderID != nil {
		order = pgtype.UUID{Bytes: *f.OrderID, Valid: true}
	}
	rows, err := db.Query(ctx, `SELECT `+deadLetterColumns+`, ''::bytea FROM projection_dead_letters
		WHERE ($1 = '' OR projection = $1) AND ($2::uuid IS NULL OR order_id = $2) AND ($3 = 'all' OR state = $3)
		  AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.Projection, order, f.State, f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return pgx.CollectRows(rows, scanDeadLetter)
}

// GetDeadLetter returns dead letter id, its envelope included.
func GetDeadLetter(ctx context.Context, db Querier, id int64) (DeadLetter, error) {
	rows, err := db.Query(ctx, `SELECT `+deadLetterColumns+`, envelope FROM projection_dead_letters WHERE id = $1`, id)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("dead letter %d: %w", id, ErrDeadLetterNotFound)
	}
	return d, err
}

// Querier is a transaction, a connection or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func scanDeadLetter(r pgx.CollectableRow) (DeadLetter, error) {
	var (
		d       DeadLetter
		order   pgtype.UUID
		version pgtype.Int8
	)
	err := r.Scan(&d.ID, &d.Projection, &order, &version, &d.EventType, &d.Reason, &d.ParkedAt, &d.State, &d.ResolvedAt, &d.Envelope)
	if order.Valid {
		id := ulid.ULID(order.Bytes)
		d.OrderID, d.Version = &id, version.Int64
	}
	return d, err
}

// Resolved is what a replay or a discard did.
type Resolved struct {
	// Letters are the dead letters it resolved, in version order: a replay
	// resolves every parked letter of the order in the projection. Empty
	// when the letter was resolved already (Already says how): nothing
	// changed.
	Letters []DeadLetter
	Already string
	Applied int // events a replay applied (those a rebuild applied already are not)
}

// Replay re-drives dead letter id, and every other letter parked for its
// order in its projection, through the projection in version order,
// inside tx (the caller commits it, with its audit entry). The order's
// versions row is locked first, as every batch locks it. If an event still
// fails, the error wraps ErrStillFails and tx must be rolled back: nothing
// changes, the letters stay parked. A letter resolved already is a no-op.
func (r *Runtime) Replay(ctx context.Context, tx pgx.Tx, id int64) (Resolved, error) {
	d, err := GetDeadLetter(ctx, tx, id)
	if err != nil {
		return Resolved{}, err
	}
	if d.State != Parked {
		return Resolved{Already: d.State}, nil
	}
	if d.OrderID == nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w", id, ErrNotAnEvent)
	}
	p, err := ByName(d.Projection)
	if err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	order := pgtype.UUID{Bytes: *d.OrderID, Valid: true}
	sql := sqlOf(p)
	ids := arr[pgtype.UUID]{order}
	if _, err := tx.Exec(ctx, sql.createVersions, ids); err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: lock the order: %w", id, err)
	}
	if _, err := tx.Exec(ctx, sql.lockVersions, ids); err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: lock the order: %w", id, err)
	}
	rows, err := tx.Query(ctx, `UPDATE projection_dead_letters SET state = 'replayed', resolved_at = now()
		WHERE projection = $1 AND order_id = $2 AND state = 'parked'
		RETURNING `+deadLetterColumns+`, envelope`, p.Name(), order)
	if err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	letters, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	slices.SortFunc(letters, func(a, b DeadLetter) int { return cmp.Compare(a.Version, b.Version) })
	ds := make([]Delivery, len(letters))
	for i, l := range letters {
		ev, err := eventstore.UnmarshalEnvelope(l.Envelope)
		if err != nil {
			return Resolved{}, fmt.Errorf("dead letter %d: %w: %v", l.ID, ErrStillFails, err)
		}
		ds[i] = Delivery{Event: ev, Partition: noCheckpoint}
	}
	out, err := r.applyBatch(ctx, tx, p, ds)
	if err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w: %v", id, ErrStillFails, err)
	}
	if len(out.rejected) > 0 {
		return Resolved{}, fmt.Errorf("dead letter %d: %w: %v", id, ErrStillFails, out.rejected[0].Err)
	}
	return Resolved{Letters: letters, Applied: out.res.applied}, nil
}

// Discard gives up dead letter id inside tx (the caller commits it, with
// its audit entry): it is never applied. Its order stays at the version it
// reached, as a rebuild leaves an order at an event it cannot apply; the
// order's other parked letters stay parked, and a later event of the order
// is parked behind them. A letter resolved already is a no-op.
func Discard(ctx context.Context, tx pgx.Tx, id int64) (Resolved, error) {
	rows, err := tx.Query(ctx, `UPDATE projection_dead_letters SET state = 'discarded', resolved_at = now()
		WHERE id = $1 AND state = 'parked' RETURNING `+deadLetterColumns+`, ''::bytea`, id)
	if err != nil {
		return Resolved{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	letters, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil || len(letters) > 0 {
		return Resolved{Letters: letters}, err
	}
	d, err := GetDeadLetter(ctx, tx, id)
	return Resolved{Already: d.State}, err
}

// ParkedCounts is the number of parked dead letters per projection (every
// projection named, zero included).
func ParkedCounts(ctx context.Context, db Querier) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT projection, count(*) FROM projection_dead_letters WHERE state = 'parked' GROUP BY projection`)
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	out := map[string]int64{}
	for _, p := range All() {
		out[p.Name()] = 0
	}
	var (
		name string
		n    int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil })
	return out, err
}

// ParkedCounts is ParkedCounts on the runtime's database.
func (r *Runtime) ParkedCounts(ctx context.Context) (map[string]int64, error) {
	return ParkedCounts(ctx, r.pool)
}
