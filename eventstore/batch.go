package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
)

// AppendRequest is one stream's share of a batch.
type AppendRequest struct {
	Stream   Stream
	Expected ExpectedVersion
	Events   []EventData
	// Key, when set, makes the request happen at most once per key (see
	// RequestKey): a stored key answers for the request before anything
	// else is decided.
	Key *RequestKey
}

// BatchResult is one request's outcome: Err is per request (a wrong expected
// version fails that request only).
type BatchResult struct {
	AppendResult
	// StreamID is the stream the result's events are in: the request's,
	// except for a keyed replay, whose first append may have gone to another
	// stream.
	StreamID ulid.ULID
	Err      error
}

// AppendBatch appends several streams' events in one transaction: group
// commit, one WAL flush and one hand-over of the global append lock for all of
// them. Requests are decided in order, each against the stream as the
// earlier ones left it (two requests on one stream with Exact(v) and
// Exact(v+1) both succeed), and positions follow request order. Each request
// succeeds or fails on its own; the returned error is for the transaction as
// a whole (then nothing was written).
//
// It is one statement (events_append_batch) and one round trip, unless two
// requests share an event id on one stream: then the later one goes into a
// second statement of the same transaction, so that it is decided as a retry
// of the first.
func (s *Store) AppendBatch(ctx context.Context, reqs []AppendRequest) ([]BatchResult, error) {
	results := make([]BatchResult, len(reqs))
	enc := make([]encoded, len(reqs))
	events := 0
	for _, r := range reqs {
		events += len(r.Events)
	}
	b := newBatch(len(reqs), events)
	for i, r := range reqs {
		var err error
		if enc[i], err = encodeRequest(r); err != nil {
			results[i].Err = err
			continue
		}
		b.add(i, &enc[i])
	}
	if err := b.exec(ctx, s.db, results); err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	return results, nil
}

// batch builds the arguments of events_append_batch. Requests go into
// rounds: a request that repeats a (stream, event id) of an earlier request
// goes one round after it. Almost every batch is one round. Requests
// sharing a key need no second round: the statement decides a key taken by
// an earlier request of the same call as stored.
type batch struct {
	streams   []pgtype.UUID // distinct streams of all rounds: every round locks all of them
	streamIdx map[ulid.ULID]int32
	// The distinct keys of all rounds, as two arrays: every round locks all
	// of them too, so that no round takes a lock after an earlier round
	// took the global one.
	keyScopes, keyNames []string
	keyIdx              map[keyID]int32
	seen                map[streamEvent]int // (stream, event id) → round of the last request holding it
	rounds              []*round
	n                   int
}

type keyID struct{ scope, key string }

type streamEvent struct{ stream, event ulid.ULID }

type round struct {
	index    []int // each request's index in the results
	reqs     []*encoded
	stream   []int32
	typ      []string
	expected []int64
	count    []int32
	ids      []pgtype.UUID
	types    []string
	schemas  []int32
	data     []string
	meta     []string
	key      []int32 // per request: 1-based index into the batch's keys, 0 for none
	fp       [][]byte
}

// newBatch returns a batch sized for requests holding events: almost every
// batch is one round, whose arrays are then allocated once.
func newBatch(requests, events int) *batch {
	b := &batch{
		streamIdx: make(map[ulid.ULID]int32, requests),
		seen:      make(map[streamEvent]int, events),
		streams:   make([]pgtype.UUID, 0, requests),
		rounds:    []*round{{}},
	}
	b.rounds[0].grow(requests, events)
	return b
}

func (r *round) grow(requests, events int) {
	r.index = make([]int, 0, requests)
	r.reqs = make([]*encoded, 0, requests)
	r.stream = make([]int32, 0, requests)
	r.typ = make([]string, 0, requests)
	r.expected = make([]int64, 0, requests)
	r.count = make([]int32, 0, requests)
	r.key = make([]int32, 0, requests)
	r.fp = make([][]byte, 0, requests)
	r.ids = make([]pgtype.UUID, 0, events)
	r.types = make([]string, 0, events)
	r.schemas = make([]int32, 0, events)
	r.data = make([]string, 0, events)
	r.meta = make([]string, 0, events)
}

// add puts e into a round: the first one after every earlier request
// holding one of its (stream, event id) pairs.
func (b *batch) add(index int, e *encoded) {
	si, ok := b.streamIdx[e.stream.ID]
	if !ok {
		b.streams = append(b.streams, uuidOf(e.stream.ID))
		si = int32(len(b.streams)) // #nosec G115 -- 1-based, as in SQL; a batch holds at most GroupCommit.MaxBatch (256) streams
		b.streamIdx[e.stream.ID] = si
	}
	ri := 0
	for _, ev := range e.events {
		if prev, ok := b.seen[streamEvent{e.stream.ID, ev.ID}]; ok {
			ri = max(ri, prev+1)
		}
	}
	for _, ev := range e.events {
		b.seen[streamEvent{e.stream.ID, ev.ID}] = ri
	}
	for len(b.rounds) <= ri {
		b.rounds = append(b.rounds, &round{})
	}
	var ki int32
	if e.keyed {
		if b.keyIdx == nil {
			b.keyIdx = make(map[keyID]int32)
		}
		id := keyID{e.key.Scope, e.key.Key}
		if ki = b.keyIdx[id]; ki == 0 {
			b.keyScopes = append(b.keyScopes, id.scope)
			b.keyNames = append(b.keyNames, id.key)
			ki = int32(len(b.keyScopes)) // #nosec G115 -- 1-based, as in SQL; a batch holds at most GroupCommit.MaxBatch (256) keys
			b.keyIdx[id] = ki
		}
	}
	b.rounds[ri].add(index, e, si, ki)
	b.n++
}

// add appends e's arguments to the round's arrays, in the database's form;
// si and ki are its stream's and key's indexes in the batch (ki 0: no key).
func (r *round) add(index int, e *encoded, si, ki int32) {
	r.index = append(r.index, index)
	r.reqs = append(r.reqs, e)
	r.stream = append(r.stream, si)
	r.typ = append(r.typ, e.stream.Type)
	r.expected = append(r.expected, e.expected)
	r.count = append(r.count, int32(len(e.events))) // #nosec G115 -- an append holds at most MaxAppend (1000) events
	for i, ev := range e.events {
		r.ids = append(r.ids, uuidOf(ev.ID))
		r.types = append(r.types, ev.Type)
		r.schemas = append(r.schemas, int32(max(ev.SchemaVersion, 1))) // #nosec G115 -- schema versions are the codecs' small constants
		r.data = append(r.data, string(ev.Data))
		r.meta = append(r.meta, e.metaOf(i))
	}
	var fp []byte
	if e.keyed {
		fp = e.key.Fingerprint
	}
	r.key = append(r.key, ki)
	r.fp = append(r.fp, fp)
}

const appendBatchSQL = `SELECT outcome, actual, from_version, to_version, last_position, stream_id
	FROM events_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

// txDB is what exec needs: a pool, or a transaction (whose Begin is a
// savepoint).
type txDB interface {
	DB
	Begin(ctx context.Context) (pgx.Tx, error)
}

// exec runs the batch and fills results at the requests' indexes. One round
// is one statement, hence its own transaction on a pool; several rounds run
// in one transaction. An error is for the whole batch: nothing was written.
func (b *batch) exec(ctx context.Context, db txDB, results []BatchResult) error {
	switch len(b.rounds) {
	case 0:
		return nil
	case 1:
		return b.rounds[0].exec(ctx, db, b, results)
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, r := range b.rounds {
			if err := r.exec(ctx, tx, b, results); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r *round) exec(ctx context.Context, db DB, b *batch, results []BatchResult) error {
	if len(b.rounds) == 1 && len(r.reqs) == 1 {
		// A lone request (a lone writer's Append) takes events_append or
		// events_append_keyed: the same decisions in fewer statements
		// (0.33 ms a call instead of 0.53 ms unkeyed, pgbench, one client;
		// about 0.4 ms less keyed). A batch of several rounds never does:
		// each of its rounds must lock all of its streams and keys.
		res, err := r.appendOne(ctx, db)
		if err != nil {
			return err
		}
		results[r.index[0]] = res
		return nil
	}
	rows, err := db.Query(ctx, appendBatchSQL, uuidArray(b.streams), r.stream, textArray(r.typ), r.expected, r.count,
		uuidArray(r.ids), textArray(r.types), r.schemas, textArray(r.data), textArray(r.meta),
		textArray(b.keyScopes), textArray(b.keyNames), r.key, bytesArray(r.fp))
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()
	// Scanned into once per batch, not once per row: Scan's destinations
	// escape.
	var (
		outcome            string
		actual             int64
		from, to, position pgtype.Int8
		stream             pgtype.UUID
	)
	i := 0
	for rows.Next() {
		if err := rows.Scan(&outcome, &actual, &from, &to, &position, &stream); err != nil {
			return err
		}
		if i >= len(r.reqs) {
			return errors.New("events_append_batch returned more rows than requests")
		}
		e := r.reqs[i]
		res, err := appendOutcome(e.stream, e.expectedArg, outcome, actual, from, to, position)
		results[r.index[i]] = BatchResult{AppendResult: res, StreamID: stream.Bytes, Err: err}
		i++
	}
	if err := rows.Err(); err != nil {
		return mapError(err)
	}
	if i != len(r.reqs) {
		return fmt.Errorf("events_append_batch returned %d rows for %d requests", i, len(r.reqs))
	}
	return nil
}

// isStatementError reports whether the server refused the statement (the
// connection is fine and the transaction rolled back), as opposed to a
// connection or context error after which the outcome is unknown.
func isStatementError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || errors.Is(err, ErrNoPartition)
}
