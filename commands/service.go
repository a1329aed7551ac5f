package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// maxStreamRead bounds how many events one load reads: far above what a
// real order accumulates (100 lines, a handful of transitions), small enough
// that a runaway stream cannot exhaust memory.
const maxStreamRead = 10_000

// Service executes commands: load, fold, decide, append. It is the only
// writer of order streams and never talks to Kafka: the event table is the
// outbox.
type Service struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	registry *order.Registry
	now      func() time.Time
	// Retries is how often a version conflict is retried on fresh state
	// when the client sent no If-Match. Zero means 3.
	Retries int
}

// NewService returns a service on a pool of the command role (the only one
// that may append and use the idempotency keys).
func NewService(pool *pgxpool.Pool, store *eventstore.Store, registry *order.Registry, now func() time.Time) *Service {
	return &Service{pool: pool, store: store, registry: registry, now: now}
}

// Request is one command for one order.
type Request struct {
	OrderID ulid.ULID
	Command Command
	// IfMatch, when set, is the version the client last saw: a stale one is
	// a PreconditionFailedError, never retried.
	IfMatch *int64
	// IdempotencyKey, when set, makes a retry replay the first outcome.
	IdempotencyKey string
	// Fingerprint identifies the request (method, path, body) under its key.
	Fingerprint []byte
	Metadata    eventstore.Metadata
}

// Outcome is what a command did.
type Outcome struct {
	Status   int    `json:"status"` // HTTP status of the first response: 201 or 200
	OrderID  string `json:"order_id"`
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
	Replayed bool   `json:"-"`
}

// PreconditionFailedError means If-Match named a version that is not current.
type PreconditionFailedError struct{ Current int64 }

func (e *PreconditionFailedError) Error() string {
	return fmt.Sprintf("order is at version %d", e.Current)
}

// ConflictError means concurrent writers kept winning; the client may retry.
type ConflictError struct{ Current int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("order changed concurrently (now at version %d)", e.Current)
}

// ErrIdempotencyKeyReused means the key was first used for another request.
var ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different request")

// Execute runs a command. Validation errors, rule violations and every other
// error leave the store untouched.
func (s *Service) Execute(ctx context.Context, req Request) (Outcome, error) {
	if err := req.Command.Validate(); err != nil {
		return Outcome{}, err
	}
	retries := s.Retries
	if retries == 0 {
		retries = 3
	}
	for attempt := 0; ; attempt++ {
		out, err := s.attempt(ctx, req)
		var wrong *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wrong) {
			return out, err
		}
		if req.IfMatch != nil {
			return Outcome{}, &PreconditionFailedError{Current: wrong.Actual}
		}
		if attempt >= retries {
			return Outcome{}, &ConflictError{Current: wrong.Actual}
		}
	}
}

func (s *Service) attempt(ctx context.Context, req Request) (Outcome, error) {
	// The order is loaded before the transaction begins, never inside it:
	// Load takes its own pool connection, and a transaction waiting for a
	// second connection while holding one deadlocks the pool once as
	// many keyed commands run at once as the pool has connections. A
	// state that goes stale meanwhile fails the append's version check and
	// is retried like any lost race.
	state, err := s.Load(ctx, req.OrderID)
	if err != nil {
		return Outcome{}, err
	}
	if req.IdempotencyKey == "" {
		return s.decideAndAppend(ctx, nil, req, state)
	}
	var out Outcome
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		stored, found, err := lockKey(ctx, tx, req.IdempotencyKey, req.Fingerprint)
		if err != nil || found {
			out = stored
			return err
		}
		if out, err = s.decideAndAppend(ctx, tx, req, state); err != nil {
			return err
		}
		return saveKey(ctx, tx, req.IdempotencyKey, req.Fingerprint, out)
	})
	return out, err
}

// decideAndAppend decides on the order's state and appends expecting the
// version it decided on. tx is nil for an append in its own transaction.
func (s *Service) decideAndAppend(ctx context.Context, tx pgx.Tx, req Request, state order.State) (Outcome, error) {
	stream := eventstore.Stream{ID: req.OrderID, Type: order.StreamType}
	if req.IfMatch != nil && *req.IfMatch != state.Version && state.Exists() {
		return Outcome{}, &PreconditionFailedError{Current: state.Version}
	}
	evs, err := req.Command.Decide(state, s.now().UTC())
	if err != nil {
		return Outcome{}, err
	}
	data, err := s.encode(evs, req.Metadata)
	if err != nil {
		return Outcome{}, err
	}
	expected := eventstore.Exact(state.Version)
	if state.Version == 0 {
		expected = eventstore.NoStream()
	}
	var res eventstore.AppendResult
	if tx != nil {
		res, err = s.store.AppendTx(ctx, tx, stream, expected, data)
	} else {
		res, err = s.store.Append(ctx, stream, expected, data)
	}
	if err != nil {
		return Outcome{}, err
	}
	status := 200
	if _, ok := req.Command.(CreateOrder); ok {
		status = 201
	}
	return Outcome{Status: status, OrderID: req.OrderID.String(), Version: res.ToVersion, Position: res.Position}, nil
}

// Load folds an order's events into its state; a missing order is the zero
// State (Exists() false).
func (s *Service) Load(ctx context.Context, id ulid.ULID) (order.State, error) {
	recorded, err := s.store.ReadStream(ctx, eventstore.Stream{ID: id, Type: order.StreamType}, 1, maxStreamRead)
	if err != nil {
		return order.State{}, err
	}
	var st order.State
	for _, r := range recorded {
		e, err := s.registry.Decode(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			return order.State{}, fmt.Errorf("order %s version %d: %w", id, r.Version, err)
		}
		st.Apply(e)
	}
	return st, nil
}

func (s *Service) encode(evs []order.Event, md eventstore.Metadata) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		name, schema, data, err := s.registry.Encode(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: schema, Data: data, Metadata: md}
	}
	return out, nil
}
