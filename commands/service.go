package commands

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/order"
)

// Service executes commands: decide on the order's state, append. It is the
// only writer of order streams and never talks to Kafka: the event table is
// the outbox.
//
// The state comes from a bounded cache of recent orders when it can, and
// from the store otherwise. Either way the append expects the version the
// decision was made on, so a stale state can only fail an append, never
// change what is stored; a refusal made on a cached state is checked again
// on the store's. Commands with an Idempotency-Key ride the store's group
// commit like the others: the key is stored with the events in one
// transaction (eventstore.RequestKey).
type Service struct {
	store    *eventstore.Store
	registry *order.Registry
	now      func() time.Time
	keys     *pii.Keys
	states   *stateCache // nil: no cache
}

// Config is what NewService needs; zero values are the documented defaults.
type Config struct {
	// Store is on a pool of the command role (the only one that may append
	// and use the idempotency keys, which ride the store's group commit).
	// Required.
	Store *eventstore.Store
	// Registry decodes and encodes the order's events. Required.
	Registry *order.Registry
	// Now is the clock of the decisions. Nil means time.Now.
	Now func() time.Time
	// CachedOrders is how many order states the service keeps (see
	// stateCache). Zero means DefaultCachedOrders; negative, none.
	CachedOrders int
	// Keys seals personal data and erases it (personal_service.go). Nil:
	// commands carrying personal data are refused (ErrNoKeys).
	Keys *pii.Keys
}

// Validate reports what is missing from c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("commands config: Store is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("commands config: Registry is required"))
	}
	return errors.Join(errs...)
}

// conflictRetries is how often a version conflict is retried on fresh state
// when the client sent no If-Match.
const conflictRetries = 3

// NewService returns the service cfg describes, or what is wrong with cfg.
func NewService(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{store: cfg.Store, registry: cfg.Registry, now: cfg.Now, keys: cfg.Keys}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.CachedOrders >= 0 {
		s.states = newStateCache(cmp.Or(cfg.CachedOrders, DefaultCachedOrders))
	}
	return s, nil
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
	// Scope is whose idempotency keys these are: a key is looked up only
	// among its scope's, so that one client can neither replay nor squat
	// another's key. The HTTP API sets the authenticated subject once
	// authentication records one, and until then the order the request acts
	// on (see keyScope).
	Scope string
	// Fingerprint identifies the request (method, path, body) under its key.
	Fingerprint []byte
	Metadata    eventstore.Metadata
}

// Outcome is what a command did.
type Outcome struct {
	Kind     OutcomeKind
	OrderID  string
	Version  int64 // the order's version after the command's events
	Position int64 // the global position of its last event
	// Replayed means the request's Idempotency-Key had been used by this
	// very request before: the outcome is that first one's, and nothing was
	// appended now.
	Replayed bool
}

// OutcomeKind says what a command did to its order.
type OutcomeKind int

const (
	// Changed: the command appended events to an existing order.
	Changed OutcomeKind = iota
	// Created: the command created the order.
	Created
)

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
	var (
		lost    order.State // the state the previous attempt lost on
		retried bool
	)
	for attempt := 0; ; attempt++ {
		var after *order.State
		if retried {
			after = &lost
		}
		out, err := s.attempt(ctx, req, after)
		if err == nil {
			return out.Outcome, nil
		}
		var wrong *eventstore.WrongExpectedVersionError // on the heap: only on this path
		if !errors.As(err, &wrong) {
			return out.Outcome, err
		}
		if req.IfMatch != nil {
			return Outcome{}, &PreconditionFailedError{Current: wrong.Actual}
		}
		if attempt >= conflictRetries {
			return Outcome{}, &ConflictError{Current: wrong.Actual}
		}
		lost, retried = out.state, true
	}
}

// attemptOutcome is an Outcome plus the state it was decided on, which a
// lost race hands to the next attempt to catch up from.
type attemptOutcome struct {
	Outcome
	state order.State
}

// attempt decides once and appends. after, on a retry, is the state the
// previous attempt lost on: a prefix of the stream to read on from.
func (s *Service) attempt(ctx context.Context, req Request, after *order.State) (attemptOutcome, error) {
	state, hint, err := s.current(ctx, req, after)
	if err != nil {
		return attemptOutcome{}, err
	}
	evs, err := s.decide(req, state)
	if err != nil && hint {
		// A refusal is final only on the store's state: the hint may be
		// behind another process's appends.
		if state, err = s.load(ctx, req.OrderID, state); err != nil {
			return attemptOutcome{}, err
		}
		evs, err = s.decide(req, state)
	}
	if err != nil {
		if req.IdempotencyKey != "" {
			// The same request may have succeeded before and taken the
			// order past the state it could be decided in (a retried
			// "place" finds the order placed): the key's answer stands.
			if out, found, kerr := s.replay(ctx, req); kerr != nil || found {
				return attemptOutcome{Outcome: out}, kerr
			}
		}
		return attemptOutcome{}, err
	}
	if evs, err = s.seal(ctx, state, evs); err != nil {
		return attemptOutcome{}, err
	}
	out, err := s.append(ctx, req, state, evs)
	if err == nil && !out.Replayed {
		err = s.recordPersonal(ctx, evs)
	}
	return attemptOutcome{Outcome: out, state: state}, err
}

// current is the state to decide on, and whether it is only a hint (a
// cached state, or the empty state of an order being created) rather than
// read from the store just now.
func (s *Service) current(ctx context.Context, req Request, after *order.State) (order.State, bool, error) {
	if after != nil {
		st, err := s.load(ctx, req.OrderID, *after)
		return st, false, err
	}
	if _, ok := req.Command.(CreateOrder); ok {
		// The HTTP API mints a new id for every creation: its stream is
		// empty unless a caller reuses an id, which NoStream refuses.
		return order.State{}, true, nil
	}
	if st, ok := s.states.get(req.OrderID); ok {
		return st, true, nil
	}
	st, err := s.load(ctx, req.OrderID, order.State{})
	return st, false, err
}

func (s *Service) decide(req Request, state order.State) ([]order.Event, error) {
	if req.IfMatch != nil && *req.IfMatch != state.Version && state.Exists() {
		return nil, &PreconditionFailedError{Current: state.Version}
	}
	return decide(state, req.Command, s.now().UTC())
}

// append appends evs expecting the version they were decided on; with a key,
// the key rides the same group-commit transaction.
func (s *Service) append(ctx context.Context, req Request, state order.State, evs []order.Event) (Outcome, error) {
	data, err := s.encode(evs, req.Metadata)
	if err != nil {
		return Outcome{}, err
	}
	stream := eventstore.Stream{ID: req.OrderID, Type: order.StreamType}
	expected := eventstore.Exact(state.Version)
	if state.Version == 0 {
		expected = eventstore.NoStream()
	}
	var (
		res eventstore.AppendResult
		id  = req.OrderID
	)
	if req.IdempotencyKey != "" {
		var kr eventstore.KeyedResult
		kr, err = s.store.AppendKeyed(ctx, s.requestKey(req), stream, expected, data)
		res, id = kr.AppendResult, kr.StreamID
		if errors.Is(err, eventstore.ErrKeyReused) {
			return Outcome{}, ErrIdempotencyKeyReused
		}
	} else {
		res, err = s.store.Append(ctx, stream, expected, data)
		// Without a key, Replayed can only mean this request's own events
		// (their ids are new): the store ran its statement again after an
		// error, and the first run had committed. The request is not a
		// replay of another.
		res.Replayed = false
	}
	if err != nil {
		var wrong *eventstore.WrongExpectedVersionError // on the heap: only on this path
		if errors.As(err, &wrong) {
			s.states.dropBelow(req.OrderID, wrong.Actual)
		} else {
			s.states.drop(req.OrderID) // it may or may not have been appended
		}
		return Outcome{}, err
	}
	if res.Replayed {
		// The key's first request answered: its events, not these. This
		// process knows no more of the order than before.
		s.states.dropBelow(req.OrderID, res.ToVersion)
		return outcomeOf(req, id, res), nil
	}
	next := state
	for _, e := range evs {
		next.Apply(e)
	}
	if next.Version == res.ToVersion {
		s.states.put(req.OrderID, next)
	} else {
		s.states.drop(req.OrderID)
	}
	return outcomeOf(req, id, res), nil
}

func outcomeOf(req Request, id ulid.ULID, res eventstore.AppendResult) Outcome {
	kind := Changed
	if _, ok := req.Command.(CreateOrder); ok {
		kind = Created
	}
	return Outcome{Kind: kind, OrderID: id.String(), Version: res.ToVersion, Position: res.Position, Replayed: res.Replayed}
}

func (s *Service) requestKey(req Request) eventstore.RequestKey {
	return eventstore.RequestKey{Scope: req.Scope, Key: req.IdempotencyKey, Fingerprint: req.Fingerprint}
}

// replay answers with what the request's key stored, if it is stored.
func (s *Service) replay(ctx context.Context, req Request) (Outcome, bool, error) {
	kr, found, err := s.store.LookupKey(ctx, s.requestKey(req))
	switch {
	case errors.Is(err, eventstore.ErrKeyReused):
		return Outcome{}, true, ErrIdempotencyKeyReused
	case err != nil || !found:
		return Outcome{}, false, err
	}
	return outcomeOf(req, kr.StreamID, kr.AppendResult), true, nil
}

// load reads the events after from (the state of a prefix of the stream,
// possibly empty) from the store, never the cache, and folds them onto it;
// a missing order is the zero State (Exists() false). The result, if the
// order exists, goes into the cache. It reads at most order.MaxEvents
// events: a stream longer than that (written before the cap existed) is a
// RuleEventLimit error, never a state folded in part.
func (s *Service) load(ctx context.Context, id ulid.ULID, from order.State) (order.State, error) {
	limit := order.MaxEvents - int(from.Version) + 1 // one more tells a stream past the cap
	recorded, err := s.store.ReadStream(ctx, eventstore.Stream{ID: id, Type: order.StreamType}, from.Version+1, max(limit, 1))
	if err != nil {
		return order.State{}, err
	}
	if from.Version+int64(len(recorded)) > order.MaxEvents {
		return order.State{}, ruleErr(RuleEventLimit, fmt.Sprintf("the order has more than %d events, the most an order holds", order.MaxEvents))
	}
	st := from
	for _, r := range recorded {
		if r.Version != st.Version+1 {
			return order.State{}, fmt.Errorf("order %s: read version %d after %d", id, r.Version, st.Version)
		}
		if _, err := s.registry.Apply(&st, r.Type, r.SchemaVersion, r.Data); err != nil {
			return order.State{}, fmt.Errorf("order %s version %d: %w", id, r.Version, err)
		}
	}
	if st.Exists() {
		s.states.put(id, st)
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
