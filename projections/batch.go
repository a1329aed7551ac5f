package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// The exactly-once step, for a batch of deliveries in one transaction and
// three round trips whatever the batch's size:
//
//  1. Group the deliveries by order: orders sorted by stream id, each
//     order's deliveries sorted by version (a partition delivers one
//     order's versions in order, but a redelivery can repeat them).
//  2. Round trip 1 (begin, create, lock, pipelined): create the versions
//     rows that do not exist yet, at version 0, then lock and read every
//     versions row of the batch with one SELECT ... WHERE stream_id =
//     ANY($1) ORDER BY stream_id FOR UPDATE. The rows are locked in stream
//     id order, as every other batch locks them, so two batches holding
//     the same orders (a rebalance hands a partition to a new consumer
//     while the old one still applies; a rebuild's catch-up) serialize
//     instead of deadlocking, and the second sees the first's versions and
//     skips. Creating the rows first (in the same order) is what makes an
//     order's first delivery lockable: a concurrent first delivery waits
//     for the row and then sees the version applied, instead of also
//     finding no row and applying the same events again.
//  3. In memory: per order, the deliveries at or below the stored version
//     are redeliveries and skipped; the rest must continue the stored
//     version without a hole, or the missing versions are read from the
//     event store (a gap: a lost or reordered delivery) and the whole range
//     is taken from there. Fold from the stored state, hand the order's
//     changes to the projection's builder, which sums them with the other
//     orders' (a counter row is written once per batch, not once per event).
//  4. Round trip 2 (write, pipelined): the versions rows (version and state
//     of every order that changed; the version-0 rows of orders that
//     applied nothing are deleted again), the builder's set-based statements
//     (one per table), and the checkpoints of the batch's partitions, all
//     with one array parameter per column.
//  5. Round trip 3: commit.
//
// An order whose event cannot be decoded (or whose stored state cannot, or
// whose gap the store cannot fill) keeps what it applied before that event
// and has its later deliveries rejected; every other order is unaffected.
// Those deliveries also leave the checkpoint alone.
//
// Lock order, for every transaction that writes a projection: versions rows
// (stream id order), then the model's tables in Tables order, each table's
// shared rows in its builder's key order, then the checkpoint rows
// (partition order). Rows of one order (its versions row, summary, lines)
// are written only under that order's versions row lock.

// batchOutcome is what applyBatch did.
type batchOutcome struct {
	res      applyResult
	rejected []Rejection // by Index, ascending
}

// applyBatch applies ds inside tx, or, when tx is nil, in a transaction of
// its own that its first round trip begins and that it commits.
func (r *Runtime) applyBatch(ctx context.Context, tx pgx.Tx, p Projection, ds []Delivery) (out batchOutcome, err error) {
	if len(ds) == 0 {
		return out, nil
	}
	w := scratchPool.Get().(*scratch)
	defer w.release()
	w.group(ds)
	sql := sqlOf(p)

	lock := &pgx.Batch{}
	owned := tx == nil
	if owned {
		lock.BeginTx(pgx.TxOptions{})
	}
	lock.Queue(sql.createVersions, w.ids)
	lock.Queue(sql.lockVersions, w.ids)
	lock.Queue(parkedOrders, p.Name(), w.ids)
	var br pgx.BatchResults
	if owned {
		br = r.pool.SendBatch(ctx, lock)
		if tx = br.Tx(); tx != nil {
			// A no-op after Commit; after a failure it ends the
			// transaction and gives the connection back.
			defer func() { _ = tx.Rollback(ctx) }()
		}
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return out, fmt.Errorf("begin: %w", err)
		}
	} else {
		br = tx.SendBatch(ctx, lock)
	}
	err = w.readVersions(br)
	if err == nil {
		err = w.readParked(br)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return out, err
	}

	b := p.NewBuilder()
	for o, run := range w.runs {
		cur := w.stored[o]
		deliveries := w.idx[run.from:run.to]
		todo, skipped, gapless := w.pending(ds, deliveries, cur.version)
		out.res.skipped += skipped
		if len(todo) == 0 {
			continue
		}
		if cur.version == 0 {
			// Until it applies something the order must not keep the row
			// this batch created: a rebuild would not have it.
			w.unborn = append(w.unborn, w.ids[o])
		}
		if w.parks(o, cur.version) {
			if err := w.parkAll(o, todo); err != nil {
				return out, err
			}
			out.res.parked += len(todo)
			continue
		}
		if !gapless {
			last := todo[len(todo)-1].Version
			first := ds[deliveries[0]].Event
			recs, err := r.store.ReadStream(ctx, eventstore.Stream{ID: first.StreamID, Type: first.StreamType}, cur.version+1, int(last-cur.version))
			if err != nil {
				return out, fmt.Errorf("fill gap of order %s: %w", first.StreamID, err)
			}
			if int64(len(recs)) != last-cur.version {
				w.reject(&out, ds, deliveries, cur.version, fmt.Errorf("fill gap: store returned %d of %d events up to version %d", len(recs), last-cur.version, last))
				continue
			}
			out.res.gapFilled += len(recs) - len(todo)
			todo = recs
		}
		var state order.State
		if cur.version > 0 {
			if err := json.Unmarshal(w.state(o), &state); err != nil {
				w.reject(&out, ds, deliveries, cur.version, fmt.Errorf("decode stored state: %w", err))
				continue
			}
		}
		from := len(w.changes)
		var ferr error
		w.changes, state, ferr = r.fold(state, todo, w.changes)
		if mine := w.changes[from:]; len(mine) > 0 {
			b.AddOrder(mine)
			if err := w.versions.add(w.ids[o], state); err != nil {
				return out, err
			}
			out.res.applied += len(mine)
			if cur.version == 0 {
				w.unborn = w.unborn[:len(w.unborn)-1]
			}
		}
		if ferr != nil {
			w.reject(&out, ds, deliveries, state.Version, ferr)
		}
	}
	slices.SortFunc(out.rejected, func(a, b Rejection) int { return a.Index - b.Index })

	write := &pgx.Batch{}
	if len(w.versions.ids) > 0 {
		write.Queue(sql.updateVersions, w.versions.ids, w.versions.numbers, w.versions.states())
	}
	if len(w.unborn) > 0 {
		write.Queue(sql.deleteUnborn, w.unborn)
	}
	b.Queue(write)
	w.queueParked(write, p.Name())
	if w.checkpoints(ds); len(w.cp.partitions) > 0 {
		write.Queue(upsertCheckpoints, p.Name(), w.cp.partitions, w.cp.positions, w.cp.recordedAt)
	}
	if write.Len() > 0 {
		if err := tx.SendBatch(ctx, write).Close(); err != nil {
			return out, fmt.Errorf("write: %w", err)
		}
	}
	if owned {
		if err := tx.Commit(ctx); err != nil {
			return out, fmt.Errorf("commit: %w", err)
		}
	}
	return out, nil
}

// fold decodes evs and folds them into s, appending one change per event to
// changes. On an event it cannot decode it stops, returning the changes
// before it, the state they reached, and the error. The live batch and the
// rebuild both fold with it.
func (r *Runtime) fold(s order.State, evs []eventstore.RecordedEvent, changes []Change) ([]Change, order.State, error) {
	for _, rec := range evs {
		before := s
		e, err := r.registry.Apply(&s, rec.Type, rec.SchemaVersion, rec.Data)
		if err != nil {
			return changes, s, fmt.Errorf("decode version %d: %w", rec.Version, err)
		}
		changes = append(changes, Change{Before: before, After: s, Event: e, Recorded: rec})
	}
	return changes, s, nil
}
