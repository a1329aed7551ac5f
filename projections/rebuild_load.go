package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// The bulk load of a rebuild: scan, fold in parallel, write with COPY.

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
// It is a pipeline of three stages, so that reading, folding and
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
		evs := job.events[from:end]
		changes, state, err := r.fold(order.State{}, evs, make([]Change, 0, len(evs)))
		from = end
		if err != nil {
			err = fmt.Errorf("order %s: %w", evs[0].StreamID, err)
		}
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
