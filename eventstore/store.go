package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// DB is what the store needs of a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and appends events. It is safe for concurrent use.
type Store struct {
	db *pgxpool.Pool
	gc *committer // nil when group commit is disabled
}

// New returns a store on a pool (a serving role's: appending needs the
// command role), with group commit on its defaults.
func New(db *pgxpool.Pool) *Store {
	s, err := NewWithGroupCommit(db, GroupCommit{})
	if err != nil {
		panic(err) // the zero GroupCommit is valid
	}
	return s
}

// NewWithGroupCommit returns a store whose Append coalesces concurrent calls
// as gc says (see GroupCommit and DESIGN.md).
func NewWithGroupCommit(db *pgxpool.Pool, gc GroupCommit) (*Store, error) {
	gc.setDefaults()
	if err := gc.Validate(); err != nil {
		return nil, err
	}
	s := &Store{db: db}
	if !gc.Disabled {
		s.gc = newCommitter(db, gc)
	}
	return s, nil
}

// MaxAppend bounds the events of one append; a command produces a handful.
const MaxAppend = 1000

// Append appends events to a stream if expected holds. A retry carrying the
// same event IDs returns the first append's result with Replayed set and
// writes nothing.
//
// Concurrent Appends are committed together (group commit): each is decided
// on its own, in arrival order, and one transaction commits them all. A nil
// error means the events are committed. An error that is not an outcome
// (wrong version, id conflict, type mismatch, no partition, invalid input)
// means the transaction's fate is unknown, as with any lost connection: retry
// with the same event IDs, which is safe.
func (s *Store) Append(ctx context.Context, stream Stream, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	if s.gc == nil {
		return s.AppendTx(ctx, s.db, stream, expected, events)
	}
	req, err := encodeRequest(AppendRequest{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return AppendResult{}, err
	}
	r := s.gc.append(ctx, req)
	return r.AppendResult, r.Err
}

// AppendTx is Append inside the caller's transaction, for callers that write
// something else atomically with the events. The global append lock is held
// from here to the commit: append last, commit soon. Append to one stream
// per transaction this way; several streams in one transaction go through
// AppendBatch, which takes their locks in a fixed order.
func (s *Store) AppendTx(ctx context.Context, tx DB, stream Stream, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	e, err := encodeRequest(AppendRequest{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return AppendResult{}, err
	}
	var r round
	r.grow(1, len(events))
	r.add(0, &e, 1, 0)
	res, err := r.appendOne(ctx, tx)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, err)
	}
	return res.AppendResult, res.Err
}

// appendOne runs the round's only request through events_append, or
// events_append_keyed when it has a key. The error is for the statement;
// the request's outcome is in the result.
func (r *round) appendOne(ctx context.Context, db DB) (BatchResult, error) {
	e := r.reqs[0]
	var (
		outcome            string
		actual             int64
		from, to, position pgtype.Int8
		stream             = pgtype.UUID{Bytes: e.stream.ID, Valid: true}
		err                error
	)
	if e.keyed {
		err = db.QueryRow(ctx, `SELECT outcome, actual, from_version, to_version, last_position, stream_id
			FROM events_append_keyed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			stream, e.stream.Type, e.expected, uuidArray(r.ids), textArray(r.types), r.schemas,
			textArray(r.data), textArray(r.meta), e.key.Scope, e.key.Key, e.key.Fingerprint).
			Scan(&outcome, &actual, &from, &to, &position, &stream)
	} else {
		err = db.QueryRow(ctx, `SELECT outcome, actual, from_version, to_version, last_position
			FROM events_append($1, $2, $3, $4, $5, $6, $7, $8)`,
			stream, e.stream.Type, e.expected, r.ids, r.types, r.schemas, r.data, r.meta).
			Scan(&outcome, &actual, &from, &to, &position)
	}
	if err != nil {
		return BatchResult{}, mapError(err)
	}
	res, err := appendOutcome(e.stream, e.expectedArg, outcome, actual, from, to, position)
	return BatchResult{AppendResult: res, StreamID: stream.Bytes, Err: err}, nil
}

// encoded is a validated request. Its events are the caller's, which the
// caller does not touch until its append returns; they are turned into the
// database's argument form when the request joins a batch.
type encoded struct {
	stream      Stream
	expectedArg ExpectedVersion
	expected    int64 // -1 any, 0 no stream, n exact
	events      []EventData
	// The events' metadata as JSON: meta for all of them, unless they
	// differ (rare: one command's events share it), then metas per event.
	meta  string
	metas []string
	key   RequestKey // when keyed; Fingerprint never nil
	keyed bool
}

func (e *encoded) metaOf(i int) string {
	if e.metas != nil {
		return e.metas[i]
	}
	return e.meta
}

func encodeRequest(r AppendRequest) (encoded, error) {
	return encode(r.Stream, r.Expected, r.Events, r.Key)
}

// encode validates a request; events are kept, keyp only read (so that a
// caller's key can stay on its stack).
func encode(stream Stream, expected ExpectedVersion, events []EventData, keyp *RequestKey) (encoded, error) {
	if len(events) == 0 {
		return encoded{}, ErrNoEvents
	}
	var key RequestKey
	if keyp != nil {
		var err error
		if key, err = keyp.normalize(); err != nil {
			return encoded{}, err
		}
	}
	if len(events) > MaxAppend {
		return encoded{}, fmt.Errorf("append of %d events: at most %d", len(events), MaxAppend)
	}
	if stream.Type == "" {
		return encoded{}, errors.New("append: stream type is required")
	}
	var exp int64 = -1
	switch expected.kind {
	case expectNoStream:
		exp = 0
	case expectExact:
		if expected.version < 1 {
			return encoded{}, fmt.Errorf("append: exact expected version must be ≥ 1, got %d", expected.version)
		}
		exp = expected.version
	}
	out := encoded{stream: stream, expectedArg: expected, expected: exp, events: events, key: key, keyed: keyp != nil}
	for i, e := range events {
		if e.Type == "" {
			return encoded{}, fmt.Errorf("append: event %d has no type", i)
		}
		if e.ID == (ulid.ULID{}) {
			return encoded{}, fmt.Errorf("append: event %d has no id", i)
		}
		// A repeated id would fail the INSERT on the unique index and, in a
		// group commit, every other request of the transaction with it.
		for _, earlier := range events[:i] {
			if earlier.ID == e.ID {
				return encoded{}, fmt.Errorf("append: event %d repeats the id %s", i, e.ID)
			}
		}
		if !json.Valid(e.Data) {
			return encoded{}, fmt.Errorf("append: event %d data is not valid JSON", i)
		}
		if i > 0 && out.metas == nil && e.Metadata == events[0].Metadata {
			continue
		}
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return encoded{}, fmt.Errorf("append: event %d metadata: %w", i, err)
		}
		switch {
		case i == 0:
			out.meta = string(m)
		case out.metas == nil:
			out.metas = make([]string, len(events))
			for j := range i {
				out.metas[j] = out.meta
			}
			fallthrough
		default:
			out.metas[i] = string(m)
		}
	}
	return out, nil
}

func appendOutcome(stream Stream, expected ExpectedVersion, outcome string, actual int64, from, to, position pgtype.Int8) (AppendResult, error) {
	switch outcome {
	case "appended", "replayed", "key_replayed":
		return AppendResult{FromVersion: from.Int64, ToVersion: to.Int64, Position: position.Int64, Replayed: outcome != "appended"}, nil
	case "wrong_version":
		return AppendResult{}, &WrongExpectedVersionError{StreamID: stream.ID.String(), Expected: expected, Actual: actual}
	case "id_conflict":
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, ErrEventIDConflict)
	case "type_mismatch":
		return AppendResult{}, fmt.Errorf("append to %s as %q: %w", stream.ID, stream.Type, ErrStreamTypeMismatch)
	case "key_reused":
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, ErrKeyReused)
	default:
		return AppendResult{}, fmt.Errorf("append to %s: unknown outcome %q", stream.ID, outcome)
	}
}

// mapError turns the database's "no partition" into ErrNoPartition.
func mapError(err error) error {
	var pgErr *pgconn.PgError
	// 23514 check_violation is raised with this message when no partition
	// accepts the row.
	if errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition") {
		return fmt.Errorf("%w: %s", ErrNoPartition, pgErr.Message)
	}
	return err
}
