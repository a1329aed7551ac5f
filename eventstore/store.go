package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
}

// New returns a store on a pool (normally in the application role).
func New(db *pgxpool.Pool) *Store { return &Store{db: db} }

// MaxAppend bounds the events of one append; a command produces a handful.
const MaxAppend = 1000

// Append appends events to a stream if expected holds, in its own
// transaction. A retry carrying the same event IDs returns the first append's
// result with Replayed set and writes nothing.
func (s *Store) Append(ctx context.Context, stream Stream, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	return s.AppendTx(ctx, s.db, stream, expected, events)
}

// AppendTx is Append inside the caller's transaction, for callers that write
// something else atomically with the events (an idempotency record). The
// global append lock is held from here to the commit: append last, commit
// soon. Append to one stream per transaction this way; several streams in one
// transaction go through AppendBatch, which takes their locks in a fixed
// order.
func (s *Store) AppendTx(ctx context.Context, tx DB, stream Stream, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	args, err := appendArgs(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	var (
		outcome            string
		actual             int64
		from, to, position *int64
	)
	err = tx.QueryRow(ctx, `SELECT outcome, actual, from_version, to_version, last_position
		FROM events_append($1, $2, $3, $4, $5, $6, $7, $8)`, args...).
		Scan(&outcome, &actual, &from, &to, &position)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream.ID, mapError(err))
	}
	return appendOutcome(stream, expected, outcome, actual, from, to, position)
}

func appendArgs(stream Stream, expected ExpectedVersion, events []EventData) ([]any, error) {
	if len(events) == 0 {
		return nil, ErrNoEvents
	}
	if len(events) > MaxAppend {
		return nil, fmt.Errorf("append of %d events: at most %d", len(events), MaxAppend)
	}
	if stream.Type == "" {
		return nil, errors.New("append: stream type is required")
	}
	var exp int64 = -1
	switch expected.kind {
	case expectNoStream:
		exp = 0
	case expectExact:
		if expected.version < 1 {
			return nil, fmt.Errorf("append: exact expected version must be ≥ 1, got %d", expected.version)
		}
		exp = expected.version
	}
	ids := make([]ulid.ULID, len(events))
	types := make([]string, len(events))
	schemas := make([]int32, len(events))
	data := make([]string, len(events))
	meta := make([]string, len(events))
	for i, e := range events {
		if e.Type == "" {
			return nil, fmt.Errorf("append: event %d has no type", i)
		}
		if e.ID == (ulid.ULID{}) {
			return nil, fmt.Errorf("append: event %d has no id", i)
		}
		if !json.Valid(e.Data) {
			return nil, fmt.Errorf("append: event %d data is not valid JSON", i)
		}
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("append: event %d metadata: %w", i, err)
		}
		ids[i] = e.ID
		types[i] = e.Type
		schemas[i] = int32(max(e.SchemaVersion, 1))
		data[i] = string(e.Data)
		meta[i] = string(m)
	}
	return []any{uuidOf(stream.ID), stream.Type, exp, uuids(ids), types, schemas, data, meta}, nil
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
