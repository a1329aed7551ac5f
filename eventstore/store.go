package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	return s.gc.append(ctx, req)
}

// AppendTx is Append inside the caller's transaction, for callers that write
// something else atomically with the events (an idempotency record). The
// global append lock is held from here to the commit: append last, commit
// soon. Append to one stream per transaction this way; several streams in one
// transaction go through AppendBatch, which takes their locks in a fixed
// order.
func (s *Store) AppendTx(ctx context.Context, tx DB, stream Stream, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	r, err := encodeRequest(AppendRequest{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return AppendResult{}, err
	}
	res, err := appendOne(ctx, tx, &r)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, err)
	}
	return res.AppendResult, res.Err
}

// appendOne runs one request through events_append. The error is for the
// statement; the request's outcome is in the result.
func appendOne(ctx context.Context, db DB, r *encoded) (BatchResult, error) {
	var (
		outcome            string
		actual             int64
		from, to, position *int64
	)
	err := db.QueryRow(ctx, `SELECT outcome, actual, from_version, to_version, last_position
		FROM events_append($1, $2, $3, $4, $5, $6, $7, $8)`,
		uuidOf(r.stream.ID), r.stream.Type, r.expected, r.ids, r.types, r.schemas, r.data, r.meta).
		Scan(&outcome, &actual, &from, &to, &position)
	if err != nil {
		return BatchResult{}, mapError(err)
	}
	res, err := appendOutcome(r.stream, r.expectedArg, outcome, actual, from, to, position)
	return BatchResult{AppendResult: res, Err: err}, nil
}

// encoded is a validated request in the database's argument form.
type encoded struct {
	stream      Stream
	expectedArg ExpectedVersion
	expected    int64 // -1 any, 0 no stream, n exact
	eventIDs    []ulid.ULID
	ids         []pgtype.UUID
	types       []string
	schemas     []int32
	data        []string
	meta        []string
}

func encodeRequest(r AppendRequest) (encoded, error) {
	stream, expected, events := r.Stream, r.Expected, r.Events
	if len(events) == 0 {
		return encoded{}, ErrNoEvents
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
	out := encoded{
		stream: stream, expectedArg: expected, expected: exp,
		eventIDs: make([]ulid.ULID, len(events)),
		ids:      make([]pgtype.UUID, len(events)),
		types:    make([]string, len(events)),
		schemas:  make([]int32, len(events)),
		data:     make([]string, len(events)),
		meta:     make([]string, len(events)),
	}
	for i, e := range events {
		if e.Type == "" {
			return encoded{}, fmt.Errorf("append: event %d has no type", i)
		}
		if e.ID == (ulid.ULID{}) {
			return encoded{}, fmt.Errorf("append: event %d has no id", i)
		}
		// A repeated id would fail the INSERT on the unique index and, in a
		// group commit, every other request of the transaction with it.
		if slices.Contains(out.eventIDs[:i], e.ID) {
			return encoded{}, fmt.Errorf("append: event %d repeats the id %s", i, e.ID)
		}
		if !json.Valid(e.Data) {
			return encoded{}, fmt.Errorf("append: event %d data is not valid JSON", i)
		}
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return encoded{}, fmt.Errorf("append: event %d metadata: %w", i, err)
		}
		out.eventIDs[i] = e.ID
		out.ids[i] = uuidOf(e.ID)
		out.types[i] = e.Type
		out.schemas[i] = int32(max(e.SchemaVersion, 1)) // #nosec G115 -- schema versions are the codecs' small constants
		out.data[i] = string(e.Data)
		out.meta[i] = string(m)
	}
	return out, nil
}

func appendOutcome(stream Stream, expected ExpectedVersion, outcome string, actual int64, from, to, position *int64) (AppendResult, error) {
	switch outcome {
	case "appended", "replayed":
		return AppendResult{FromVersion: *from, ToVersion: *to, Position: *position, Replayed: outcome == "replayed"}, nil
	case "wrong_version":
		return AppendResult{}, &WrongExpectedVersionError{StreamID: stream.ID.String(), Expected: expected, Actual: actual}
	case "id_conflict":
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, ErrEventIDConflict)
	case "type_mismatch":
		return AppendResult{}, fmt.Errorf("append to %s as %q: %w", stream.ID, stream.Type, ErrStreamTypeMismatch)
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
