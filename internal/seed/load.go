package seed

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// Columns are the events columns a seed writes; position and recorded_at
// come from their defaults (see Row).
var Columns = []string{"stream_id", "version", "event_id", "stream_type", "event_type", "schema_version", "data", "metadata"}

// Copier is pgx's COPY FROM (a pool, a connection or a transaction).
type Copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// Partitioner creates the monthly event partitions of any months
// (eventstore.Store on the owner's pool).
type Partitioner interface {
	CreatePartitions(ctx context.Context, from, to time.Time) ([]string, error)
}

// Target is where Load writes.
type Target struct {
	Events     Copier // allowed to INSERT into events: the schema owner (no serving role is)
	Partitions Partitioner
	// Compare, when set, receives every batch as well, into CompareTable
	// (Columns, same defaults): a plain COPY to measure events against.
	// The two COPYs of a batch alternate in order, so that neither always
	// runs on a warmer cache.
	Compare      Copier
	CompareTable pgx.Identifier
}

// Result is what Load did, with the time spent in each table's COPYs.
type Result struct {
	Stats
	Batches     int
	EventsCopy  time.Duration // in COPY into events
	CompareCopy time.Duration // in COPY into the compare table
	Wall        time.Duration
}

// queued is how many generated batches may wait for the writer: enough to
// keep it busy, bounded so memory stays a few batches.
const queued = 2

// Load creates the partitions of cfg's window, then generates and writes
// every order. progress, if set, is called after each batch with the events
// written and the orders written so far.
func Load(ctx context.Context, reg *order.Registry, cfg Config, t Target, progress func(events, orders int64)) (Result, error) {
	start := time.Now()
	g, err := NewGenerator(reg, cfg)
	if err != nil {
		return Result{}, err
	}
	from, to := g.cfg.Window()
	if _, err := t.Partitions.CreatePartitions(ctx, from, to); err != nil {
		return Result{}, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		rows   []Row
		orders int64
		err    error
	}
	ch := make(chan batch, queued)
	go func() {
		defer close(ch)
		for {
			rows, err := g.Next()
			if rows == nil && err == nil {
				return
			}
			select {
			case ch <- batch{rows: rows, orders: g.stats.Orders, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var (
		res    Result
		events int64
		orders int64
	)
	for b := range ch {
		if b.err != nil {
			return res, b.err
		}
		copyTo := func(db Copier, table pgx.Identifier, spent *time.Duration) error {
			t0 := time.Now()
			n, err := db.CopyFrom(ctx, table, Columns, &source{rows: b.rows, i: -1})
			*spent += time.Since(t0)
			if err != nil {
				return fmt.Errorf("copy into %s: %w", table.Sanitize(), err)
			}
			if n != int64(len(b.rows)) {
				return fmt.Errorf("copy into %s: %d of %d rows", table.Sanitize(), n, len(b.rows))
			}
			return nil
		}
		steps := []func() error{
			func() error { return copyTo(t.Events, pgx.Identifier{"events"}, &res.EventsCopy) },
		}
		if t.Compare != nil {
			cmp := func() error { return copyTo(t.Compare, t.CompareTable, &res.CompareCopy) }
			if res.Batches%2 == 0 {
				steps = append(steps, cmp)
			} else {
				steps = append([]func() error{cmp}, steps...)
			}
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return res, err
			}
		}
		res.Batches++
		events += int64(len(b.rows))
		orders = b.orders
		if progress != nil {
			progress(events, orders)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Stats = g.Stats()
	res.Wall = time.Since(start)
	return res, nil
}

// source streams rows to CopyFrom without building [][]any.
type source struct {
	rows []Row
	i    int
	vals [8]any
}

func (s *source) Next() bool { s.i++; return s.i < len(s.rows) }

func (s *source) Values() ([]any, error) {
	r := &s.rows[s.i]
	s.vals = [8]any{
		pgtype.UUID{Bytes: r.StreamID, Valid: true}, r.Version, pgtype.UUID{Bytes: r.EventID, Valid: true},
		order.StreamType, r.Type, r.SchemaVersion, []byte(r.Data), []byte(r.Metadata),
	}
	return s.vals[:], nil
}

func (s *source) Err() error { return nil }

// Execer runs DDL (a pool or a connection in the schema owner's role).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateCompareTable (re)creates table with the events columns and the same
// defaults for position (from its own sequence, so the store's positions
// are untouched) and recorded_at, and no index, key, check or trigger: what
// a plain COPY of the same rows costs. logged says whether it is WAL-logged
// like events, or UNLOGGED.
func CreateCompareTable(ctx context.Context, db Execer, table string, logged bool) error {
	kind := "TABLE"
	if !logged {
		kind = "UNLOGGED TABLE"
	}
	id := pgx.Identifier{table}.Sanitize()
	seq := pgx.Identifier{table + "_position_seq"}.Sanitize()
	_, err := db.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; DROP SEQUENCE IF EXISTS %[2]s;
		CREATE SEQUENCE %[2]s AS bigint;
		CREATE %[3]s %[1]s (LIKE events);
		ALTER TABLE %[1]s ALTER recorded_at SET DEFAULT clock_timestamp(),
			ALTER position SET DEFAULT nextval('%[2]s'),
			ALTER metadata SET DEFAULT '{}', ALTER schema_version SET DEFAULT 1`, id, seq, kind))
	if err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	return nil
}

// DropCompareTable drops what CreateCompareTable made.
func DropCompareTable(ctx context.Context, db Execer, table string) error {
	_, err := db.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s; DROP SEQUENCE IF EXISTS %s`,
		pgx.Identifier{table}.Sanitize(), pgx.Identifier{table + "_position_seq"}.Sanitize()))
	return err
}
