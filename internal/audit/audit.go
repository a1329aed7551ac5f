package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The admin actions recorded today. An action is a stable dotted name:
// operators filter on it.
const (
	ProjectionRebuilt    = "projection.rebuilt"
	DeadLetterReplayed   = "dead_letter.replayed"
	DeadLetterDiscarded  = "dead_letter.discarded"
	PersonalDataErased   = "personal_data.erased"
	maxActor, maxAction  = 200, 100
	maxTarget, maxReason = 200, 2000
)

// Entry is one admin action to record.
type Entry struct {
	Actor  string // who: a token's subject, or an admin command's OS user
	Action string // what: one of the constants above
	Target string // to what: a projection, a dead letter's id, a customer id
	Reason string // why, as the operator gave it; may be empty
	// Detail is a small JSON object of facts about the action (counts,
	// versions); nil for none. Identifiers only, never personal data.
	Detail map[string]any
}

// ErrInvalid is wrapped by Record for an entry the log refuses.
var ErrInvalid = errors.New("invalid audit entry")

func (e Entry) validate() error {
	switch {
	case e.Actor == "" || len(e.Actor) > maxActor:
		return fmt.Errorf("%w: actor must be 1 to %d bytes", ErrInvalid, maxActor)
	case e.Action == "" || len(e.Action) > maxAction:
		return fmt.Errorf("%w: action must be 1 to %d bytes", ErrInvalid, maxAction)
	case len(e.Target) > maxTarget:
		return fmt.Errorf("%w: target is longer than %d bytes", ErrInvalid, maxTarget)
	case len(e.Reason) > maxReason:
		return fmt.Errorf("%w: reason is longer than %d bytes", ErrInvalid, maxReason)
	}
	return nil
}

// Execer is a transaction, a connection or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record appends e to the log through db. Given the transaction of the
// action, the entry commits with it or not at all.
func Record(ctx context.Context, db Execer, e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	_, err := db.Exec(ctx, `INSERT INTO audit_log (actor, action, target, reason, detail) VALUES ($1, $2, $3, $4, $5)`,
		e.Actor, e.Action, e.Target, e.Reason, detail)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.Target, err)
	}
	return nil
}

// Logged is one entry of the log.
type Logged struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	DBUser string          `json:"db_user"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Reason string          `json:"reason"`
	Detail json.RawMessage `json:"detail"`
}

// MaxLimit bounds one page of List.
const MaxLimit = 1000

// Filter selects a page of the log. Zero values select everything.
type Filter struct {
	Action string
	Target string
	Before int64 // only entries with an id below it: the next page
	Limit  int   // 1 to MaxLimit; 0 means 100
}

// Querier is a transaction, a connection or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// List returns the entries f selects, newest first. Pass the last one's
// ID as the next Filter's Before to page back.
func List(ctx context.Context, db Querier, f Filter) ([]Logged, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > MaxLimit || f.Before < 0 {
		return nil, fmt.Errorf("%w filter: limit must be 1 to %d, before not negative", ErrInvalid, MaxLimit)
	}
	rows, err := db.Query(ctx, `
		SELECT id, at, actor, db_user, action, target, reason, detail FROM audit_log
		WHERE ($1 = '' OR action = $1) AND ($2 = '' OR target = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.Action, f.Target, f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Logged, error) {
		var l Logged
		err := r.Scan(&l.ID, &l.At, &l.Actor, &l.DBUser, &l.Action, &l.Target, &l.Reason, &l.Detail)
		return l, err
	})
}
