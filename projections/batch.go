package projections

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	g := groupByOrder(ds)
	sql := sqlOf(p)

	lock := &pgx.Batch{}
	owned := tx == nil
	if owned {
		lock.BeginTx(pgx.TxOptions{})
	}
	lock.Queue(sql.createVersions, g.ids)
	lock.Queue(sql.lockVersions, g.ids)
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
	stored, err := readVersions(br, g.ids)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return out, err
	}

	b := p.NewBuilder()
	var (
		rejected = make([]bool, len(ds))
		changes  []Change
		vs       versionRows
		unborn   []pgtype.UUID // version-0 rows of orders that applied nothing
	)
	for o, run := range g.runs {
		cur := stored[o]
		deliveries := g.idx[run.from:run.to]
		todo, skipped, gapless := pending(ds, deliveries, cur.version)
		out.res.skipped += skipped
		if len(todo) == 0 {
			continue
		}
		if cur.version == 0 {
			// Until it applies something the order must not keep the row
			// this batch created: a rebuild would not have it.
			unborn = append(unborn, g.ids[o])
		}
		reject := func(after int64, err error) {
			for _, i := range deliveries {
				if ds[i].Event.Version > after {
					rejected[i] = true
					out.rejected = append(out.rejected, Rejection{Index: i, Err: err})
				}
			}
		}
		if !gapless {
			last := todo[len(todo)-1].Version
			first := ds[deliveries[0]].Event
			recs, err := r.store.ReadStream(ctx, eventstore.Stream{ID: first.StreamID, Type: first.StreamType}, cur.version+1, int(last-cur.version))
			if err != nil {
				return out, fmt.Errorf("fill gap of order %s: %w", first.StreamID, err)
			}
			if int64(len(recs)) != last-cur.version {
				reject(cur.version, fmt.Errorf("fill gap: store returned %d of %d events up to version %d", len(recs), last-cur.version, last))
				continue
			}
			out.res.gapFilled += len(recs) - len(todo)
			todo = recs
		}
		var state order.State
		if cur.version > 0 {
			if err := json.Unmarshal(cur.state, &state); err != nil {
				reject(cur.version, fmt.Errorf("decode stored state: %w", err))
				continue
			}
		}
		from := len(changes)
		var ferr error
		changes, state, ferr = r.fold(state, todo, changes)
		if mine := changes[from:]; len(mine) > 0 {
			b.AddOrder(mine)
			if err := vs.add(g.ids[o], state); err != nil {
				return out, err
			}
			out.res.applied += len(mine)
			if cur.version == 0 {
				unborn = unborn[:len(unborn)-1]
			}
		}
		if ferr != nil {
			reject(state.Version, ferr)
		}
	}
	slices.SortFunc(out.rejected, func(a, b Rejection) int { return a.Index - b.Index })

	w := &pgx.Batch{}
	if len(vs.ids) > 0 {
		w.Queue(sql.updateVersions, vs.ids, vs.versions, vs.states())
	}
	if len(unborn) > 0 {
		w.Queue(sql.deleteUnborn, unborn)
	}
	b.Queue(w)
	if cp := checkpoints(ds, rejected); len(cp.partitions) > 0 {
		w.Queue(upsertCheckpoints, p.Name(), cp.partitions, cp.positions, cp.recordedAt)
	}
	if w.Len() > 0 {
		if err := tx.SendBatch(ctx, w).Close(); err != nil {
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

// grouped is a batch's deliveries by order.
type grouped struct {
	idx  []int         // delivery indexes, by stream id, then version, then arrival
	runs []run         // one per order: its deliveries are idx[from:to]
	ids  []pgtype.UUID // one per order, ascending
}

type run struct{ from, to int }

func groupByOrder(ds []Delivery) grouped {
	g := grouped{idx: make([]int, len(ds))}
	for i := range g.idx {
		g.idx[i] = i
	}
	slices.SortStableFunc(g.idx, func(a, b int) int {
		ea, eb := &ds[a].Event, &ds[b].Event
		return cmp.Or(bytes.Compare(ea.StreamID[:], eb.StreamID[:]), cmp.Compare(ea.Version, eb.Version))
	})
	for i, d := range g.idx {
		id := ds[d].Event.StreamID
		if i == 0 || id != ds[g.idx[i-1]].Event.StreamID {
			g.runs = append(g.runs, run{from: i, to: i})
			g.ids = append(g.ids, pgtype.UUID{Bytes: id, Valid: true})
		}
		g.runs[len(g.runs)-1].to = i + 1
	}
	return g
}

// errVersionRowGone: a row this batch created (or found) was deleted before
// it could lock it, by a concurrent batch whose first events of that order
// were all rejected. Transient: the next attempt creates it again.
var errVersionRowGone = errors.New("a versions row was deleted by a concurrent batch")

// storedVersion is a locked versions row.
type storedVersion struct {
	version int64
	state   []byte // JSON of the state at version; '{}' at version 0
}

// readVersions skips the create's result and reads the lock's: one row per
// id, in ids' order (PostgreSQL orders uuids bytewise, as bytes.Compare).
func readVersions(br pgx.BatchResults, ids []pgtype.UUID) ([]storedVersion, error) {
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("create version rows: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("lock version rows: %w", err)
	}
	defer rows.Close()
	out := make([]storedVersion, 0, len(ids))
	for rows.Next() {
		var (
			id pgtype.UUID
			v  storedVersion
		)
		if err := rows.Scan(&id, &v.version, &v.state); err != nil {
			return nil, fmt.Errorf("lock version rows: %w", err)
		}
		if len(out) >= len(ids) || id != ids[len(out)] {
			return nil, fmt.Errorf("lock version rows: row %x out of order", id.Bytes)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock version rows: %w", err)
	}
	if len(out) != len(ids) {
		return nil, fmt.Errorf("lock version rows: %d rows for %d orders: %w", len(out), len(ids), errVersionRowGone)
	}
	return out, nil
}

// pending returns the events of one order's deliveries (sorted by version)
// above version cur, each version once; how many deliveries it skipped as
// already applied or repeated; and whether the events continue cur without
// a hole.
func pending(ds []Delivery, deliveries []int, cur int64) (todo []eventstore.RecordedEvent, skipped int, gapless bool) {
	gapless = true
	last := cur
	for _, i := range deliveries {
		ev := ds[i].Event
		if ev.Version <= last {
			skipped++
			continue
		}
		gapless = gapless && ev.Version == last+1
		last = ev.Version
		todo = append(todo, ev)
	}
	return todo, skipped, gapless
}

// fold decodes evs and folds them into s, appending one change per event to
// changes. On an event it cannot decode it stops, returning the changes
// before it, the state they reached, and the error. The live batch and the
// rebuild both fold with it.
func (r *Runtime) fold(s order.State, evs []eventstore.RecordedEvent, changes []Change) ([]Change, order.State, error) {
	for _, rec := range evs {
		e, err := r.registry.Decode(rec.Type, rec.SchemaVersion, rec.Data)
		if err != nil {
			return changes, s, fmt.Errorf("decode version %d: %w", rec.Version, err)
		}
		before := s
		s.Apply(e)
		changes = append(changes, Change{Before: before, After: s, Event: e, Recorded: rec})
	}
	return changes, s, nil
}

// versionRows are the versions rows a batch writes, column by column.
type versionRows struct {
	ids      []pgtype.UUID
	versions []int64
	json     bytes.Buffer // every state's JSON, one after the other
	ends     []int        // end of each state in json
}

func (v *versionRows) add(id pgtype.UUID, s order.State) error {
	if err := json.NewEncoder(&v.json).Encode(s); err != nil {
		return fmt.Errorf("encode state of order %x: %w", id.Bytes, err)
	}
	v.ids, v.versions = append(v.ids, id), append(v.versions, s.Version)
	v.ends = append(v.ends, v.json.Len())
	return nil
}

// states cuts json into one jsonb value per row, once it no longer grows.
func (v *versionRows) states() [][]byte {
	all, out, from := v.json.Bytes(), make([][]byte, len(v.ends)), 0
	for i, end := range v.ends {
		out[i], from = all[from:end], end
	}
	return out
}

// checkpointRows are the checkpoints a batch moves, by partition.
type checkpointRows struct {
	partitions []int32
	positions  []int64
	recordedAt []time.Time
}

// checkpoints is, per partition of the batch, the highest position applied
// or skipped; rejected deliveries do not count (Handle checkpoints them if
// they succeed alone).
func checkpoints(ds []Delivery, rejected []bool) checkpointRows {
	var c checkpointRows
	for i, d := range ds {
		if rejected[i] || d.Partition == noCheckpoint {
			continue
		}
		k := slices.Index(c.partitions, int32(d.Partition))
		if k < 0 {
			c.partitions = append(c.partitions, int32(d.Partition))
			c.positions = append(c.positions, d.Event.Position)
			c.recordedAt = append(c.recordedAt, d.Event.RecordedAt)
		} else if d.Event.Position > c.positions[k] {
			c.positions[k], c.recordedAt[k] = d.Event.Position, d.Event.RecordedAt
		}
	}
	// Partition order: the lock order of the checkpoint rows.
	order := make([]int, len(c.partitions))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(c.partitions[a], c.partitions[b]) })
	var s checkpointRows
	for _, i := range order {
		s.partitions = append(s.partitions, c.partitions[i])
		s.positions = append(s.positions, c.positions[i])
		s.recordedAt = append(s.recordedAt, c.recordedAt[i])
	}
	return s
}

// A checkpoint row is the highest position applied from its partition:
// greatest() keeps it from moving back when two batches of one partition
// commit out of order (a rebalance).
const upsertCheckpoints = `INSERT INTO projection_checkpoints (projection, partition, position, recorded_at)
	SELECT $1, p, pos, at FROM unnest($2::integer[], $3::bigint[], $4::timestamptz[]) AS c(p, pos, at)
	ON CONFLICT (projection, partition) DO UPDATE
	SET position = greatest(projection_checkpoints.position, excluded.position),
	    recorded_at = CASE WHEN excluded.position > projection_checkpoints.position
	                       THEN excluded.recorded_at ELSE projection_checkpoints.recorded_at END,
	    updated_at = now()`

// projectionSQL is the runtime's SQL on one projection's versions table.
type projectionSQL struct {
	createVersions, lockVersions, updateVersions, deleteUnborn string
}

func sqlOf(p Projection) projectionSQL {
	vt := versionsTable(p)
	return projectionSQL{
		createVersions: `INSERT INTO ` + vt + ` (stream_id, version, state)
			SELECT id, 0, '{}' FROM unnest($1::uuid[]) AS n(id) ON CONFLICT (stream_id) DO NOTHING`,
		lockVersions: `SELECT stream_id, version, state FROM ` + vt + `
			WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id FOR UPDATE`,
		updateVersions: `UPDATE ` + vt + ` AS v SET version = n.version, state = n.state
			FROM unnest($1::uuid[], $2::bigint[], $3::jsonb[]) AS n(id, version, state) WHERE v.stream_id = n.id`,
		deleteUnborn: `DELETE FROM ` + vt + ` WHERE stream_id = ANY($1::uuid[]) AND version = 0`,
	}
}
