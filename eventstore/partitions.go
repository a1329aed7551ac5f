package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Partition maintenance. Streams are partitioned by the month their ULID was
// minted in; new streams land in the current month's partition, so the
// current month and the next few must exist before any stream of theirs is
// created. The store keeps PartitionsAhead months ready, at start and daily.

// PartitionsAhead is how many months beyond the current one are kept ready.
const PartitionsAhead = 3

// EnsurePartitions creates the partitions for the months from..to
// (inclusive) that do not exist yet, and returns their names. This is the
// serving path (the command role may call it): the database refuses months
// before last month or more than twelve ahead (see
// migrations/00005_roles.sql for why); CreatePartitions makes others.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) ([]string, error) {
	return s.partitions(ctx, "events_ensure_partition", from, to)
}

// CreatePartitions is EnsurePartitions for any months, for loading history
// and restores. It needs a pool with the schema owner's rights.
func (s *Store) CreatePartitions(ctx context.Context, from, to time.Time) ([]string, error) {
	return s.partitions(ctx, "events_create_partition", from, to)
}

func (s *Store) partitions(ctx context.Context, fn string, from, to time.Time) ([]string, error) {
	var names []string
	for m := monthOf(from); !m.After(monthOf(to)); m = m.AddDate(0, 1, 0) {
		var name string
		if err := s.db.QueryRow(ctx, `SELECT `+fn+`($1::date)`, m).Scan(&name); err != nil {
			return names, fmt.Errorf("ensure partition for %s: %w", m.Format("2006-01"), err)
		}
		names = append(names, name)
	}
	return names, nil
}

// EnsureAhead creates the partitions of now's month and of the
// PartitionsAhead months after it, where missing.
func (s *Store) EnsureAhead(ctx context.Context, now time.Time) error {
	_, err := s.EnsurePartitions(ctx, now, now.AddDate(0, PartitionsAhead, 0))
	return err
}

// MaintainPartitions keeps the current month and PartitionsAhead months
// ready, now and then every interval, until ctx ends.
func (s *Store) MaintainPartitions(ctx context.Context, interval time.Duration, now func() time.Time, log *slog.Logger) error {
	for {
		if err := s.EnsureAhead(ctx, now().UTC()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The months ahead leave weeks to fix this; keep trying.
			log.Error("partition maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Partition describes one monthly partition.
type Partition struct {
	Name  string
	Month time.Time
	Rows  int64 // estimate from pg_class.reltuples; -1 before the first ANALYZE
}

// Partitions lists the attached partitions, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.db.Query(ctx, `
		SELECT c.relname, c.reltuples::bigint
		  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'events'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.Name, &p.Rows); err != nil {
			return nil, err
		}
		if p.Month, err = time.Parse("events_y2006m01", p.Name); err != nil {
			return nil, fmt.Errorf("partition %q: unexpected name", p.Name)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DetachPartitionsBefore detaches (does not drop) every partition of a month
// before the given one, for archiving: the table stays in the database under
// its name, out of every read, to be dumped and dropped by an operator. It
// needs the schema owner's rights. It refuses to touch the current month.
func (s *Store) DetachPartitionsBefore(ctx context.Context, before, now time.Time) ([]string, error) {
	if monthOf(before).After(monthOf(now)) {
		return nil, fmt.Errorf("detach before %s: only months before the current one can be detached", before.Format("2006-01"))
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, p := range parts {
		if !p.Month.Before(monthOf(before)) {
			continue
		}
		// Names come from pg_class and match events_yYYYYmMM: safe to splice.
		if _, err := s.db.Exec(ctx, `ALTER TABLE events DETACH PARTITION `+p.Name); err != nil {
			return done, fmt.Errorf("detach %s: %w", p.Name, err)
		}
		done = append(done, p.Name)
	}
	return done, nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
