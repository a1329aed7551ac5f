package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// Rebuild, step by step:
//
//  1. Mark the projection rebuilding; drop any shadow schema a previous,
//     interrupted rebuild left (a restart is always safe: the live tables
//     were never touched).
//  2. Create rebuild_<name> with copies of the projection's tables, without
//     indexes or keys, so COPY writes heap pages only.
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
		n, last, err := r.catchUp(ctx, owner, p, shadow, after)
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
		fmt.Fprintf(&b, "CREATE UNLOGGED TABLE %s.%s (LIKE public.%s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);", shadow, t, t)
	}
	if _, err := owner.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("create shadow tables: %w", err)
	}
	return nil
}

// The load is a pipeline of three stages, so that reading, folding and
// writing overlap (each waits on something else: the scan on the server's
// reads, the fold on the CPU, the writer on COPY):
//
//   - the scanner reads the store in stream order and cuts it into jobs of
//     whole orders;
//   - foldWorkers decode and fold the jobs' orders in parallel (decoding is
//     most of the client's CPU) and encode each order's state once;
//   - the writer (the calling goroutine) hands every order's changes to
//     every projection's builder, which are not safe for concurrent use,
//     and COPYs every rebuildChunk orders.
//
// Orders reach the builders in no fixed order. That is fine: a builder's
// rows are either one order's own rows or sums of commutative deltas (see
// CustomerStats), so any order of AddOrder calls gives the same tables.
// Both queues are bounded (foldQueue jobs each), so memory stays a few
// chunks; a stage that errs cancels the others through the group's context.

// foldJobOrders is how many orders one fold job holds.
const foldJobOrders = 500

// foldQueue bounds each of the two queues, in jobs.
const foldQueue = 4

type foldJob struct {
	events []eventstore.RecordedEvent
	ends   []int // ends[i] is the end of order i in events
	// filled by a fold worker:
	folded []foldedOrder
}

type foldedOrder struct {
	changes []Change
	version int64
	state   []byte // JSON of the state after changes
	err     error  // the undecodable event that cut the order short
}

// load folds every order's events up to head into the shadow tables of ps.
func (r *Runtime) load(ctx context.Context, owner *pgxpool.Pool, ps []Projection, head int64, st *RebuildStats, progress func(int64, int64)) error {
	writer, err := owner.Acquire(ctx)
	if err != nil {
		return err
	}
	defer writer.Release()
	g, gctx := errgroup.WithContext(ctx)
	scanned := make(chan *foldJob, foldQueue)
	folded := make(chan *foldJob, foldQueue)

	g.Go(func() error {
		defer close(scanned)
		return r.scanJobs(gctx, head, scanned, st, progress)
	})
	workers := max(runtime.GOMAXPROCS(0), 1)
	var folders sync.WaitGroup
	for range workers {
		folders.Add(1)
		g.Go(func() error {
			defer folders.Done()
			for job := range scanned {
				if err := r.foldJob(job); err != nil {
					return err
				}
				select {
				case folded <- job:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() { folders.Wait(); close(folded) }()
	g.Go(func() error {
		err := r.writeJobs(gctx, writer, ps, folded, st)
		if err != nil {
			// Unblock the other stages: they select on ctx, which the
			// group cancels when this returns.
			go func() {
				for range folded {
				}
			}()
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if err := copyVersions(ctx, owner, ps); err != nil {
		return err
	}
	if progress != nil {
		progress(st.Events, head)
	}
	return nil
}

// scanJobs reads the store up to head and sends jobs of whole orders.
func (r *Runtime) scanJobs(ctx context.Context, head int64, out chan<- *foldJob, st *RebuildStats, progress func(int64, int64)) error {
	job := &foldJob{}
	send := func() error {
		select {
		case out <- job:
		case <-ctx.Done():
			return ctx.Err()
		}
		job = &foldJob{events: make([]eventstore.RecordedEvent, 0, cap(job.events))}
		return nil
	}
	err := r.store.ScanStreams(ctx, head, func(e eventstore.RecordedEvent) error {
		if n := len(job.events); n > 0 && job.events[n-1].StreamID != e.StreamID {
			job.ends = append(job.ends, n)
			if len(job.ends) == foldJobOrders {
				if err := send(); err != nil {
					return err
				}
			}
		}
		job.events = append(job.events, e)
		st.Events++
		if progress != nil && st.Events%10000 == 0 {
			progress(st.Events, head)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(job.events) > 0 {
		job.ends = append(job.ends, len(job.events))
		return send()
	}
	return nil
}

// foldJob folds every order of job.
func (r *Runtime) foldJob(job *foldJob) error {
	job.folded = make([]foldedOrder, len(job.ends))
	from := 0
	for i, end := range job.ends {
		changes, state, err := r.fold(job.events[from:end])
		from = end
		f := &job.folded[i]
		f.changes, f.err, f.version = changes, err, state.Version
		if len(changes) == 0 {
			continue
		}
		raw, err := json.Marshal(state)
		if err != nil {
			return err
		}
		f.state = raw
	}
	return nil
}

// writeJobs feeds folded orders to every builder and COPYs each chunk.
func (r *Runtime) writeJobs(ctx context.Context, writer *pgxpool.Conn, ps []Projection, in <-chan *foldJob, st *RebuildStats) error {
	builders := make([]Builder, len(ps))
	for i, p := range ps {
		builders[i] = p.NewBuilder()
	}
	var versions [][]any
	// Every projection's versions rows are the same (the order's version
	// and folded state), so they are sent once, into the first projection's
	// table; copyVersions copies them server-side to the others at the end,
	// which spares the server parsing the same JSON once per projection.
	flush := func(final bool) error {
		for i, p := range ps {
			if err := builders[i].Flush(ctx, writer, "rebuild_"+p.Name(), final); err != nil {
				return err
			}
		}
		if _, err := writer.CopyFrom(ctx, pgx.Identifier{"rebuild_" + ps[0].Name(), versionsTable(ps[0])}, []string{"stream_id", "version", "state"}, pgx.CopyFromRows(versions)); err != nil {
			return err
		}
		versions = versions[:0]
		return nil
	}
	for job := range in {
		for i := range job.folded {
			f := &job.folded[i]
			if f.err != nil {
				// As live: an event no code can decode is dead-lettered
				// there, and so is every later event of its order (each
				// finds a gap that cannot be filled). Keep what came before.
				st.Undecodable++
				r.log.Warn("rebuild: order stops at an undecodable event", "projections", names(ps), "err", f.err)
			}
			if len(f.changes) == 0 {
				continue
			}
			for _, b := range builders {
				b.AddOrder(f.changes)
			}
			versions = append(versions, []any{pgtype.UUID{Bytes: f.changes[0].Recorded.StreamID, Valid: true}, f.version, f.state})
			if st.Orders++; st.Orders%rebuildChunk == 0 {
				if err := flush(false); err != nil {
					return err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush(true)
}

// copyVersions copies the versions rows loaded into ps[0]'s shadow table to
// every other projection's, concurrently (each INSERT is one backend's work).
func copyVersions(ctx context.Context, owner *pgxpool.Pool, ps []Projection) error {
	g, ctx := errgroup.WithContext(ctx)
	from := "rebuild_" + ps[0].Name() + "." + versionsTable(ps[0])
	for _, p := range ps[1:] {
		g.Go(func() error {
			_, err := owner.Exec(ctx, "INSERT INTO rebuild_"+p.Name()+"."+versionsTable(p)+" (stream_id, version, state) SELECT stream_id, version, state FROM "+from)
			if err != nil {
				return fmt.Errorf("copy versions to %s: %w", p.Name(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// fold decodes and folds one order's events into changes. On an event it
// cannot decode it returns the changes before it, and the error.
func (r *Runtime) fold(evs []eventstore.RecordedEvent) ([]Change, order.State, error) {
	changes := make([]Change, 0, len(evs))
	var s order.State
	for _, rec := range evs {
		e, err := r.registry.Decode(rec.Type, rec.SchemaVersion, rec.Data)
		if err != nil {
			return changes, s, fmt.Errorf("order %s version %d: %w", rec.StreamID, rec.Version, err)
		}
		before := s
		s.Apply(e)
		changes = append(changes, Change{Before: before, After: s, Event: e, Recorded: rec})
	}
	return changes, s, nil
}

// finishShadow makes the shadow tables logged and gives them the live
// tables' keys, indexes and grants (the live definitions, so that a later
// migration finds the names it expects).
func finishShadow(ctx context.Context, owner *pgxpool.Pool, shadow string, tables []string) error {
	for _, t := range tables {
		rows, err := owner.Query(ctx, `
			SELECT 'ALTER TABLE %s ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
			  FROM pg_constraint WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('p', 'u')
			UNION ALL
			SELECT replace(indexdef, ' ON public.', ' ON %s.')
			  FROM pg_indexes i WHERE schemaname = 'public' AND tablename = $1
			   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)`, t)
		if err != nil {
			return err
		}
		stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		ddl := fmt.Sprintf("ALTER TABLE %s.%s SET LOGGED;", shadow, t)
		for _, s := range stmts {
			ddl += strings.ReplaceAll(s, "%s", shadow+"."+t) + ";"
		}
		ddl = strings.ReplaceAll(ddl, "ON "+shadow+"."+t+"."+t, "ON "+shadow+"."+t)
		ddl += fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s.%s TO orderflow_app;", shadow, t)
		if _, err := owner.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	_, err := owner.Exec(ctx, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO orderflow_app", shadow))
	return err
}

// catchUpBatch is how many events one catch-up transaction applies.
const catchUpBatch = 1000

// catchUp applies up to catchUpBatch events after "after" to the shadow
// tables through the live apply path, in one transaction.
func (r *Runtime) catchUp(ctx context.Context, owner *pgxpool.Pool, p Projection, shadow string, after int64) (int64, int64, error) {
	evs, err := r.store.ReadAll(ctx, after, catchUpBatch)
	if err != nil || len(evs) == 0 {
		return 0, after, err
	}
	err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		return r.applyShadow(ctx, tx, p, shadow, evs)
	})
	if err != nil {
		return 0, after, err
	}
	return int64(len(evs)), evs[len(evs)-1].Position, nil
}

func (r *Runtime) applyShadow(ctx context.Context, tx pgx.Tx, p Projection, shadow string, evs []eventstore.RecordedEvent) error {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+shadow+", public"); err != nil {
		return err
	}
	for _, ev := range evs {
		if _, err := r.apply(ctx, tx, p, noCheckpoint, ev); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, "SET LOCAL search_path = public")
	return err
}

// swap finishes the catch-up under the live tables' locks and exchanges the
// tables.
func (r *Runtime) swap(ctx context.Context, owner *pgxpool.Pool, p Projection, shadow string, tables []string, after int64, st *RebuildStats) error {
	return pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		live := make([]string, len(tables))
		for i, t := range tables {
			live[i] = "public." + t
		}
		// Versions table first, then the model's tables in Apply's order:
		// the live projector takes them in this order too.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(live, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		for {
			evs, err := r.store.ReadAll(ctx, after, catchUpBatch)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			if err := r.applyShadow(ctx, tx, p, shadow, evs); err != nil {
				return err
			}
			st.CaughtUp += int64(len(evs))
			after = evs[len(evs)-1].Position
		}
		retired := "retired_" + p.Name()
		ddl := fmt.Sprintf("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;", retired, retired)
		for _, t := range tables {
			ddl += fmt.Sprintf("ALTER TABLE public.%s SET SCHEMA %s; ALTER TABLE %s.%s SET SCHEMA public;", t, retired, shadow, t)
		}
		ddl += fmt.Sprintf("DROP SCHEMA %s CASCADE; DROP SCHEMA %s;", retired, shadow)
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
		return setState(ctx, tx, p.Name(), "running", fmt.Sprintf("rebuilt up to position %d", after))
	})
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
