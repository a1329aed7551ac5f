package projections

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderflow/orderflow/internal/pg"
)

// Transient reports whether err, from ApplyBatch, says nothing about the
// batch's events: ctx ended, the database could not be reached or went
// away (pg.Unavailable), is out of resources, or picked this transaction as
// a deadlock or serialization victim. Apply such a batch again later, as it
// is. Any other error may be an event's fault (a value a column rejects, a
// bug an event triggers): retry the events one at a time, so that only the
// bad one ends in the dead-letter queue.
func Transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errVersionRowGone) ||
		pg.Unavailable(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "40", // transaction rollback: deadlock, serialization failure
			"53", // insufficient resources: disk full, out of memory, too many connections
			"58": // system error: I/O
			return true
		case "57": // operator intervention: shutdown, crash recovery, cannot connect now...
			// ...but 57014, a statement cut short by statement_timeout,
			// would be cut short again: alone, the events may fit.
			return pgErr.Code != "57014"
		}
	}
	return false
}

// Permanent reports whether err, from applying one event, is refused by the
// read model's own rules and would be refused again on a retry: a data
// exception (a value out of range, a bad cast) or an integrity constraint
// violation (a CHECK, a NOT NULL, a foreign key). Such an event is
// dead-lettered (parked) at once; retrying it would only hold back every
// other order of the projection for the retry budget. Nothing transient is
// permanent.
func Permanent(err error) bool {
	if Transient(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", // data exception
			"23": // integrity constraint violation
			return true
		}
	}
	return false
}
