package projections

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

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

// scratch is one batch's working memory, pooled: a batch of a thousand
// events would otherwise allocate its grouping, its read rows, its changes
// and its parameter arrays afresh every time. The statements of a batch
// refer to its arrays until they are sent, which is before applyBatch
// returns and the scratch goes back to the pool.
type scratch struct {
	// Deliveries by order: idx holds delivery indexes sorted by stream id,
	// then version, then arrival; order o's are idx[runs[o].from:runs[o].to]
	// and its id is ids[o] (ascending: the lock order).
	idx  []int
	runs []run
	ids  arr[pgtype.UUID]
	// The locked versions rows, one per order; their states' JSON is
	// arena[stored[o].from:stored[o].to].
	stored []storedVersion
	arena  []byte

	todo     []eventstore.RecordedEvent
	changes  []Change
	rejected []bool // by delivery index
	versions versionRows
	unborn   arr[pgtype.UUID] // version-0 rows of orders that applied nothing
	park     parkedRows
	cp       checkpointRows
}

type run struct{ from, to int }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release clears what refers to events and states, so the pool keeps
// memory but not data, and returns w to the pool.
func (w *scratch) release() {
	clear(w.todo)
	clear(w.changes)
	w.idx, w.runs, w.ids, w.stored, w.arena = w.idx[:0], w.runs[:0], w.ids[:0], w.stored[:0], w.arena[:0]
	w.todo, w.changes, w.rejected, w.unborn = w.todo[:0], w.changes[:0], w.rejected[:0], w.unborn[:0]
	w.park.reset()
	w.versions.reset()
	w.cp.reset()
	scratchPool.Put(w)
}

func (w *scratch) group(ds []Delivery) {
	for i := range ds {
		w.idx = append(w.idx, i)
		w.rejected = append(w.rejected, false)
	}
	slices.SortStableFunc(w.idx, func(a, b int) int {
		ea, eb := &ds[a].Event, &ds[b].Event
		return cmp.Or(bytes.Compare(ea.StreamID[:], eb.StreamID[:]), cmp.Compare(ea.Version, eb.Version))
	})
	for i, d := range w.idx {
		id := ds[d].Event.StreamID
		if i == 0 || id != ds[w.idx[i-1]].Event.StreamID {
			w.runs = append(w.runs, run{from: i, to: i})
			w.ids = append(w.ids, pgtype.UUID{Bytes: id, Valid: true})
		}
		w.runs[len(w.runs)-1].to = i + 1
	}
}

// errVersionRowGone: a row this batch created (or found) was deleted before
// it could lock it, by a concurrent batch whose first events of that order
// were all rejected. Transient: the next attempt creates it again.
var errVersionRowGone = errors.New("a versions row was deleted by a concurrent batch")

// storedVersion is a locked versions row: its version, and where its state's
// JSON ('{}' at version 0) is in the arena.
type storedVersion struct {
	version  int64
	from, to int
}

func (w *scratch) state(o int) []byte { return w.arena[w.stored[o].from:w.stored[o].to] }

// readVersions skips the create's result and reads the lock's: one row per
// order, in ids' order (PostgreSQL orders uuids bytewise, as bytes.Compare).
// The states are copied into the arena rather than each into its own slice.
func (w *scratch) readVersions(br pgx.BatchResults) error {
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("create version rows: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("lock version rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		id, v, raw, err := versionRow(rows)
		if err != nil {
			return fmt.Errorf("lock version rows: %w", err)
		}
		if len(w.stored) >= len(w.ids) || id != w.ids[len(w.stored)].Bytes {
			return fmt.Errorf("lock version rows: row %x out of order", id)
		}
		v.from = len(w.arena)
		w.arena = append(w.arena, raw...)
		v.to = len(w.arena)
		w.stored = append(w.stored, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock version rows: %w", err)
	}
	if len(w.stored) != len(w.ids) {
		return fmt.Errorf("lock version rows: %d rows for %d orders: %w", len(w.stored), len(w.ids), errVersionRowGone)
	}
	return nil
}

// versionRow reads a row of lockVersions from its raw values, so that the
// state stays in pgx's buffer until it is copied into the arena and no Scan
// boxes three destinations per row. pgx receives the uuid and the bigint in
// binary, and jsonb as text (or, in binary, a version byte and the text).
func versionRow(rows pgx.Rows) (id [16]byte, v storedVersion, state []byte, err error) {
	fds, raw := rows.FieldDescriptions(), rows.RawValues()
	if fds[0].Format != pgtype.BinaryFormatCode || fds[1].Format != pgtype.BinaryFormatCode || len(raw[0]) != 16 || len(raw[1]) != 8 {
		// Not the expected forms: let pgx convert.
		var u pgtype.UUID
		var s []byte
		err = rows.Scan(&u, &v.version, &s)
		return u.Bytes, v, s, err
	}
	copy(id[:], raw[0])
	v.version = int64(binary.BigEndian.Uint64(raw[1])) // #nosec G115 -- PostgreSQL's int8 in network order: the bits of an int64
	state = raw[2]
	if fds[2].Format == pgtype.BinaryFormatCode {
		if len(state) == 0 || state[0] != 1 {
			return id, v, nil, fmt.Errorf("jsonb of order %x: unknown binary format version", id)
		}
		state = state[1:]
	}
	return id, v, state, nil
}

// pending returns the events of one order's deliveries (sorted by version)
// above version cur, each version once; how many deliveries it skipped as
// already applied or repeated; and whether the events continue cur without
// a hole. The events are in w.todo, valid until the next call.
func (w *scratch) pending(ds []Delivery, deliveries []int, cur int64) (todo []eventstore.RecordedEvent, skipped int, gapless bool) {
	gapless = true
	last := cur
	todo = w.todo[:0]
	for _, i := range deliveries {
		ev := &ds[i].Event
		if ev.Version <= last {
			skipped++
			continue
		}
		gapless = gapless && ev.Version == last+1
		last = ev.Version
		todo = append(todo, *ev)
	}
	w.todo = todo
	return todo, skipped, gapless
}

// reject rejects the deliveries of one order above version after.
func (w *scratch) reject(out *batchOutcome, ds []Delivery, deliveries []int, after int64, err error) {
	for _, i := range deliveries {
		if ds[i].Event.Version > after {
			w.rejected[i] = true
			out.rejected = append(out.rejected, Rejection{Index: i, Err: err})
		}
	}
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

// versionRows are the versions rows a batch writes, column by column.
type versionRows struct {
	ids     arr[pgtype.UUID]
	numbers arr[bigint]
	json    bytes.Buffer  // every state's JSON, one after the other
	enc     *json.Encoder // into json
	ends    []int         // end of each state in json
	cut     arr[text]
}

func (v *versionRows) add(id pgtype.UUID, s order.State) error {
	if v.enc == nil {
		v.enc = json.NewEncoder(&v.json)
	}
	if err := v.enc.Encode(s); err != nil {
		return fmt.Errorf("encode state of order %x: %w", id.Bytes, err)
	}
	v.ids, v.numbers = append(v.ids, id), append(v.numbers, bigint(s.Version))
	v.ends = append(v.ends, v.json.Len())
	return nil
}

// states cuts json into one value per row, once it no longer grows: one
// string for all of them, so that each state is a substring, and the
// statement casts them to jsonb.
func (v *versionRows) states() arr[text] {
	all, from := v.json.String(), 0
	for _, end := range v.ends {
		v.cut, from = append(v.cut, text(all[from:end])), end
	}
	return v.cut
}

func (v *versionRows) reset() {
	v.json.Reset() // the encoder keeps writing into it
	v.ids, v.numbers, v.ends, v.cut = v.ids[:0], v.numbers[:0], v.ends[:0], v.cut[:0]
}

// checkpointRows are the checkpoints a batch moves, by partition.
type checkpointRows struct {
	partitions arr[integer]
	positions  arr[bigint]
	recordedAt arr[tstz]
}

func (c *checkpointRows) reset() {
	c.partitions, c.positions, c.recordedAt = c.partitions[:0], c.positions[:0], c.recordedAt[:0]
}

// checkpoints puts in w.cp, per partition of the batch, the highest
// position applied or skipped, in partition order (the lock order of the
// checkpoint rows). Rejected deliveries do not count: Handle checkpoints
// them if they succeed alone.
func (w *scratch) checkpoints(ds []Delivery) {
	c := &w.cp
	for i, d := range ds {
		if w.rejected[i] || d.Partition == noCheckpoint {
			continue
		}
		k, found := slices.BinarySearch(c.partitions, integer(d.Partition)) // #nosec G115 -- a Kafka partition number is an int32
		if !found {
			// Kept in partition order; a batch holds a few partitions.
			c.partitions = slices.Insert(c.partitions, k, integer(d.Partition)) // #nosec G115 -- a Kafka partition number is an int32
			c.positions = slices.Insert(c.positions, k, bigint(d.Event.Position))
			c.recordedAt = slices.Insert(c.recordedAt, k, tstz(d.Event.RecordedAt))
		} else if bigint(d.Event.Position) > c.positions[k] {
			c.positions[k], c.recordedAt[k] = bigint(d.Event.Position), tstz(d.Event.RecordedAt)
		}
	}
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

// sqlOf is p's SQL, built once per projection name.
func sqlOf(p Projection) projectionSQL {
	if q, ok := sqlCache.Load(p.Name()); ok {
		return q.(projectionSQL)
	}
	vt := versionsTable(p)
	q := projectionSQL{
		createVersions: `INSERT INTO ` + vt + ` (stream_id, version, state)
			SELECT id, 0, '{}' FROM unnest($1::uuid[]) AS n(id) ON CONFLICT (stream_id) DO NOTHING`,
		lockVersions: `SELECT stream_id, version, state FROM ` + vt + `
			WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id FOR UPDATE`,
		updateVersions: `UPDATE ` + vt + ` AS v SET version = n.version, state = n.state::jsonb
			FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS n(id, version, state) WHERE v.stream_id = n.id`,
		deleteUnborn: `DELETE FROM ` + vt + ` WHERE stream_id = ANY($1::uuid[]) AND version = 0`,
	}
	sqlCache.Store(p.Name(), q)
	return q
}

var sqlCache sync.Map // projection name → projectionSQL
