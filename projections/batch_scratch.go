package projections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/eventstore"
)

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
