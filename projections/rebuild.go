package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Rebuild, step by step:
//
//  1. Mark the projection rebuilding; drop any shadow schema a previous,
//     interrupted rebuild left (a restart is always safe: the live tables
//     were never touched).
//  2. Create rebuild_<name> with copies of the projection's tables, without
//     indexes or keys, so COPY writes heap pages only. They are logged from
//     the start: loading UNLOGGED tables and then SET LOGGED rewrites every
//     table into the WAL, measured 30 % slower end to end on 1M orders.
//  3. Note the head position H. Positions are commit-ordered, so every event
//     at or below H is committed and visible: reading "position <= H" in
//     stream order is a consistent snapshot without holding a transaction.
//  4. Fold each order's events (the same fold and row mappings as the live
//     path) and COPY in chunks.
//  5. Add the keys and indexes of the live tables, and the grants.
//  6. Catch up from H with the live apply code, shadow schema first on the
//     search path, until close to the head.
//  7. In one transaction: lock the live tables in the live path's lock
//     order, apply what is left, and swap the schemas of the tables. Queries
//     wait for that transaction (milliseconds) and never see a half-built
//     model; the live projector resumes on the new tables and its version
//     check skips what the rebuild already applied.

// RebuildStats says what a rebuild did.
type RebuildStats struct {
	Orders, Events, CaughtUp int64
	// Undecodable counts orders cut short by an event no code can decode
	// (the live projector dead-letters the same events).
	Undecodable int64
	// Load is the time to the end of the load (step 4), shared by the
	// projections of one RebuildAll; Total runs to this projection's swap.
	Load, Total time.Duration
}

// rebuildChunk is how many orders are folded between COPYs: bounded memory.
const rebuildChunk = 5000

// Rebuild rebuilds p from the event store. owner must hold the schema
// owner's rights (it creates and swaps tables). progress, if set, is called
// with events read so far and the total to read.
func (r *Runtime) Rebuild(ctx context.Context, owner *pgxpool.Pool, p Projection, progress func(done, total int64)) (RebuildStats, error) {
	sts, err := r.RebuildAll(ctx, owner, []Projection{p}, progress)
	return sts[0], err
}

// RebuildAll rebuilds every projection of ps from one pass over the store:
// the events are read, decoded and folded once, and each order's changes go
// to every projection's builder. Each projection then gets its indexes,
// catch-up and swap on its own, in the order of ps. The stats are in the
// order of ps.
func (r *Runtime) RebuildAll(ctx context.Context, owner *pgxpool.Pool, ps []Projection, progress func(done, total int64)) ([]RebuildStats, error) {
	sts, err := r.rebuildAll(ctx, owner, ps, progress)
	if err != nil {
		// Say so in the status; the live tables are untouched unless the
		// projection was already swapped (then it reads "running").
		for _, p := range ps {
			var state string
			if e := owner.QueryRow(context.WithoutCancel(ctx), `SELECT state FROM projection_state WHERE projection = $1`, p.Name()).Scan(&state); e == nil && state == "rebuilding" {
				_ = setState(context.WithoutCancel(ctx), owner, p.Name(), "failed", "rebuild failed: "+err.Error()+" (run the rebuild again)")
			}
		}
	}
	return sts, err
}

func (r *Runtime) rebuildAll(ctx context.Context, owner *pgxpool.Pool, ps []Projection, progress func(done, total int64)) ([]RebuildStats, error) {
	start := time.Now()
	sts := make([]RebuildStats, len(ps))
	for _, p := range ps {
		if err := checkName(p); err != nil {
			return sts, err
		}
	}
	for _, p := range ps {
		if err := setState(ctx, owner, p.Name(), "rebuilding", "started "+start.UTC().Format(time.RFC3339)); err != nil {
			return sts, err
		}
		if err := createShadow(ctx, owner, "rebuild_"+p.Name(), rebuildTables(p)); err != nil {
			return sts, err
		}
	}
	head, err := r.store.HeadPosition(ctx)
	if err != nil {
		return sts, err
	}
	var st RebuildStats
	if err := r.load(ctx, owner, ps, head, &st, progress); err != nil {
		return sts, fmt.Errorf("rebuild %s: load: %w", names(ps), err)
	}
	st.Load = time.Since(start)
	for i, p := range ps {
		sts[i] = st
		if err := r.finish(ctx, owner, p, head, &sts[i]); err != nil {
			return sts, err
		}
		sts[i].Total = time.Since(start)
	}
	return sts, nil
}

func rebuildTables(p Projection) []string { return append([]string{versionsTable(p)}, p.Tables()...) }

func names(ps []Projection) string {
	n := make([]string, len(ps))
	for i, p := range ps {
		n[i] = p.Name()
	}
	return strings.Join(n, ", ")
}

// finish runs steps 5 to 7 for one loaded projection.
func (r *Runtime) finish(ctx context.Context, owner *pgxpool.Pool, p Projection, head int64, st *RebuildStats) error {
	shadow, tables := "rebuild_"+p.Name(), rebuildTables(p)
	if err := finishShadow(ctx, owner, shadow, tables); err != nil {
		return fmt.Errorf("rebuild %s: indexes: %w", p.Name(), err)
	}
	after := head
	for {
		n, last, err := r.catchUp(ctx, owner, p, shadow, after, st)
		if err != nil {
			return fmt.Errorf("rebuild %s: catch up: %w", p.Name(), err)
		}
		st.CaughtUp += n
		after = last
		if n < catchUpBatch {
			break
		}
	}
	if err := r.swap(ctx, owner, p, shadow, tables, after, st); err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", p.Name(), err)
	}
	return nil
}

func createShadow(ctx context.Context, owner *pgxpool.Pool, shadow string, tables []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;", shadow, shadow)
	for _, t := range tables {
		fmt.Fprintf(&b, "CREATE TABLE %s.%s (LIKE public.%s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);", shadow, t, t)
	}
	if _, err := owner.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("create shadow tables: %w", err)
	}
	return nil
}

// execer is what setState needs of a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func setState(ctx context.Context, db execer, name, state, detail string) error {
	_, err := db.Exec(ctx, `INSERT INTO projection_state (projection, state, detail) VALUES ($1, $2, $3)
		ON CONFLICT (projection) DO UPDATE SET state = excluded.state, detail = excluded.detail, updated_at = now()`,
		name, state, detail)
	if err != nil {
		return fmt.Errorf("projection %s state: %w", name, err)
	}
	return nil
}
