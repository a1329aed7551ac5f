package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
)

// Filter selects events for a scan in global order. Zero fields select
// everything.
type Filter struct {
	AfterPosition int64     // exclusive
	UpToPosition  int64     // inclusive; 0 means the head when the scan starts
	From, To      time.Time // recorded_at in [From, To)
	Types         []string
	Stream        *ulid.ULID
}

// scanPage is how many events one query of a scan returns: memory stays
// constant whatever the range.
const scanPage = 1000

// Bounds turns f's times into positions and fixes the upper bound, so that
// a scan is a range of the position index. recorded_at is taken under the
// global append lock (the insert's clock_timestamp), so it does not
// decrease along positions and a time range is a position range.
func (s *Store) Bounds(ctx context.Context, f Filter) (after, upTo int64, err error) {
	after, upTo = f.AfterPosition, f.UpToPosition
	if upTo == 0 {
		if upTo, err = s.HeadPosition(ctx); err != nil {
			return 0, 0, err
		}
	}
	if !f.From.IsZero() {
		var p *int64
		if err := s.db.QueryRow(ctx, `SELECT min(position) FROM events WHERE recorded_at >= $1`, f.From).Scan(&p); err != nil {
			return 0, 0, fmt.Errorf("position at %s: %w", f.From, err)
		}
		if p == nil {
			return 0, 0, nil // nothing recorded since From
		}
		after = max(after, *p-1)
	}
	if !f.To.IsZero() {
		var p *int64
		if err := s.db.QueryRow(ctx, `SELECT max(position) FROM events WHERE recorded_at < $1`, f.To).Scan(&p); err != nil {
			return 0, 0, fmt.Errorf("position at %s: %w", f.To, err)
		}
		if p == nil {
			return 0, 0, nil
		}
		upTo = min(upTo, *p)
	}
	return after, upTo, nil
}

// Scan calls fn for every event matching f, in global order, a page at a
// time. fn returning an error stops the scan with that error.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(RecordedEvent) error) error {
	after, upTo, err := s.Bounds(ctx, f)
	if err != nil || upTo <= after {
		return err
	}
	// Conditions are spliced in only when set, so each shape gets its own
	// plan: with "$3 IS NULL OR ..." a cached generic plan could not prune.
	where := `WHERE position > $1 AND position <= $2`
	args := []any{after, upTo}
	// One stream: its partition's primary key, in version order, which is
	// its position order. Otherwise the position index, a page at a time.
	order := "position"
	if f.Stream != nil {
		args = append(args, uuidOf(*f.Stream))
		where += fmt.Sprintf(" AND stream_id = $%d", len(args))
		order = "stream_id, version"
	}
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		where += fmt.Sprintf(" AND event_type = ANY ($%d)", len(args))
	}
	query := selectEvents + where + " ORDER BY " + order + fmt.Sprintf(" LIMIT %d", scanPage)
	for {
		args[0] = after
		rows, err := s.db.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		n := 0
		err = forEach(rows, func(e RecordedEvent) error {
			n++
			after = e.Position
			return fn(e)
		})
		if err != nil {
			return err
		}
		if n < scanPage {
			return nil
		}
	}
}

func forEach(rows pgx.Rows, fn func(RecordedEvent) error) error {
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
